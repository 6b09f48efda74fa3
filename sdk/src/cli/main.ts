// `coldstart`: the SDK's command line. `coldstart profile <handler>` loads a handler in N fresh
// Node.js processes with the SDK's timing hooks preloaded and Lambda's environment simulated, and
// reports where the module-load time goes, with the recommendations of the rule table the server
// uses. See docs/sdk-usage.md ("coldstart profile") for the options and the JSON schema.
//
// This folder is bundled on its own (dist/cli.cjs): it never loads the SDK's hooks into itself.
// main.ts runs the command; args.ts parses it, run.ts and child.ts run the profiled processes,
// aggregate.ts turns their runs into a profile (profile.ts), render.ts prints it, send.ts posts it.

import { existsSync, readFileSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ENV_API_KEY, ENV_ENDPOINT, SDK_VERSION } from '../shared/constants';
import { attributeCpuProfile, type RawCpuProfile } from '../shared/cpu-profile';
import { sdkFiles } from '../shared/sdk-files';
import { parseArgs, USAGE, type Options } from './args';
import { aggregate, compareProfiles } from './aggregate';
import { PROFILE_INIT_TYPE, SCHEMA, SCHEMA_VERSION, type Profile, type ProfileRun } from './profile';
import { painter, renderText } from './render';
import { loadRules, RulesError, type RuleTable } from './rules';
import { bundleInfo, findTaskRoot, isEsmHandler, runOnce, sdkRoot } from './run';
import { recordsFor, sendRecords } from './send';

function defaultFunctionName(taskRoot: string, handler: string): string {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) return process.env.AWS_LAMBDA_FUNCTION_NAME;
  try {
    const name = (JSON.parse(readFileSync(join(taskRoot, 'package.json'), 'utf8')) as { name?: unknown }).name;
    if (typeof name === 'string' && name !== '') return name.replace(/^@/, '').replace(/\//g, '-');
  } catch {
    // no package name
  }
  return basename(handler, extname(handler));
}

function defaultRulesFile(): string {
  return join(__dirname, 'recommendations.json');
}

export async function profileCommand(argv: string[], write: (text: string) => void, error: (text: string) => void): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (e) {
    error(`coldstart profile: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const handler = resolve(options.handler);
  if (!existsSync(handler)) {
    error(`coldstart profile: ${options.handler}: no such file\n`);
    return 2;
  }
  let rules: RuleTable;
  let previous: Profile | undefined;
  try {
    rules = loadRules(options.rules ?? defaultRulesFile());
    if (options.compare !== undefined) {
      previous = JSON.parse(readFileSync(options.compare, 'utf8')) as Profile;
      if (previous.schema !== SCHEMA || typeof previous.load_ms?.median !== 'number' || !Array.isArray(previous.modules))
        throw new Error(`${options.compare}: not a coldstart profile (--json output)`);
      if (previous.version !== SCHEMA_VERSION)
        throw new Error(`${options.compare}: profile schema version ${previous.version}, expected ${SCHEMA_VERSION}`);
    }
  } catch (e) {
    error(`coldstart profile: ${e instanceof RulesError ? e.message : (e as Error).message}\n`);
    return 2;
  }
  const apiKey = process.env[ENV_API_KEY];
  const endpoint = process.env[ENV_ENDPOINT];
  if (options.send && (!apiKey || !endpoint)) {
    error(`coldstart profile: --send needs ${ENV_ENDPOINT} and ${ENV_API_KEY}\n`);
    return 2;
  }
  const taskRoot = resolve(options.taskRoot ?? findTaskRoot(handler));
  const functionName = options.functionName ?? defaultFunctionName(taskRoot, handler);
  const esm = isEsmHandler(handler);
  const node = process.execPath;
  const runs: ProfileRun[] = [];
  const ownUrl = sdkFiles(pathToFileURL(sdkRoot()).href + '/');
  const ownPath = sdkFiles(sdkRoot() + '/');
  const own = (url: string): boolean => ownUrl(url) || ownPath(url);
  for (let i = 0; i < options.runs; i++) {
    if (!options.json && process.stderr.isTTY) process.stderr.write(`\rrun ${i + 1}/${options.runs}`);
    const startedAt = new Date().toISOString();
    const result = await runOnce(options, node, handler, taskRoot, functionName, esm);
    if (result.error !== undefined || result.snapshot === undefined) {
      if (!options.json && process.stderr.isTTY) process.stderr.write('\n');
      error(`coldstart profile: ${options.handler} failed to load (run ${i + 1}):\n${result.error ?? 'no result'}\n`);
      return 2;
    }
    const s = result.snapshot as unknown as Omit<ProfileRun, 'load_ms' | 'modules' | 'started_at'> & { cpu_profile?: RawCpuProfile };
    runs.push({
      init_ms: s.init_ms,
      load_ms: s.module_tree.load_ms,
      sdk_overhead_ms: s.sdk_overhead_ms,
      modules: s.module_tree.modules,
      memory_used_mb: s.memory_used_mb,
      esm_timing: s.esm_timing,
      module_timings: s.module_timings,
      module_tree: s.module_tree,
      started_at: startedAt,
      ...(typeof s.code_id === 'string' ? { code_id: s.code_id } : {}),
      ...(s.cpu_profile !== undefined ? { cpu: attributeCpuProfile(s.cpu_profile, taskRoot, own) } : {}),
    });
  }
  if (!options.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const bundle = bundleInfo(handler);
  const profile = aggregate(
    runs,
    { handler: relative(taskRoot, handler).replace(/\\/g, '/'), taskRoot, memory: options.memory, node: process.version },
    rules,
    bundle.sizes,
  );
  if (bundle.info !== undefined) profile.bundle = bundle.info;
  if (previous !== undefined) profile.compare = compareProfiles(previous, profile);
  if (options.budget !== undefined)
    profile.budget = { limit_ms: options.budget, median_ms: profile.load_ms.median, exceeded: profile.load_ms.median > options.budget };
  let status = profile.budget?.exceeded ? 1 : 0;
  if (options.send) {
    try {
      await sendRecords(endpoint!, apiKey!, recordsFor(profile, functionName));
      if (!options.json) error(`sent ${runs.length} records to ${endpoint} (init_type "${PROFILE_INIT_TYPE}")\n`);
    } catch (e) {
      error(`coldstart profile: --send failed: ${(e as Error).message}\n`);
      status = 2;
    }
  }
  if (options.json) {
    write(JSON.stringify(profile, null, 2) + '\n');
  } else {
    const threshold = options.threshold ?? Math.max(0.5, profile.load_ms.median * 0.01);
    const colour = process.stdout.isTTY === true && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '');
    write(renderText(profile, threshold, painter(colour)));
  }
  return status;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const write = (text: string): void => void process.stdout.write(text);
  const error = (text: string): void => void process.stderr.write(text);
  if (command === 'profile') return profileCommand(rest, write, error);
  if (command === '--version' || command === '-v') {
    write(`${SDK_VERSION}\n`);
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    write(USAGE);
    return command === undefined ? 2 : 0;
  }
  error(`coldstart: unknown command ${command}\n\n${USAGE}`);
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`coldstart: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
