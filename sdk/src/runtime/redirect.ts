// The handler redirect: set the Lambda handler to `node_modules/@coldstart/analyzer/handler.handler`
// and the original one in COLDSTART_HANDLER. The SDK then loads first (so it sees the whole load of
// the function's code), loads the original handler the way Lambda's runtime would, and wraps it.

import { ENV_HANDLER, LAMBDA_ENV } from '../shared/constants';

// Kept as a real dynamic import in the CommonJS bundle (a bundler would turn import() into
// require()). Compiled on first use, not while the SDK loads.
let importFunction: ((specifier: string) => Promise<Record<string, unknown>>) | undefined;
function importModule(specifier: string): Promise<Record<string, unknown>> {
  importFunction ??= new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<Record<string, unknown>>;
  return importFunction(specifier);
}

/**
 * Loads a CommonJS (or synchronous ES module) handler file as Lambda's runtime does: AWS's runtime
 * interface client 4 (Node.js 22 and 24) import()s it, and Node.js's ESM loader runs it through
 * Module._load with no parent, outside any require(). Node.js keeps a cache of file-system stats
 * for as long as a module loaded that way runs its body: every require() resolved inside the
 * function's code (its whole dependency tree) shares it. A require() from here would run the
 * handler one level deep, where that cache is off: 680 more stat calls for the AWS SDK v2 handler
 * of bench/sdk (628 modules), several milliseconds of init paid to the SDK. Module._load is
 * require()'s own loader (the SDK's hook times it as any require).
 */
function loadTopLevel(file: string): Record<string, unknown> {
  const own = typeof module === 'object' && module !== null ? (module.constructor as unknown as { _load?: unknown }) : undefined;
  if (typeof own?._load === 'function')
    return (own._load as (request: string, parent: null, isMain: boolean) => Record<string, unknown>)(file, null, false);
  return require(file) as Record<string, unknown>;
}

export class HandlerNotFound extends Error {
  override name = 'Runtime.HandlerNotFound';
}

/** `src/app.handler` -> module path `src/app`, property path `handler` (as Lambda splits it). */
export function splitHandler(spec: string): { modulePath: string; propertyPath: string[] } {
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) throw new HandlerNotFound(`${ENV_HANDLER}="${spec}" is not of the form file.function`);
  return { modulePath: spec.slice(0, dot), propertyPath: spec.slice(dot + 1).split('.') };
}

export async function loadOriginalHandler(env: NodeJS.ProcessEnv = process.env): Promise<(...args: unknown[]) => unknown> {
  const spec = env[ENV_HANDLER];
  if (!spec) throw new HandlerNotFound(`${ENV_HANDLER} is not set: it must name the original handler, e.g. index.handler`);
  const root = env[LAMBDA_ENV.taskRoot] || process.cwd();
  const { pathToFileURL } = require('node:url') as typeof import('node:url');
  const { modulePath, propertyPath } = splitHandler(spec);
  const { existsSync } = require('node:fs') as typeof import('node:fs');
  const { join } = require('node:path') as typeof import('node:path');
  const base = join(root, modulePath);
  let loaded: Record<string, unknown> | undefined;
  for (const extension of ['.js', '.mjs', '.cjs']) {
    const file = base + extension;
    if (!existsSync(file)) continue;
    if (extension === '.mjs') {
      loaded = await importModule(pathToFileURL(file).href);
    } else {
      try {
        loaded = loadTopLevel(file);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
        loaded = await importModule(pathToFileURL(file).href);
      }
    }
    break;
  }
  if (loaded === undefined) throw new HandlerNotFound(`cannot find ${base}.js, .mjs or .cjs (from ${ENV_HANDLER}="${spec}")`);
  let target: unknown = loaded;
  for (const key of propertyPath) target = (target as Record<string, unknown> | undefined)?.[key];
  if (typeof target !== 'function') throw new HandlerNotFound(`${spec} is not a function`);
  return target as (...args: unknown[]) => unknown;
}
