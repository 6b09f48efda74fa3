// `coldstart`: the SDK's command line. `coldstart profile <handler>` loads a handler in N fresh
// Node.js processes with the SDK's timing hooks preloaded and Lambda's environment simulated, and
// reports where the module-load time goes, with the recommendations of the rule table the server
// uses. See docs/sdk-usage.md ("coldstart profile") for the options and the JSON schema.
//
// This file is bundled on its own (dist/cli.cjs): it never loads the SDK's hooks into itself.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { bundleKind, moduleSourceOf, type BundleKind } from './bundle';
import { architecture, runtimeVersion } from './classify';
import { BATCH_PATH, ENV_API_KEY, ENV_ENDPOINT, SDK_VERSION } from './constants';
import { attributeCpuProfile, cpuExactness, type CpuRun, type RawCpuProfile } from './cpu-profile';
import { sdkFiles } from './inject';
import { loadRules, OWN_CODE_NAME, recommend, RulesError, type Recommendation, type RuleTable } from './rules';

export const SCHEMA = 'coldstart-profile';
export const SCHEMA_VERSION = 1;
export const PROFILE_INIT_TYPE = 'coldstart-profile';
const WIDTH = 80;

export interface Spread {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

export interface ProfileModule {
  name: string;
  version?: string;
  self_ms: number;
  seen_in: number;
  /** bytes in the bundle (from the esbuild plugin's sidecar file), when known */
  bytes?: number;
}

export interface BundleInfo {
  /** "esbuild-plugin": per-module data from the plugin; "no-plugin": a bundle without it */
  kind: BundleKind;
  output_bytes?: number;
}

export interface ProfileTreeNode {
  name: string;
  version?: string;
  self_ms: number;
  total_ms: number;
  /** of self_ms, ES module loading (resolve, read, compile) and the rest (evaluation): medians */
  loading_ms?: number;
  evaluation_ms?: number;
  children?: ProfileTreeNode[];
}

export interface CpuProfileSummary {
  method: 'v8-cpu-profile';
  interval_us: number;
  /** median number of samples per run */
  samples: number;
  exactness: string;
  scripts: { name: string; ms: number }[];
  module_loader_ms: number;
  garbage_collector_ms: number;
  program_ms: number;
  other_ms: number;
}

export interface ProfileRun {
  init_ms: number;
  load_ms: number;
  sdk_overhead_ms: number;
  modules: number;
  memory_used_mb: number;
  esm_timing: string;
  module_timings: Record<string, number>;
  module_tree: RunTree;
  started_at: string;
  /** the deployment identity of the profiled code (fingerprint.ts), as the SDK sends it */
  code_id?: string;
  /** --cpu-profile: the run's samples by script */
  cpu?: CpuRun;
}

interface RunTreeEntry {
  name: string;
  version?: string;
  self_ms: number;
  total_ms: number;
  loading_ms?: number;
  evaluation_ms?: number;
  children?: RunTreeEntry[];
}
interface RunTree {
  load_ms: number;
  modules: number;
  esm_timing: string;
  coverage: string;
  truncated: boolean;
  loading_ms?: number;
  link_ms?: number;
  children: RunTreeEntry[];
}

export interface Profile {
  schema: typeof SCHEMA;
  version: typeof SCHEMA_VERSION;
  sdk_version: string;
  handler: string;
  task_root: string;
  node_version: string;
  memory_mb: number;
  runs: number;
  load_ms: Spread;
  init_ms: Spread;
  sdk_overhead_ms: Spread;
  /** ES module timing of the runs (the SDK's esm_timing: "on" = loading and evaluation per module) */
  esm_timing?: string;
  /** linking ES module graphs: in load_ms, in no node (present when ES module loading was timed) */
  link_ms?: Spread;
  modules: ProfileModule[];
  tree: ProfileTreeNode[];
  /** --cpu-profile: V8 CPU profile samples by script URL, medians over the runs */
  cpu_profile?: CpuProfileSummary;
  recommendations: Recommendation[];
  bundle?: BundleInfo;
  budget?: { limit_ms: number; median_ms: number; exceeded: boolean };
  compare?: Comparison;
  runs_detail: ProfileRun[];
}

export interface Comparison {
  previous_runs: number;
  load_ms: { before: number; after: number; delta: number; percent: number | null };
  modules: { name: string; before_ms: number; after_ms: number; delta_ms: number }[];
}

interface Options {
  handler: string;
  runs: number;
  json: boolean;
  budget: number | undefined;
  compare: string | undefined;
  send: boolean;
  memory: number;
  threshold: number | undefined;
  taskRoot: string | undefined;
  functionName: string | undefined;
  timeout: number;
  rules: string | undefined;
  cpuProfile: boolean;
  cpuInterval: number;
}

class UsageError extends Error {}

const USAGE = `Usage: coldstart profile <handler file> [options]

Loads the handler in fresh Node.js processes with the SDK's timing hooks and Lambda's
environment simulated, and reports where its module-load time goes.

Options:
  --runs N            processes to run (default 10)
  --json              print the profile as JSON (schema "coldstart-profile", version 1)
  --budget MS         exit 1 when the median module-load time exceeds MS
  --compare FILE      compare with an earlier --json output
  --send              post the runs to COLDSTART_ENDPOINT with COLDSTART_API_KEY
                      (init_type "coldstart-profile")
  --memory MB         simulated memory size (default 1024)
  --threshold MS      fold tree entries whose median total is below MS
                      (default: 1 % of the module-load time, at least 0.5 ms)
  --task-root DIR     the function's root (default: nearest package.json above the handler)
  --function-name N   name sent with --send (default: AWS_LAMBDA_FUNCTION_NAME or the package name)
  --timeout MS        per-run limit (default 60000)
  --rules FILE        rule table (default: the copy shipped with the SDK)
  --cpu-profile       also record a V8 CPU profile of each run's init (node:inspector) and
                      attribute its samples to packages by script URL (its overhead is in
                      the runs' times)
  --cpu-interval US   sampling interval of --cpu-profile in microseconds (default 100)

Exit status: 0 ok, 1 over budget, 2 usage error, handler failed to load, or --send failed.
`;

function parseArgs(argv: string[]): Options {
  const options: Options = {
    handler: '',
    runs: 10,
    json: false,
    budget: undefined,
    compare: undefined,
    send: false,
    memory: 1024,
    threshold: undefined,
    taskRoot: undefined,
    functionName: undefined,
    timeout: 60_000,
    rules: undefined,
    cpuProfile: false,
    cpuInterval: 100,
  };
  const number = (name: string, text: string | undefined, min: number, integer = false): number => {
    const value = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value)))
      throw new UsageError(`${name} needs a ${integer ? 'whole ' : ''}number >= ${min}, got ${text === undefined ? 'nothing' : JSON.stringify(text)}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (arg) {
      case '--runs':
        options.runs = number('--runs', value(), 1, true);
        break;
      case '--json':
        options.json = true;
        break;
      case '--budget':
        options.budget = number('--budget', value(), 0);
        break;
      case '--compare':
        options.compare = value();
        if (!options.compare) throw new UsageError('--compare needs a file');
        break;
      case '--send':
        options.send = true;
        break;
      case '--memory':
        options.memory = number('--memory', value(), 128, true);
        break;
      case '--threshold':
        options.threshold = number('--threshold', value(), 0);
        break;
      case '--task-root':
        options.taskRoot = value();
        break;
      case '--function-name':
        options.functionName = value();
        break;
      case '--timeout':
        options.timeout = number('--timeout', value(), 1, true);
        break;
      case '--rules':
        options.rules = value();
        break;
      case '--cpu-profile':
        options.cpuProfile = true;
        break;
      case '--cpu-interval':
        options.cpuInterval = number('--cpu-interval', value(), 10, true);
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        if (options.handler !== '') throw new UsageError(`one handler file only (got ${options.handler} and ${arg})`);
        options.handler = arg;
    }
  }
  if (options.handler === '') throw new UsageError('no handler file given');
  return options;
}

// ---- statistics ----------------------------------------------------------------------------

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: round3(quantile(sorted, 0.5)),
    p25: round3(quantile(sorted, 0.25)),
    p75: round3(quantile(sorted, 0.75)),
    min: round3(sorted[0] ?? 0),
    max: round3(sorted[sorted.length - 1] ?? 0),
  };
}

const median = (values: number[]): number => spread(values).median;

// ---- running the handler -------------------------------------------------------------------

// Runs inside each profiled process (node -e): loads the handler as Lambda's runtime would
// (require, or import for an ES module), then asks the SDK for its snapshot and exits, as Lambda
// freezes the process after init. The SDK itself is preloaded with --require.
// With --cpu-profile, V8's sampling profiler runs from before the handler's loading to its end
// (node:inspector's in-process session answers synchronously).
const CHILD = `
const fs = require('fs');
const core = require(process.env.COLDSTART_PROFILE_CORE);
const handler = process.argv[1];
let session;
if (process.env.COLDSTART_PROFILE_CPU) {
  session = new (require('inspector').Session)();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: Number(process.env.COLDSTART_PROFILE_CPU) });
  session.post('Profiler.start');
}
const done = (error) => {
  let cpu;
  if (session) session.post('Profiler.stop', (e, result) => { cpu = result && result.profile; });
  const snapshot = core.__profileSnapshot() || {};
  if (error !== undefined) snapshot.error = String((error && error.stack) || error).slice(0, 4000);
  if (cpu) snapshot.cpu_profile = { nodes: cpu.nodes.map((n) => ({ id: n.id, url: n.callFrame.url, fn: n.callFrame.functionName, children: n.children })), samples: cpu.samples, deltas: cpu.timeDeltas, interval_us: Number(process.env.COLDSTART_PROFILE_CPU) };
  fs.writeFileSync(process.env.COLDSTART_PROFILE_OUT, JSON.stringify(snapshot));
  process.exit(0);
};
if (process.env.COLDSTART_PROFILE_ESM === '1') {
  import(require('url').pathToFileURL(handler).href).then(() => done(), (error) => done(error || 'error'));
} else {
  let failure;
  try { require(handler); } catch (error) { failure = error || 'error'; }
  done(failure);
}
`;

function sdkRoot(): string {
  // dist/cli.cjs -> the package root
  return resolve(__dirname, '..');
}

function findTaskRoot(handler: string): string {
  for (let dir = dirname(handler); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return dirname(handler);
  }
}

function nearestPackageType(handler: string): string | undefined {
  for (let dir = dirname(handler); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: string }).type;
      } catch {
        return undefined;
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

export function isEsmHandler(handler: string): boolean {
  const ext = extname(handler);
  if (ext === '.mjs') return true;
  if (ext === '.cjs') return false;
  return nearestPackageType(handler) === 'module';
}

/** Lambda's environment for a function of `memory` MB whose code is in taskRoot. */
export function lambdaEnvironment(base: NodeJS.ProcessEnv, taskRoot: string, handler: string, memory: number, functionName: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of Object.keys(env)) if (name.startsWith('COLDSTART_')) delete env[name];
  delete env.NODE_OPTIONS; // the profile controls the preload; a user's --require would distort it
  const rel = relative(taskRoot, handler).replace(/\\/g, '/');
  const moduleName = rel.slice(0, rel.length - extname(rel).length);
  const major = process.versions.node.split('.')[0];
  Object.assign(env, {
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memory),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
    AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${major}.x`,
    AWS_REGION: base.AWS_REGION || 'us-east-1',
    AWS_DEFAULT_REGION: base.AWS_REGION || base.AWS_DEFAULT_REGION || 'us-east-1',
    LAMBDA_TASK_ROOT: taskRoot,
    LAMBDA_RUNTIME_DIR: '/var/runtime',
    _HANDLER: `${moduleName}.handler`,
    TZ: ':UTC',
  });
  return env;
}

