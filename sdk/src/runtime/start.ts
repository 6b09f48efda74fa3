// The start and end of an invocation as the init half of the SDK sees them (dist/index.cjs). What
// runs here is on the path of the function's response, so it is kept to a few clock reads:
//
// - The first invocation closes init (the recorder stops, the hooks go) and classifies the start
//   before anything else of the SDK loads: the invocation half (dist/invoke.cjs), node:http and
//   the rest are loaded afterwards and are never part of init, however the SDK was installed.
// - Everything that costs something (loading the invocation half, building and sending records)
//   runs after the function's response (afterResponse), or, for a first invocation still running
//   after EARLY_COPY_AFTER_MS, while it runs (the early copy of the cold-start record), or shortly
//   before Lambda's deadline for one that hangs.
//
// Nothing here throws into the function.

import { classifyStart, type StartKind } from '../shared/classify';
import type { ResolvedConfig } from './config';
import { EARLY_COPY_AFTER_MS, LAMBDA_ENV } from '../shared/constants';
import type { RecordSink } from '../invoke/delivery';
import { connectEarly, extensionStream } from '../shared/extension-endpoint';
import { invocationHalf } from './lazy';
import type { Runtime } from './runtime';

/** The subset of Lambda's context object the SDK reads. */
export interface ContextLike {
  functionName?: string;
  functionVersion?: string;
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
  callbackWaitsForEmptyEventLoop?: boolean;
}

/** What the first invocation knows of init, decided as it starts. */
export interface ColdStart {
  /** init duration, ms: process start to the first invocation (to the last load if proactive); read after the response */
  readonly initMs: number;
  readonly startKind: StartKind;
  /** the clock that the handler file's bundle check compares with (bundle.ts) */
  readonly moduleSourceAt: bigint;
  /** the early-copy and deadline timers, cleared when the invocation finishes */
  readonly timers: NodeJS.Timeout[];
  /** shared by the early copy and the complete record (set by the invocation half) */
  invocationId?: string;
  earlySent: boolean;
  completeSent: boolean;
}

export interface Invocation {
  readonly startNs: bigint;
  readonly startWall: number;
  readonly context: ContextLike | undefined;
  readonly config: ResolvedConfig;
  readonly cold: ColdStart | undefined;
  /** where the records go; created by the invocation half on first use */
  delivery: RecordSink | undefined;
  finished: boolean;
  /** clock when the handler finished (result, error or callback) */
  endNs?: bigint;
}

/**
 * Schedules work to run after the function's response has gone to Lambda. The work may return a
 * promise that settles once what it handed off has left the process (a record's bytes in the
 * kernel): where the runtime client lets the SDK (hookRuntimeClient), the environment is kept from
 * being frozen until then, at most `holdMs` (the response is already with the caller).
 */
export type Later = (work: () => Promise<unknown> | void, holdMs?: number) => void;

function guarded(work: () => Promise<unknown> | void): () => Promise<unknown> | void {
  return () => {
    try {
      const result = work();
      return result === undefined ? undefined : result.catch(() => undefined);
    } catch {
      return undefined; // never break the function
    }
  };
}

/**
 * AWS's runtime interface client 4 (the one that keeps an InvokeStore on globalThis.awslambda)
 * posts the response from a setImmediate callback queued after the handler's promise settles, and
 * asks for the next event in the promise reactions right after that post; earlier clients post it
 * in the promise reaction itself and ask for the next event from a setImmediate callback queued
 * after it.
 */
function responsePostedFromImmediate(): boolean {
  return (globalThis as { awslambda?: { InvokeStore?: unknown } }).awslambda?.InvokeStore !== undefined;
}

/** Work waiting for the response of client 4 (see hookRuntimeClient), and how long it may hold. */
const queued: { run: () => Promise<unknown> | void; holdMs: number }[] = [];
/** Runs the queued work; resolves when what it handed off has left, at most the longest hold. */
function drain(): Promise<void> | undefined {
  if (queued.length === 0) return undefined;
  let holdMs = 0;
  const pending: Promise<unknown>[] = [];
  for (const { run, holdMs: hold } of queued.splice(0)) {
    const result = run();
    if (result !== undefined) {
      pending.push(result);
      holdMs = Math.max(holdMs, hold);
    }
  }
  if (pending.length === 0 || holdMs <= 0) return undefined;
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, holdMs);
    void Promise.all(pending).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Runs `work` once the response of a handler that just settled has gone to Lambda, and, where the
 * runtime client allows, before it asks for its next event (so before Lambda may freeze the
 * environment): with the older clients, in a setImmediate callback that runs between the two; with
 * client 4, when the invocation's InvokeStore.run settles (hookRuntimeClient), or else, if that
 * hook is not in place, as soon as the event loop turns after the post.
 */
