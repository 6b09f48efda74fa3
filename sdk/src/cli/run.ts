// Running the handler: N fresh Node.js processes with the SDK preloaded and Lambda's environment
// simulated (lambdaEnvironment), each loading the handler once through child.ts and reporting the
// SDK's snapshot; and what the handler file is (a bundle, with the esbuild plugin or without).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { bundleKind } from '../shared/bundle';
import type { Options } from './args';
import { childScript } from './child';
import type { BundleInfo } from './profile';

export function sdkRoot(): string {
  // dist/cli.cjs -> the package root
  return resolve(__dirname, '..');
}

export function findTaskRoot(handler: string): string {
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
export function lambdaEnvironment(
  base: NodeJS.ProcessEnv,
  taskRoot: string,
  handler: string,
  memory: number,
  functionName: string,
): NodeJS.ProcessEnv {
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

export interface ChildResult {
  snapshot: Record<string, unknown> | undefined;
  error: string | undefined;
}

export function runOnce(
  options: Options,
  node: string,
  handler: string,
  taskRoot: string,
  functionName: string,
  esm: boolean,
): Promise<ChildResult> {
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
  const args = [`--max-old-space-size=${heap}`, '--require', join(sdkRoot(), 'register.cjs'), '-e', childScript(), handler];
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
    const sidecar = JSON.parse(readFileSync(handler + '.coldstart.json', 'utf8')) as {
      schema?: string;
      modules?: Record<string, number>;
      output_bytes?: number;
    };
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