interface ChildResult {
  snapshot: Record<string, unknown> | undefined;
  error: string | undefined;
}

function runOnce(options: Options, node: string, handler: string, taskRoot: string, functionName: string, esm: boolean): Promise<ChildResult> {
  const dir = mkdtempSync(join(tmpdir(), 'coldstart-profile-'));
  const out = join(dir, 'run.json');
  const env = lambdaEnvironment(process.env, taskRoot, handler, options.memory, functionName);
  env.COLDSTART_PROFILE_OUT = out;
  env.COLDSTART_PROFILE_CORE = join(sdkRoot(), 'dist', 'index.cjs');
  if (esm) {
    env.COLDSTART_PROFILE_ESM = '1';
    env.COLDSTART_ESM_TIMING = 'on';
  }
  if (options.cpuProfile) env.COLDSTART_PROFILE_CPU = String(options.cpuInterval);
  // Lambda's bootstrap sizes the old space to about 90 % of the function's memory.
  const heap = Math.max(64, Math.floor(options.memory * 0.9));
  const args = [`--max-old-space-size=${heap}`, '--require', join(sdkRoot(), 'register.cjs'), '-e', CHILD, handler];
  return new Promise((resolvePromise) => {
    const child = spawn(node, args, { cwd: taskRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 8000) stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let snapshot: Record<string, unknown> | undefined;
      try {
        snapshot = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
      } catch {
        snapshot = undefined;
      }
      rmSync(dir, { recursive: true, force: true });
      let error: string | undefined;
      if (snapshot === undefined) {
        error = signal === 'SIGKILL' ? `timed out after ${options.timeout} ms` : `exited with ${signal ?? code} before the end of init`;
        if (stderr.trim() !== '') error += `\n${stderr.trim()}`;
      } else if (typeof snapshot.error === 'string') {
        error = snapshot.error;
      }
      resolvePromise({ snapshot, error });
    });
  });
}