export const afterResponse: Later = (work, holdMs = 0) => {
  const run = guarded(work);
  if (!responsePostedFromImmediate()) {
    setImmediate(run);
    return;
  }
  queued.push({ run, holdMs });
  if (queued.length === 1) setImmediate(() => setImmediate(() => void drain()));
};

const HOOKED = Symbol.for('coldstart.analyzer.invokestore');
interface InvokeStoreLike {
  run?: (...args: unknown[]) => unknown;
  [HOOKED]?: true;
}

function hookStore(store: unknown): void {
  const target = store as InvokeStoreLike | null | undefined;
  if (target === null || typeof target !== 'object' || target[HOOKED] || typeof target.run !== 'function') return;
  const original = target.run;
  target[HOOKED] = true;
  target.run = function (this: unknown) {
    const result = original.apply(this, arguments as unknown as unknown[]);
    if (result === null || typeof result !== 'object' || typeof (result as Promise<unknown>).then !== 'function') return result;
    return (result as Promise<unknown>).then(
      (value) => {
        const held = drain();
        return held === undefined ? value : held.then(() => value);
      },
      (error: unknown) => {
        const held = drain();
        if (held === undefined) throw error;
        return held.then(() => {
          throw error;
        });
      },
    );
  };
}

let clientHooked = false;
/**
 * Runtime interface client 4 runs each invocation inside `globalThis.awslambda.InvokeStore.run()`,
 * which settles after the response has been posted and before the next event is asked for: the one
 * moment after the response at which the environment cannot be frozen yet. Its run() is wrapped to
 * do the SDK's after-response work there, and to settle once that work's records have left the
 * process (bounded by the work's hold: the cold-start record's, `timeout`); its result and error
 * pass through unchanged. The store
 * is created at the first invocation, after init; this is called during init (as the handler is
 * wrapped, after the runtime has set up globalThis.awslambda), so the store is hooked as it is set.
 * With an older client nothing is set and nothing changes.
 */
export function hookRuntimeClient(): void {
  if (clientHooked) return;
  const holder = (globalThis as { awslambda?: unknown }).awslambda as Record<string, unknown> | undefined;
  if (holder === null || typeof holder !== 'object') return;
  clientHooked = true;
  try {
    if (Object.getOwnPropertyDescriptor(holder, 'InvokeStore') !== undefined) {
      hookStore(holder.InvokeStore);
      return;
    }
    let store: unknown;
    Object.defineProperty(holder, 'InvokeStore', {
      configurable: true,
      enumerable: true,
      get: () => store,
      set: (value: unknown) => {
        store = value;
        hookStore(value);
      },
    });
  } catch {
    // a frozen or unusual global: the setImmediate fallback of afterResponse stays
  }
}

/**
 * For a callback handler: Lambda's runtime posts its response when the callback is called, or, when
 * context.callbackWaitsForEmptyEventLoop is true (the default), once the event loop is empty
 * ('beforeExit', whose listener the runtime adds as the callback is called). Called right after the
 * user's callback, so that this listener runs after the runtime's.
 */
export function afterCallbackResponse(context: ContextLike | undefined): Later {
  if (context?.callbackWaitsForEmptyEventLoop !== true) return afterResponse;
  return (work) => process.once('beforeExit', () => void guarded(work)());
}

/**
 * Closes init as the first invocation starts: stops the recorder and removes the hooks, then
 * classifies the start from the gap between the last module load and now (a proactive
 * initialization leaves the environment idle for a while before its first invocation).
 */
