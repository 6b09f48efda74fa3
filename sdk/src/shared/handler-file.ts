// Where the function's handler file is, as Lambda's runtime finds it. Shared by the init half (is
// the handler CommonJS? runtime/hooks.ts) and the invocation half (code_id, bundle detection).

import { ENV_HANDLER, LAMBDA_ENV } from './constants';

/**
 * The handler file as Lambda's runtime finds it: COLDSTART_HANDLER (behind the handler redirect)
 * or _HANDLER, under LAMBDA_TASK_ROOT, `.js`, then `.mjs`, then `.cjs`.
 */
export function handlerFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const { existsSync } = require('node:fs') as typeof import('node:fs');
  const spec = env[ENV_HANDLER] || env[LAMBDA_ENV.handler];
  if (!spec) return undefined;
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) return undefined;
  const root = env[LAMBDA_ENV.taskRoot] || process.cwd();
  const base = (root.endsWith('/') ? root : root + '/') + spec.slice(0, dot);
  for (const extension of ['.js', '.mjs', '.cjs']) if (existsSync(base + extension)) return base + extension;
  return undefined;
}