/**
 * Whether the handler file is a bundle, with the esbuild plugin or without (bundle.ts, as the SDK
 * decides a record's module_source). Also reads the plugin's size sidecar.
 */
export function bundleInfo(handler: string): { info: BundleInfo | undefined; sizes: Record<string, number> | undefined } {
  let text: string;
  try {
    text = readFileSync(handler, 'utf8');
  } catch {
    return { info: undefined, sizes: undefined };
  }
  let sizes: Record<string, number> | undefined;
  let outputBytes: number | undefined;
  try {
    const sidecar = JSON.parse(readFileSync(handler + '.coldstart.json', 'utf8')) as { schema?: string; modules?: Record<string, number>; output_bytes?: number };
    if (sidecar.schema === 'coldstart-bundle' && typeof sidecar.modules === 'object') {
      sizes = sidecar.modules;
      outputBytes = sidecar.output_bytes;
    }
  } catch {
    // no sidecar
  }
  const kind = bundleKind(text);
  if (kind === undefined) return { info: undefined, sizes: undefined };
  const info: BundleInfo = { kind };
  if (outputBytes !== undefined) info.output_bytes = outputBytes;
  return { info, sizes };
}

// ---- aggregation ---------------------------------------------------------------------------

interface MergedNode {
  name: string;
  version: string | undefined;
  self: number[];
  total: number[];
  loading: number[];
  /** whether any run timed this node's ES module loading (loading_ms) */
  timed: boolean;
  children: Map<string, MergedNode>;
}

