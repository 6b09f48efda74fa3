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
        loaded = require(file) as Record<string, unknown>;
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
