// Installs the module-load hooks that feed the recorder.
//
// CommonJS: Module.prototype.load runs once per module actually loaded (never for cache hits or
// built-ins, and a circular require returns the partial exports from the cache without calling
// it), with the resolved file name, and covers reading, compiling and running the module body.
// Module._load (what require() calls) is hooked too, only to note when each require started, so
// that the path resolution before load() counts as the loaded module's time. A module that throws
// is timed too (finally) and its error propagates untouched.
//
// ES modules: a load hook adds start/end markers to each module's source (see inject.ts). On
// Node.js with module.registerHooks (22.15+, 23.5+) the hook runs in-thread and costs little; on
// older releases with module.register (18.19+, 20.6+) it runs in a hooks thread whose start-up
// costs several milliseconds, so in `auto` mode it is only started when the handler is an ES
// module. Node.js without either cannot time ESM, and the payload says so (esm_timing).

import { ENV_ESM_TIMING, ENV_HANDLER, ESM_MARKER_KEY, LAMBDA_ENV, SDK_PACKAGE } from './constants';
import { injectMarkers, shouldInstrument, sourceText } from './inject';
import type { Recorder } from './recorder';

type LoadFunction = (this: unknown, filename: string) => unknown;
interface ModuleClass {
  prototype: { load: LoadFunction };
  _load: (...args: unknown[]) => unknown;
}
interface LoadResult {
  format?: string | null;
  source?: unknown;
}
interface ModuleApi {
  registerHooks?: (hooks: { load: (url: string, context: unknown, next: (u: string, c?: unknown) => LoadResult) => LoadResult }) => unknown;
  register?: (specifier: string | URL, parentURL?: string | URL) => void;
}

export type EsmTiming = 'on' | 'off' | 'skipped' | 'partial' | 'unsupported';

/**
 * The CommonJS Module class. `module.constructor` is that class: taking it from there spares
 * loading the public `node:module` builtin, which no one may have loaded yet and costs up to a
 * millisecond on Node.js 20 (its source-map and loader-hook helpers).
 */
function moduleClass(): ModuleClass & ModuleApi {
  const own = typeof module === 'object' && module !== null ? (module.constructor as unknown as ModuleClass) : undefined;
  if (own !== undefined && typeof own._load === 'function' && typeof own.prototype?.load === 'function') return own as ModuleClass & ModuleApi;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:module') as ModuleClass & ModuleApi;
}

export function installCommonJsHook(recorder: Recorder): () => void {
  const Module = moduleClass();
  const originalLoad = Module.prototype.load;
  const originalResolveAndLoad = Module._load;
  // Clock at entry of each Module._load call still running: a module's time starts when its
  // require() starts, so resolving its path is charged to it, not to the module requiring it.
  const entries: bigint[] = [];
  const timedResolveAndLoad = function (this: unknown, request: unknown) {
    if (!recorder.active) return originalResolveAndLoad.apply(this, arguments as unknown as unknown[]);
    const started = process.hrtime.bigint();
    if (typeof request === 'string' && request.startsWith(SDK_PACKAGE)) {
      // The user's require() of this SDK: the SDK's cost, reported as overhead.
      try {
        return originalResolveAndLoad.apply(this, arguments as unknown as unknown[]);
      } finally {
        recorder.exclude(started);
      }
    }
    entries.push(started);
    try {
      return originalResolveAndLoad.apply(this, arguments as unknown as unknown[]);
    } finally {
      entries.pop();
    }
  };
  const timedLoad: LoadFunction = function (this: unknown, filename: string) {
    if (!recorder.active) return originalLoad.apply(this, arguments as unknown as [string]);
    const frame = recorder.enterFile(filename, entries[entries.length - 1]);
    try {
      return originalLoad.apply(this, arguments as unknown as [string]);
    } finally {
      recorder.exit(frame);
    }
  };
  Module.prototype.load = timedLoad;
  if (typeof originalResolveAndLoad === 'function') Module._load = timedResolveAndLoad;
  return () => {
    // Put the originals back unless someone wrapped ours since (then ours stay, inactive).
    if (Module.prototype.load === timedLoad) Module.prototype.load = originalLoad;
    if (Module._load === timedResolveAndLoad) Module._load = originalResolveAndLoad;
  };
}