function mergeTrees(trees: RunTreeEntry[][], runs: number): ProfileTreeNode[] {
  const root = new Map<string, MergedNode>();
  const add = (into: Map<string, MergedNode>, entries: RunTreeEntry[] | undefined, run: number): void => {
    for (const entry of entries ?? []) {
      let node = into.get(entry.name);
      if (node === undefined) {
        node = { name: entry.name, version: entry.version, self: new Array(runs).fill(0), total: new Array(runs).fill(0), loading: new Array(runs).fill(0), timed: false, children: new Map() };
        into.set(entry.name, node);
      }
      node.version ??= entry.version;
      node.self[run] += entry.self_ms;
      node.total[run] += entry.total_ms;
      if (typeof entry.loading_ms === 'number') {
        node.timed = true;
        node.loading[run] += entry.loading_ms;
      }
      add(node.children, entry.children, run);
    }
  };
  trees.forEach((entries, run) => add(root, entries, run));
  const build = (nodes: Map<string, MergedNode>): ProfileTreeNode[] =>
    [...nodes.values()]
      .map((node) => {
        const out: ProfileTreeNode = { name: node.name, self_ms: median(node.self), total_ms: median(node.total) };
        if (node.version !== undefined) out.version = node.version;
        if (node.timed) {
          // the median of each run's split (not self minus the median loading: medians do not subtract)
          out.loading_ms = median(node.loading);
          out.evaluation_ms = median(node.self.map((self, run) => Math.max(0, self - node.loading[run]!)));
        }
        const children = build(node.children);
        if (children.length > 0) out.children = children;
        return out;
      })
      .sort((a, b) => b.total_ms - a.total_ms || (a.name < b.name ? -1 : 1));
  return build(root);
}

