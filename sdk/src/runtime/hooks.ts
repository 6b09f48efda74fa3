// Installs the module-load hooks that feed the recorder.
//
// CommonJS: Module.prototype.load runs once per module actually loaded (never for cache hits or
// built-ins, and a circular require returns the partial exports from the cache without calling
// it), with the resolved file name, and covers reading, compiling and running the module body.
// Module._load (what require() calls) is hooked too, only to note when each require started, so
// that the path resolution before load() counts as the loaded module's time. A module that throws
// is timed too (finally) and its error propagates untouched.
//
// ES modules are loaded (resolved, read, compiled, linked: the whole graph) before any body runs,
// then evaluated. Two kinds of data:
// - evaluation: a load hook adds start/end markers to each module's source (see inject.ts);
// - loading: with the in-thread hooks (module.registerHooks, Node.js 22.15+ and 23.5+), resolve and
//   load hooks tell the recorder when each module is resolved and loaded; the time from then to
//   the next hook event is that module's (Node compiles a module right after its load hook
//   returns, before it resolves the next one), see Recorder.loading(). esm_timing "on".
// On older releases only module.register (18.19+, 20.6+, 22 before 22.15) exists: its hooks run in
// a hooks thread whose start-up and per-module messaging made an ES module handler's init up to
// +86 % (Node.js 20): by default ("auto") it is not started (esm_timing "skipped"), and
// COLDSTART_ESM_TIMING=on starts it (esm_timing "hooks-thread"): bodies get markers, and the
// hooks thread writes each module's resolve and load, with its clock readings, into a buffer shared
// with the recorder (esm-loader.ts, loading-buffer.ts), which charges loading as above, less
// exactly (recorder.ts says what it cannot separate). Node.js without either cannot time ESM
// ("unsupported"). The SDK's own files are never timed as a package: their loading is overhead.
//
// A CommonJS handler needs no ESM hooks (esm_timing "commonjs", auto mode): registered in-thread
// hooks also run for every require() (Node.js sends CommonJS loads through them), which made such
// a function's init about 10 % slower, allocated enough to start a major garbage collection that
// landed in its first response (+15-25 ms, bench/sdk/COLD-REQUEST.md), and bought nothing: the
// CommonJS hook times those modules already. An ES module such a handler require()s (Node.js 22.12+)
// is timed as one unit by the CommonJS hook, its own imports included.

import { ENV_ESM_TIMING, ESM_MARKER_GLOBAL, ESM_MARKER_KEY, SDK_PACKAGE } from '../shared/constants';
import { handlerFile } from '../shared/handler-file';
import { sdkFiles } from '../shared/sdk-files';
import { injectMarkers, markers, shouldInstrument } from './inject';
import { LoadingBuffer } from './loading-buffer';
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
interface HookContext {
  conditions?: readonly string[];
}
type NextResolve = (specifier: string, context?: unknown) => { url: string };
type NextLoad = (url: string, context?: unknown) => LoadResult;
interface ModuleApi {
  registerHooks?: (hooks: {
    resolve: (specifier: string, context: HookContext, next: NextResolve) => { url: string };
    load: (url: string, context: HookContext, next: NextLoad) => LoadResult;
  }) => { deregister?: () => void } | undefined;
  register?: (specifier: string | URL, options?: { data?: unknown }) => void;
}

/**
 * `on`: ES modules' loading and evaluation timed per module (in-thread hooks); `hooks-thread`: the
 * same from the hooks thread's clock (forced on; less exact, see recorder.ts); `evaluation`: their
 * bodies only (hooks thread without room for more loading events, or without SharedArrayBuffer);
 * `skipped`: not timed, the hooks thread was not started (auto mode); `commonjs`: the handler is
 * CommonJS, no ESM hooks were needed (auto mode); `partial`: the SDK was imported from ESM without
 * a preload; `off`; `unsupported`.
 */
export type EsmTiming = 'on' | 'hooks-thread' | 'evaluation' | 'off' | 'skipped' | 'commonjs' | 'partial' | 'unsupported';

