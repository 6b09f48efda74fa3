// Module customization hooks for Node.js versions without module.registerHooks (18.19+, 20.x,
// 22 before 22.15): loaded by module.register() and run in Node's hooks thread, only when
// COLDSTART_ESM_TIMING=on (see hooks.ts). Module bodies get markers (evaluation); the SDK's own
// files (this file is dist/esm-loader.mjs) do not. Loading: when the main thread passed a
// SharedArrayBuffer (`initialize` data, see loading-buffer.ts), each resolve of a new module and
// each load is written there with its clock readings, for the recorder to read (esm_timing
// "hooks-thread", see Recorder.replayOffThread).

import { sdkFiles } from '../shared/sdk-files';
import { injectMarkers, markers, shouldInstrument } from './inject';
import { COMMONJS, COUNTED, LOAD, LoadingBuffer, OWN } from './loading-buffer';

const MARKERS = markers('globalThis[Symbol.for("coldstart.analyzer.esm")]?.', 'import.meta.url');

// This file is built as an ES module (tsup), the type check sees the CommonJS settings.
// @ts-expect-error TS1470: import.meta in a file the type check takes for CommonJS
const own = sdkFiles(new URL('..', import.meta.url as string).href);

interface LoadResult {
  format?: string | null;
  source?: unknown;
  shortCircuit?: boolean;
}
interface ResolveResult {
  url?: string;
}
interface HookContext {
  conditions?: readonly string[];
}
type NextResolve = (specifier: string, context?: unknown) => Promise<ResolveResult>;
type NextLoad = (url: string, context?: unknown) => Promise<LoadResult>;

let events: LoadingBuffer | undefined;
/** URL -> where it is stored in the buffer; a module's URL is stored once */
const stored = new Map<string, [number, number] | undefined>();
/** modules resolved: resolving one again (each import of a shared module) is a cache hit, no event */
const resolved = new Set<string>();

export function initialize(data: unknown): void {
  const shared = (data as { coldstartLoading?: unknown } | undefined)?.coldstartLoading;
  if (typeof SharedArrayBuffer === 'function' && shared instanceof SharedArrayBuffer) events = new LoadingBuffer(shared);
}

/** Whether a hook call comes from the ESM loader (import), not from a require() it handles. */
function imported(context: HookContext | undefined): boolean {
  const conditions = context?.conditions;
  return conditions === undefined || conditions.includes('import');
}

function record(flags: number, url: string, started: bigint, done: bigint): void {
  let where = stored.get(url);
  if (where === undefined && !stored.has(url)) {
    where = events!.storeUrl(url);
    stored.set(url, where);
  }
  events!.write(flags, where, started, done, process.hrtime.bigint());
}

export async function resolve(specifier: string, context: HookContext, nextResolve: NextResolve): Promise<ResolveResult> {
  if (events === undefined || !events.recording || !imported(context)) return nextResolve(specifier, context);
  const started = process.hrtime.bigint();
  const result = await nextResolve(specifier, context);
  const done = process.hrtime.bigint();
  try {
    const url = result?.url;
    if (typeof url === 'string' && !resolved.has(url)) {
      resolved.add(url);
      record(own(url) ? OWN : 0, url, started, done);
    }
  } catch {
    // an event less
  }
  return result;
}

export async function load(url: string, context: HookContext, nextLoad: NextLoad): Promise<LoadResult> {
  const recording = events?.recording === true && imported(context);
  const started = recording ? process.hrtime.bigint() : 0n;
  const result = await nextLoad(url, context);
  const done = recording ? process.hrtime.bigint() : 0n;
  let out = result;
  try {
    const sdk = own(url);
    if (shouldInstrument(url, result.format) && !sdk) {
      const source = injectMarkers(result.source, MARKERS);
      if (source !== undefined) out = { ...result, source };
    }
    if (recording) {
      const format = result.format;
      let flags = LOAD | (sdk ? OWN : 0);
      // counted here unless something else counts it: a body marker (module) or the CommonJS hook
      if (format !== 'module' && format !== 'commonjs' && format !== 'builtin') flags |= COUNTED;
      if (format === 'commonjs') flags |= COMMONJS;
      record(flags, url, started, done);
    }
  } catch {
    // leave the module untouched
  }
  return out;
}