function versionsOf(tree: ProfileTreeNode[], into = new Map<string, string>()): Map<string, string> {
  for (const node of tree) {
    if (node.version !== undefined && !into.has(node.name)) into.set(node.name, node.version);
    if (node.children) versionsOf(node.children, into);
  }
  return into;
}

export function aggregate(
  runs: ProfileRun[],
  meta: { handler: string; taskRoot: string; memory: number; node: string },
  rules: RuleTable,
  sizes?: Record<string, number>,
): Profile {
  const n = runs.length;
  const keys = new Set<string>();
  for (const run of runs) for (const key of Object.keys(run.module_timings)) keys.add(key);
  const tree = mergeTrees(
    runs.map((run) => run.module_tree.children),
    n,
  );
  const versions = versionsOf(tree);
  const modules: ProfileModule[] = [...keys]
    .map((name) => {
      const values = runs.map((run) => run.module_timings[name] ?? 0);
      const seen = runs.filter((run) => run.module_timings[name] !== undefined).length;
      const m: ProfileModule = { name, self_ms: median(values), seen_in: round3(seen / n) };
      const version = versions.get(name);
      if (version !== undefined) m.version = version;
      if (sizes?.[name] !== undefined) m.bytes = sizes[name];
      return m;
    })
    .sort((a, b) => b.self_ms - a.self_ms || (a.name < b.name ? -1 : 1));
  const loadMs = spread(runs.map((run) => run.load_ms));
  const esmTimings = [...new Set(runs.map((run) => run.esm_timing))];
  const linked = runs.some((run) => typeof run.module_tree.link_ms === 'number' || typeof run.module_tree.loading_ms === 'number');
  const cpuRuns = runs.map((run) => run.cpu).filter((cpu): cpu is CpuRun => cpu !== undefined);
  // The same input the server's engine gets: p50 per module, version, seen_in, module-load p50.
  const figures: Record<string, { p50_ms: number; version: string | null; seen_in: number }> = {};
  for (const m of modules) figures[m.name] = { p50_ms: m.self_ms, version: m.version ?? null, seen_in: m.seen_in };
  return {
    schema: SCHEMA,
    version: SCHEMA_VERSION,
    sdk_version: SDK_VERSION,
    handler: meta.handler,
    task_root: meta.taskRoot,
    node_version: meta.node,
    memory_mb: meta.memory,
    runs: n,
    load_ms: loadMs,
    init_ms: spread(runs.map((run) => run.init_ms)),
    sdk_overhead_ms: spread(runs.map((run) => run.sdk_overhead_ms)),
    ...(esmTimings.length === 1 ? { esm_timing: esmTimings[0] } : {}),
    ...(linked ? { link_ms: spread(runs.map((run) => run.module_tree.link_ms ?? 0)) } : {}),
    modules,
    tree,
    recommendations: recommend(rules, figures, { module_load_p50_ms: loadMs.median, runtime: `nodejs${process.versions.node.split('.')[0]}.x` }),
    ...(cpuRuns.length > 0 ? { cpu_profile: summariseCpu(cpuRuns) } : {}),
    runs_detail: runs,
  };
}

// ---- CPU profile ---------------------------------------------------------------------------

function summariseCpu(runs: CpuRun[]): CpuProfileSummary {
  const names = new Set<string>();
  for (const run of runs) for (const name of Object.keys(run.scripts)) names.add(name);
  const interval = runs[0]!.interval_us;
  const samples = median(runs.map((run) => run.samples));
  return {
    method: 'v8-cpu-profile',
    interval_us: interval,
    samples,
    exactness: cpuExactness(interval),
    scripts: [...names].map((name) => ({ name, ms: median(runs.map((run) => run.scripts[name] ?? 0)) })).sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1)),
    module_loader_ms: median(runs.map((run) => run.module_loader_ms)),
    garbage_collector_ms: median(runs.map((run) => run.garbage_collector_ms)),
    program_ms: median(runs.map((run) => run.program_ms)),
    other_ms: median(runs.map((run) => run.other_ms)),
  };
}