/** How much of a type-less `.js` handler is read to look for ES module syntax. */
const SYNTAX_HEAD_BYTES = 16 * 1024;
/** ES module syntax at the start of a line: what makes Node.js load a type-less `.js` file as ESM. */
const ESM_SYNTAX = /^[ \t]*(?:import[ \t]+[\w$]|import[ \t]*[{*'"]|export[ \t]+[\w$]|export[ \t]*[{*])/m;

/**
 * Whether the function's handler file (COLDSTART_HANDLER behind the handler redirect, else
 * _HANDLER, under LAMBDA_TASK_ROOT, found as Lambda's runtime finds it: `.js`, `.mjs`, `.cjs`) is
 * CommonJS for certain: `.cjs`, or `.js` under a package.json whose "type" is "commonjs", or with
 * no "type" and no ES module syntax in its first 16 kB (Node.js 22.7+ loads such a file as ESM if
 * it has). False when it is ESM or cannot be told. A few file-system calls, no module loaded.
 */
export function handlerIsCommonJs(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    const file = handlerFile(env);
    if (file === undefined || file.endsWith('.mjs')) return false;
    if (file.endsWith('.cjs')) return true;
    const fs = require('node:fs') as typeof import('node:fs');
    for (let dir = file.slice(0, file.lastIndexOf('/')); dir !== ''; dir = dir.slice(0, dir.lastIndexOf('/'))) {
      let text: string;
      try {
        text = fs.readFileSync(dir + '/package.json', 'utf8');
      } catch {
        continue;
      }
      const type = (JSON.parse(text) as { type?: unknown }).type;
      if (type === 'module') return false;
      if (type === 'commonjs') return true;
      break;
    }
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.allocUnsafe(SYNTAX_HEAD_BYTES);
      return !ESM_SYNTAX.test(head.toString('utf8', 0, fs.readSync(fd, head, 0, SYNTAX_HEAD_BYTES, 0)));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * The CommonJS Module class. `module.constructor` is that class: taking it from there spares
 * loading the public `node:module` builtin, which no one may have loaded yet and costs up to a
 * millisecond on Node.js 20 (its source-map and loader-hook helpers).
 */
function moduleClass(): ModuleClass & ModuleApi {
  const own = typeof module === 'object' && module !== null ? (module.constructor as unknown as ModuleClass) : undefined;
  if (own !== undefined && typeof own._load === 'function' && typeof own.prototype?.load === 'function')
    return own as ModuleClass & ModuleApi;
  return require('node:module') as ModuleClass & ModuleApi;
}

/**
 * `coreFile`: this copy's dist/index.cjs. The SDK's own files (its invocation half, loaded as the
 * first invocation starts) are its overhead, never a package's time.
 */
export function installCommonJsHook(recorder: Recorder, coreFile?: string): () => void {
  const Module = moduleClass();
  const own = coreFile === undefined ? undefined : sdkFilePaths(coreFile);
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
    if (own !== undefined && typeof filename === 'string' && own(filename)) {
      const started = process.hrtime.bigint();
      try {
        return originalLoad.apply(this, arguments as unknown as [string]);
      } finally {
        recorder.exclude(started);
      }
    }
    if (recorder.deferCommonJs && recorder.importedCommonJs.size === 0) {
      // noted, and timed from the notes later (Recorder.noteEnter)
      const id = recorder.noteEnter(filename, entries[entries.length - 1]);
      try {
        return originalLoad.apply(this, arguments as unknown as [string]);
      } finally {
        recorder.noteExit(id);
      }
    }
    const frame = recorder.enterFile(filename, entries[entries.length - 1]);
    // imported from ESM: the ESM loader copies its exports after this returns (Recorder.exit)
    const tail = recorder.importedCommonJs.size > 0 && recorder.importedCommonJs.delete(filename);
    try {
      return originalLoad.apply(this, arguments as unknown as [string]);
    } finally {
      recorder.exit(frame, tail);
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

export function installEsmHooks(recorder: Recorder, mode: string, coreFile: string, env: NodeJS.ProcessEnv = process.env): EsmTiming {
  if (mode === 'off') return 'off';
  if (mode === 'auto' && handlerIsCommonJs(env)) return 'commonjs';
  // The public node:module (where register/registerHooks live) is loaded only when it is used:
  // on Node.js 20 in auto mode it is not, and loading it would cost up to a millisecond of init.
  let api: ModuleApi = moduleClass();
  if (typeof api.registerHooks !== 'function' && typeof api.register !== 'function') {
    const available = esmHooksApi();
    if (available === undefined) return 'unsupported';
    if (available === 'register' && mode !== 'on') return 'skipped';
    api = require('node:module') as ModuleApi;
  }
  const g = globalThis as Record<symbol, unknown>;
  g[Symbol.for(ESM_MARKER_KEY)] = (kind: number, url: string): void => {
    if (kind === 0) recorder.enterUrl(url);
    else recorder.exitUrl(url);
  };
  if (typeof api.registerHooks === 'function') {
    const own = ownFiles(coreFile);
    // module number (in the markers) -> URL
    const urls: string[] = [];
    // modules already loaded: resolving them again (each import of a shared module) is a cache
    // hit that the importer's loading absorbs, not an event (half the hook calls of a barrel)
    const loaded = new Set<string>();
    Object.defineProperty(globalThis, ESM_MARKER_GLOBAL, {
      value: (kind: number, id: number): void => {
        const url = urls[id];
        if (url === undefined) return;
        if (kind === 0) recorder.enterUrl(url);
        else recorder.exitUrl(url);
      },
      configurable: true,
      writable: true,
      enumerable: false,
    });
    // Once init is over (the recorder closed), the hooks go: modules imported later (lazily, by the
    // handler) must not pay for them. Removed from a microtask, not from inside the hook chain.
    let handle: { deregister?: () => void } | undefined;
    let removing = false;
    const inactive = (): boolean => {
      if (recorder.active) return false;
      if (!removing && typeof handle?.deregister === 'function') {
        removing = true;
        queueMicrotask(() => handle!.deregister!());
      }
      return true;
    };
    let toPath: (url: string) => string = (url) => {
      toPath = (require('node:url') as typeof import('node:url')).fileURLToPath;
      return toPath(url);
    };
    // the module last resolved (a new one), and whether it is the SDK's: Node loads a module right
    // after resolving it, and its loading frame, opened by the resolve, then simply goes on (no
    // event, no clock read: a third of the hooks' work per module)
    let resolvedUrl: string | undefined;
    let resolvedOwn = false;
    handle = api.registerHooks({
      resolve(specifier, context, nextResolve) {
        const entered = process.hrtime.bigint();
        if (inactive() || !imported(context)) return nextResolve(specifier, context);
        const started = process.hrtime.bigint();
        const result = nextResolve(specifier, context);
        const url = result?.url;
        if (typeof url === 'string' && !loaded.has(url)) {
          resolvedUrl = url;
          resolvedOwn = own(url);
          recorder.loading(url, started, undefined, resolvedOwn, entered);
        }
        return result;
      },
      load(url, context, nextLoad) {
        if (inactive() || !imported(context)) return nextLoad(url, context);
        const continues = url === resolvedUrl && !resolvedOwn && recorder.continuesLoading(url);
        const started = continues ? 0n : process.hrtime.bigint();
        const result = nextLoad(url, context);
        loaded.add(url);
        const sdk = url === resolvedUrl ? resolvedOwn : own(url);
        // counted here unless something else counts it: a body marker (module) or the CommonJS hook
        const format = result.format;
        const counted = format !== 'module' && format !== 'commonjs' && format !== 'builtin';
        if (!continues) recorder.loading(url, started, counted, sdk);
        else if (counted) recorder.countModule();
        if (format === 'commonjs' && !sdk && url.startsWith('file:')) {
          const noting = process.hrtime.bigint();
          recorder.importedCommonJs.add(toPath(url));
          recorder.exclude(noting);
        }
        if (sdk || !shouldInstrument(url, result.format)) return result;
        const injecting = process.hrtime.bigint();
        try {
          const source = injectMarkers(result.source, markers(ESM_MARKER_GLOBAL, String(urls.length)));
          if (source === undefined) return result;
          urls.push(url);
          return { ...result, source };
        } finally {
          recorder.exclude(injecting);
        }
      },
    });
    return 'on';
  }
  if (typeof api.register === 'function') {
    if (mode !== 'on') return 'skipped';
    // The hooks thread runs the process's --require/--import preloads too: the SDK preloaded there
    // must not register its hooks again (they would be chained twice: two markers per module, and
    // the outer module frames never closed). Loading worker_threads costs little next to starting
    // the hooks thread, and only this forced mode pays it.
    if (!(require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread) return 'off';
    // the hooks thread writes its loading events into a buffer shared with the recorder
    let events: LoadingBuffer | undefined;
    try {
      events = LoadingBuffer.create();
    } catch {
      // no SharedArrayBuffer (a runtime without it): bodies only
    }
    api.register(loaderUrlNextTo(coreFile), { data: { coldstartLoading: events?.shared } });
    if (events === undefined) return 'evaluation';
    recorder.attachOffThread(events);
    return 'hooks-thread';
  }
  return 'unsupported';
}

/**
 * Whether a hook call comes from the ESM loader (import, import()), not from require(): the
 * in-thread hooks see CommonJS requires too, which the CommonJS hook already times.
 */
function imported(context: HookContext | undefined): boolean {
  const conditions = context?.conditions;
  return conditions === undefined || conditions.includes('import');
}

/** The SDK's own files by path (see inject.ts), from this copy's dist/index.cjs. */
function sdkFilePaths(coreFile: string): (filename: string) => boolean {
  const { dirname } = require('node:path') as typeof import('node:path');
  return sdkFiles(dirname(dirname(coreFile)) + '/');
}

/** The SDK's own module URLs (see inject.ts), from this copy's dist/index.cjs. */
function ownFiles(coreFile: string): (url: string) => boolean {
  const { pathToFileURL } = require('node:url') as typeof import('node:url');
  const { dirname } = require('node:path') as typeof import('node:path');
  return sdkFiles(pathToFileURL(dirname(dirname(coreFile))).href + '/');
}

export function esmTimingMode(env: NodeJS.ProcessEnv): string {
  const mode = (env[ENV_ESM_TIMING] ?? 'auto').trim().toLowerCase();
  return mode === 'on' || mode === 'off' ? mode : 'auto';
}

function loaderUrlNextTo(filename: string): URL {
  const { pathToFileURL } = require('node:url') as typeof import('node:url');
  return new URL('./esm-loader.mjs', pathToFileURL(filename));
}