function closeInit(runtime: Runtime): ColdStart {
  const nowNs = process.hrtime.bigint();
  runtime.started = true;
  const lastExit = runtime.recorder.lastExit;
  runtime.uninstall();
  const idleMs = lastExit !== undefined ? Number(nowNs - lastExit) / 1e6 : 0;
  const startKind = classifyStart(true, process.env[LAMBDA_ENV.initializationType], idleMs);
  // Init runs from process start (performance.timeOrigin) to this first invocation; for a
  // proactive init, the idle wait before the invocation is not init and is left out.
  const proactive = startKind === 'proactive' && lastExit !== undefined;
  const initEndNs = proactive ? lastExit : nowNs;
  // Read on the performance clock only when the record is built, after the response: the first
  // use of the global `performance` loads Node's perf_hooks, 1.5-4 ms (Node.js 24 to 18) that
  // were in the first response (bench/sdk/cold-request.mjs). The same figure: now on that clock
  // minus the time since init ended on this one.
  let initMs: number | undefined;
  return {
    get initMs(): number {
      initMs ??= performance.now() - Number(process.hrtime.bigint() - initEndNs) / 1e6;
      return initMs;
    },
    startKind,
    moduleSourceAt: initEndNs,
    timers: [],
    earlySent: false,
    completeSent: false,
  };
}

/**
 * With the coldstart extension installed, its stream is opened as the handler is wrapped, during
 * init: a loopback connect (about 0.1 ms, nothing waited for), so that the connection is open when
 * the cold-start record is written after the first response. The runtime clients ask for the next
 * event in the same turn of the event loop as the SDK's after-response work, before a connection
 * opened at the first invocation could complete, and Lambda may freeze the environment then.
 */
export function connectExtensionEarly(runtime: Runtime, config: ResolvedConfig): void {
  if (runtime.started || runtime.earlyStream !== undefined || config.transport === 'logs' || config.apiKey === undefined) return;
  try {
    const stream = extensionStream(config);
    if (stream !== undefined) runtime.earlyStream = connectEarly(stream.host, stream.port, config.apiKey);
  } catch {
    // the stream is opened later, at the first record
  }
}

/** The first invocation of the process starts. */
export function beginFirst(runtime: Runtime, config: ResolvedConfig, context: ContextLike | undefined): Invocation {
  const startNs = process.hrtime.bigint();
  const startWall = Date.now();
  const cold = closeInit(runtime);
  const invocation: Invocation = { startNs, startWall, context, config, cold, delivery: undefined, finished: false };
  const early = setTimeout(
    guarded(() => {
      if (!invocation.finished) invocationHalf().sendEarly(runtime, invocation);
    }),
    EARLY_COPY_AFTER_MS,
  );
  early.unref();
  cold.timers.push(early);
  armDeadline(runtime, invocation, cold);
  // The invocation half loads, and a connection to the coldstart extension opens, after a response
  // that is ready at once, or while the handler waits for something.
  afterResponse(() => invocationHalf().prepare(runtime, invocation), invocation.config.timeout);
  return invocation;
}

/** Sends the complete cold-start record before Lambda's deadline if the handler is still running then. */
function armDeadline(runtime: Runtime, invocation: Invocation, cold: ColdStart): void {
  const remaining = invocation.context?.getRemainingTimeInMillis?.();
  if (typeof remaining !== 'number' || !Number.isFinite(remaining) || remaining <= 0) return;
  const margin = invocation.config.timeout + 250;
  const timer = setTimeout(
    guarded(() => {
      if (!invocation.finished) invocationHalf().sendAtDeadline(runtime, invocation);
    }),
    Math.max(remaining - margin, remaining / 2),
  );
  timer.unref();
  cold.timers.push(timer);
}

/**
 * The handler has finished (result, error or callback). Returns a promise the function must wait
 * for (settled within EXTENSION_ANSWER_MS: a warm record whose bytes could not be handed to the
 * extension at once), or undefined. A first invocation never waits: its record is built and sent
 * after the response.
 */
export function finish(runtime: Runtime, invocation: Invocation | undefined, later: Later = afterResponse): Promise<void> | undefined {
  if (invocation === undefined || invocation.finished) return undefined;
  try {
    invocation.finished = true;
    invocation.endNs = process.hrtime.bigint();
    const cold = invocation.cold;
    if (cold !== undefined) {
      for (const timer of cold.timers) clearTimeout(timer);
      later(() => invocationHalf().finishInvocation(runtime, invocation, later), invocation.config.timeout);
      return undefined;
    }
    return invocationHalf().finishInvocation(runtime, invocation, later);
  } catch {
    return undefined;
  }
}

/** An invocation starts. Never throws (returns undefined if anything goes wrong). */
export function begin(runtime: Runtime, config: ResolvedConfig, context: ContextLike | undefined): Invocation | undefined {
  try {
    if (!runtime.started) return beginFirst(runtime, config, context);
    return invocationHalf().beginInvocation(config, context);
  } catch {
    return undefined;
  }
}