export function compareProfiles(previous: Profile, current: Profile): Comparison {
  const before = new Map(previous.modules.map((m) => [m.name, m.self_ms]));
  const after = new Map(current.modules.map((m) => [m.name, m.self_ms]));
  const names = new Set([...before.keys(), ...after.keys()]);
  const modules = [...names]
    .map((name) => {
      const b = before.get(name) ?? 0;
      const a = after.get(name) ?? 0;
      return { name, before_ms: b, after_ms: a, delta_ms: round3(a - b) };
    })
    .filter((m) => m.delta_ms !== 0)
    .sort((x, y) => Math.abs(y.delta_ms) - Math.abs(x.delta_ms) || (x.name < y.name ? -1 : 1));
  const b = previous.load_ms.median;
  const a = current.load_ms.median;
  return {
    previous_runs: previous.runs,
    load_ms: { before: b, after: a, delta: round3(a - b), percent: b > 0 ? Math.round(((a - b) / b) * 1000) / 10 : null },
    modules,
  };
}

// ---- text output ---------------------------------------------------------------------------

interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
}

export function painter(enabled: boolean): Paint {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), yellow: wrap(33, 39), green: wrap(32, 39) };
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

function fit(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width);
  return text.slice(0, Math.max(0, width - 1)) + '…';
}