/**
 * Which ESM loader hooks the running Node.js has, from its version (without loading node:module):
 * module.registerHooks (in-thread) on 22.15+ and 23.5+, module.register (hooks thread) on 18.19+
 * and 20.6+.
 */
export function esmHooksApi(version: string = process.versions.node): 'registerHooks' | 'register' | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major > 23 || (major === 23 && minor >= 5) || (major === 22 && minor >= 15)) return 'registerHooks';
  if (major > 20 || (major === 20 && minor >= 6) || (major === 18 && minor >= 19) || major === 19) return 'register';
  return undefined;
}

export function installEsmHooks(recorder: Recorder, mode: string, coreFile: string): EsmTiming {
  if (mode === 'off') return 'off';
  // The public node:module (where register/registerHooks live) is loaded only when it is used:
  // on Node.js 20 with a CommonJS handler (auto mode) it is not, and loading it would cost up to
  // a millisecond of init for nothing.
  let api: ModuleApi = moduleClass();
  if (typeof api.registerHooks !== 'function' && typeof api.register !== 'function') {
    const available = esmHooksApi();
    if (available === undefined) return 'unsupported';
    if (available === 'register' && mode !== 'on' && !handlerIsEsm()) return 'skipped';
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    api = require('node:module') as ModuleApi;
  }
  const g = globalThis as Record<symbol, unknown>;
  g[Symbol.for(ESM_MARKER_KEY)] = (kind: number, url: string): void => {
    if (kind === 0) recorder.enterUrl(url);
    else recorder.exitUrl(url);
  };
  if (typeof api.registerHooks === 'function') {
    api.registerHooks({
      load(url, context, nextLoad) {
        const result = nextLoad(url, context);
        if (!recorder.active || !shouldInstrument(url, result.format)) return result;
        const started = process.hrtime.bigint();
        try {
          const text = sourceText(result.source);
          if (text === undefined) return result;
          return { ...result, source: injectMarkers(text) };
        } finally {
          recorder.exclude(started);
        }
      },
    });
    return 'on';
  }
  if (typeof api.register === 'function') {
    if (mode !== 'on' && !handlerIsEsm()) return 'skipped';
    api.register(loaderUrlNextTo(coreFile));
    return 'on';
  }
  return 'unsupported';
}

export function esmTimingMode(env: NodeJS.ProcessEnv): string {
  const mode = (env[ENV_ESM_TIMING] ?? 'auto').trim().toLowerCase();
  return mode === 'on' || mode === 'off' ? mode : 'auto';
}

/**
 * Guesses, as Lambda's runtime would resolve it, whether the handler is an ES module: a `.mjs`
 * file, or a `.js` file whose nearest package.json says "type": "module".
 */
export function handlerIsEsm(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    const spec = env[ENV_HANDLER] || env[LAMBDA_ENV.handler];
    if (!spec) return false;
    const root = env[LAMBDA_ENV.taskRoot] || process.cwd();
    const slash = spec.lastIndexOf('/');
    const dot = spec.indexOf('.', slash + 1);
    if (dot < 0) return false;
    // required here, not at the top: the SDK's own load does not need them (about 0.1 ms)
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { existsSync, readFileSync } = require('node:fs') as typeof import('node:fs');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { dirname, join } = require('node:path') as typeof import('node:path');
    const base = join(root, spec.slice(0, dot));
    if (existsSync(base + '.mjs') && !existsSync(base + '.js')) return true;
    if (!existsSync(base + '.js')) return false;
    for (let dir = dirname(base); ; dir = dirname(dir)) {
      const manifest = join(dir, 'package.json');
      if (existsSync(manifest)) return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: string }).type === 'module';
      if (dirname(dir) === dir) return false;
    }
  } catch {
    return false;
  }
}

function loaderUrlNextTo(filename: string): URL {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { pathToFileURL } = require('node:url') as typeof import('node:url');
  return new URL('./esm-loader.mjs', pathToFileURL(filename));
}