function wrapText(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

export function renderTree(tree: ProfileTreeNode[], loadMs: number, threshold: number, paint: Paint): string[] {
  const lines: string[] = [];
  // ES module loading timed: self time split into loading and evaluation, two more columns
  const split = (nodes: ProfileTreeNode[]): boolean => nodes.some((node) => node.loading_ms !== undefined || split(node.children ?? []));
  const columns = split(tree);
  const nameWidth = WIDTH - (columns ? 40 : 20);
  lines.push(paint.bold(`${'package / file'.padEnd(nameWidth)}${'self ms'.padStart(10)}${'total ms'.padStart(10)}${columns ? `${'loading'.padStart(10)}${'eval'.padStart(10)}` : ''}`));
  const colour = (ms: number, text: string): string =>
    loadMs > 0 && ms >= loadMs * 0.2 ? paint.red(text) : loadMs > 0 && ms >= loadMs * 0.05 ? paint.yellow(text) : text;
  const visit = (nodes: ProfileTreeNode[], prefix: string): void => {
    const shown = nodes.filter((node) => node.total_ms >= threshold);
    const hidden = nodes.length - shown.length;
    shown.forEach((node, index) => {
      const last = index === shown.length - 1 && hidden === 0;
      const branch = prefix === '' && nodes === tree ? '' : last ? '└─ ' : '├─ ';
      const label = node.version !== undefined ? `${node.name} ${node.version}` : node.name;
      const name = fit(prefix + branch + label, nameWidth);
      const parts = columns ? `${(node.loading_ms === undefined ? '' : fmt(node.loading_ms)).padStart(10)}${(node.evaluation_ms === undefined ? '' : fmt(node.evaluation_ms)).padStart(10)}` : '';
      lines.push(`${name}${colour(node.self_ms, fmt(node.self_ms).padStart(10))}${colour(node.total_ms, fmt(node.total_ms).padStart(10))}${parts}`);
      if (node.children) visit(node.children, prefix + (branch === '' ? '' : last ? '   ' : '│  '));
    });
    if (hidden > 0) {
      let total = 0;
      for (const node of nodes) if (node.total_ms < threshold) total += node.total_ms;
      const branch = prefix === '' && nodes === tree ? '' : '└─ ';
      const label = `(${hidden} more under ${fmt(threshold)} ms)`;
      lines.push(paint.dim(`${fit(prefix + branch + label, nameWidth)}${''.padStart(10)}${fmt(total).padStart(10)}`));
    }
  };
  visit(tree, '');
  return lines;
}

const range = (s: Spread): string => `p25-p75 ${fmt(s.p25)}-${fmt(s.p75)}, min-max ${fmt(s.min)}-${fmt(s.max)}`;

export function renderText(profile: Profile, threshold: number, paint: Paint): string {
  const out: string[] = [];
  out.push(
    paint.bold(`coldstart profile: ${profile.handler}`),
    `${profile.runs} run${profile.runs === 1 ? '' : 's'}, Node.js ${profile.node_version}, ${profile.memory_mb} MB simulated, SDK ${profile.sdk_version}`,
    '',
    `module load   ${fmt(profile.load_ms.median).padStart(8)} ms median  (${range(profile.load_ms)})`,
    `init          ${fmt(profile.init_ms.median).padStart(8)} ms median  (${range(profile.init_ms)})`,
    `SDK overhead  ${fmt(profile.sdk_overhead_ms.median).padStart(8)} ms median  (included in init, not in the tree)`,
  );
  if (profile.link_ms !== undefined)
    out.push(`ESM linking   ${fmt(profile.link_ms.median).padStart(8)} ms median  (in module load, in no node of the tree)`);
  out.push('');
  if (profile.bundle?.kind === 'no-plugin')
    out.push(
      ...wrapText(
        'This handler is a bundle built without the @coldstart/analyzer/esbuild plugin: there is no per-module data inside it, so the whole bundle counts as one file. Add the plugin to the build to see its packages.',
        WIDTH,
        '',
      ).map((line) => paint.yellow(line)),
      '',
    );
  else if (profile.bundle?.kind === 'esbuild-plugin')
    out.push(`Bundle built with the esbuild plugin${profile.bundle.output_bytes !== undefined ? `, ${profile.bundle.output_bytes} bytes` : ''}.`, '');
  out.push(...renderTree(profile.tree, profile.load_ms.median, threshold, paint));
  out.push('');
  if (profile.cpu_profile !== undefined) {
    const c = profile.cpu_profile;
    out.push(paint.bold(`CPU profile (V8, every ${c.interval_us} us, ${c.samples} samples per run): JavaScript running, by script`));
    for (const entry of c.scripts.filter((e) => e.ms >= 0.5).slice(0, 15)) out.push(`${fit(entry.name, WIDTH - 20)}${fmt(entry.ms).padStart(10)}`);
    out.push(
      `${fit("Node's module loader (resolve, read, compile)", WIDTH - 20)}${fmt(c.module_loader_ms).padStart(10)}`,
      `${fit('V8 outside JavaScript (compiling, linking)', WIDTH - 20)}${fmt(c.program_ms).padStart(10)}`,
      `${fit('garbage collector', WIDTH - 20)}${fmt(c.garbage_collector_ms).padStart(10)}`,
      `${fit('other (the SDK, Node.js, idle)', WIDTH - 20)}${fmt(c.other_ms).padStart(10)}`,
      ...wrapText(`How exact: ${c.exactness}.`, WIDTH, '').map((line) => paint.dim(line)),
      '',
    );
  }
  if (profile.recommendations.length === 0) {
    out.push('Recommendations: none (no module above the rule table\'s thresholds).');
  } else {
    out.push(paint.bold('Recommendations') + ' (estimated savings overlap; do not add them up)');
    profile.recommendations.forEach((rec, i) => {
      const bytes = profile.modules.find((m) => m.name === rec.module)?.bytes;
      const size = bytes !== undefined ? `, ${bytes >= 10240 ? `${Math.round(bytes / 1024)} kB` : `${bytes} B`} in the bundle` : '';
      const head = `${i + 1}. ${rec.module === OWN_CODE_NAME ? 'your own code' : rec.module}: about ${rec.potential_savings_ms} ms${size} [${rec.rule_id}]`;
      out.push(paint.yellow(fit(head, WIDTH).trimEnd()));
      out.push(...wrapText(rec.issue, WIDTH, '   '));
      out.push(...wrapText(`Fix: ${rec.suggestion}`, WIDTH, '   '));
      out.push(...wrapText(`Evidence: ${rec.evidence}`, WIDTH, '   ').map((line) => paint.dim(line)));
    });
  }
  if (profile.compare !== undefined) {
    const c = profile.compare;
    out.push('', paint.bold(`Compared with the previous profile (${c.previous_runs} runs)`));
    const sign = (x: number): string => (x > 0 ? `+${fmt(x)}` : x < 0 ? `-${fmt(-x)}` : '0');
    const pct = c.load_ms.percent === null ? '' : ` (${c.load_ms.percent > 0 ? '+' : ''}${c.load_ms.percent} %)`;
    const verdict = c.load_ms.delta > 0 ? paint.red(`slower by ${sign(c.load_ms.delta)} ms${pct}`) : c.load_ms.delta < 0 ? paint.green(`faster by ${sign(-c.load_ms.delta).replace('+', '')} ms${pct}`) : 'unchanged';
    out.push(`module load ${fmt(c.load_ms.before)} -> ${fmt(c.load_ms.after)} ms: ${verdict}`);
    const shown = c.modules.filter((m) => Math.abs(m.delta_ms) >= 0.5).slice(0, 15);
    for (const m of shown) {
      const what = m.before_ms === 0 ? 'new' : m.after_ms === 0 ? 'gone' : m.delta_ms > 0 ? 'slower' : 'faster';
      const text = `${fit(m.name, 40)} ${what.padEnd(7)}${fmt(m.before_ms).padStart(9)} ->${fmt(m.after_ms).padStart(9)} ms ${sign(m.delta_ms).padStart(9)}`;
      out.push(m.delta_ms > 0 ? paint.red(text) : paint.green(text));
    }
    if (shown.length === 0) out.push('no module changed by 0.5 ms or more');
  }
  if (profile.budget !== undefined) {
    const b = profile.budget;
    out.push(
      '',
      b.exceeded
        ? paint.red(`Budget exceeded: median module load ${fmt(b.median_ms)} ms > ${fmt(b.limit_ms)} ms`)
        : paint.green(`Within budget: median module load ${fmt(b.median_ms)} ms <= ${fmt(b.limit_ms)} ms`),
    );
  }
  return out.join('\n') + '\n';
}

// ---- sending -------------------------------------------------------------------------------

export function recordsFor(profile: Profile, functionName: string): object[] {
  const runtime = runtimeVersion(`AWS_Lambda_nodejs${profile.node_version.replace(/^v/, '').split('.')[0]}.x`, profile.node_version);
  return profile.runs_detail.map((run) => {
    const id = randomUUID();
    return {
      function_name: functionName.slice(0, 255),
      invocation_id: id,
      request_id: id,
      timestamp: run.started_at,
      cold_start: true,
      init_duration_ms: Math.round(run.init_ms),
      execution_duration_ms: 0,
      memory_used_mb: run.memory_used_mb,
      memory_allocated_mb: profile.memory_mb,
      module_timings: run.module_timings,
      runtime_version: runtime,
      architecture: architecture(process.arch),
      region: process.env.AWS_REGION || 'us-east-1',
      init_type: PROFILE_INIT_TYPE,
      start_kind: 'cold',
      module_tree: run.module_tree,
      sdk_version: SDK_VERSION,
      sdk_overhead_ms: run.sdk_overhead_ms,
      esm_timing: run.esm_timing,
      module_source: moduleSourceOf(profile.bundle?.kind),
      // the profile runs the code as $LATEST (lambdaEnvironment); code_id tells its versions apart
      function_version: '$LATEST',
      ...(run.code_id !== undefined ? { code_id: run.code_id } : {}),
    };
  });
}

async function post(endpoint: string, apiKey: string, body: string): Promise<{ status: number; text: string }> {
  const url = new URL(BATCH_PATH.replace(/^\//, ''), endpoint.endsWith('/') ? endpoint : endpoint + '/');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = (url.protocol === 'https:' ? require('node:https') : require('node:http')) as typeof import('node:http');
  return new Promise((resolvePromise, reject) => {
    const request = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey, 'content-length': Buffer.byteLength(body) }, timeout: 15_000 },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () => resolvePromise({ status: response.statusCode ?? 0, text }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out after 15 s')));
    request.on('error', reject);
    request.end(body);
  });
}

// ---- main ----------------------------------------------------------------------------------

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
      if (previous.version !== SCHEMA_VERSION) throw new Error(`${options.compare}: profile schema version ${previous.version}, expected ${SCHEMA_VERSION}`);
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
      const answer = await post(endpoint!, apiKey!, JSON.stringify({ invocations: recordsFor(profile, functionName) }));
      if (answer.status < 200 || answer.status >= 300) throw new Error(`HTTP ${answer.status}: ${answer.text.slice(0, 500)}`);
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
