// One invocation from start to record, in the invocation half of the SDK (dist/invoke.cjs, loaded
// after the first response): the payload, and how each record is handed to its transport.
//
// Cold start (first invocation): init was closed and the start classified as the invocation began
// (start.ts). The cold-start record is built after the function's response (package versions read
// then, synchronously) and handed to the transport without anything waiting for it: to the
// backend, retried with backoff until it is acknowledged, for as long as the environment lives
// (Sender.deliver); to the coldstart extension's stream; or as a line on stdout (logs transport).
// A first invocation still running after EARLY_COPY_AFTER_MS also hands off an early copy, marked
// `"complete": false` and without the fields only the end knows (execution_duration_ms,
// billed_duration_ms, memory_used_mb), so that a process that dies mid-invocation cannot take the
// init data with it; the complete record (same invocation_id and timestamp) follows, and the
// backend fills in the missing fields once. A handler that never finishes still gets its complete
// record out: a timer fires shortly before Lambda's deadline and sends it with the execution time
// so far.
// Warm invocations: sampled, timed at the handler's end, then built and handed over after the
// response has gone out (delivery.ts): queued and sent in batches in the background, never
// awaited. Through the coldstart extension, each record is one line on its stream, awaited only
// when its bytes cannot reach the kernel at once.

import { checkModuleSource, type ModuleSource } from '../shared/bundle';
import type { ResolvedConfig } from '../runtime/config';
import { EXTENSION_ANSWER_MS, LAMBDA_ENV } from '../shared/constants';
import { architecture, clip, positiveInteger, runtimeVersion } from '../shared/classify';
import { moduleTimings, moduleTree } from './report';
import { buildRecord as recordOf, type InvocationRecord } from '../shared/record';
import type { Runtime } from '../runtime/runtime';
import { deliveryFor, type RecordSink } from './delivery';
import { holdOpen } from '../shared/sender';
import { packageVersions } from './snapshot';
import { cachedCodeId, codeId, functionVersion } from './fingerprint';
import { settleGc } from './gc';
import type { ContextLike, Invocation, Later } from '../runtime/start';

export type { ContextLike, Invocation } from '../runtime/start';

export type { InvocationRecord } from '../shared/record';

/** Fields that do not change during the life of the process. */
interface StaticFields {
  function_name: string | undefined;
  memory_allocated_mb: number | undefined;
  runtime_version: string;
  architecture: string;
  region: string | undefined;
  init_type: string | undefined;
}
let staticFields: StaticFields | undefined;

function environment(): StaticFields {
  if (staticFields === undefined) {
    const env = process.env;
    const text = (name: string): string | undefined => (env[name] ? clip(env[name]!) : undefined);
    staticFields = {
      function_name: text(LAMBDA_ENV.functionName),
      memory_allocated_mb: positiveInteger(env[LAMBDA_ENV.memorySize]),
      runtime_version: clip(runtimeVersion(env[LAMBDA_ENV.executionEnv], process.version)),
      architecture: architecture(process.arch),
      region: text(LAMBDA_ENV.region),
      init_type: text(LAMBDA_ENV.initializationType),
    };
  }
  return staticFields;
}

let randomUUID: (() => string) | undefined;
function newId(): string {
  randomUUID ??= (require('node:crypto') as typeof import('node:crypto')).randomUUID;
  return randomUUID();
}

/** A warm invocation starts (the first one starts in start.ts). */
export function beginInvocation(config: ResolvedConfig, context: ContextLike | undefined): Invocation {
  return {
    startNs: process.hrtime.bigint(),
    startWall: Date.now(),
    context,
    config,
    cold: undefined,
    delivery: undefined,
    finished: false,
  };
}

function sinkOf(runtime: Runtime, invocation: Invocation): RecordSink {
  if (invocation.delivery === undefined) {
    const early = runtime.earlyStream;
    runtime.earlyStream = undefined;
    invocation.delivery = deliveryFor(runtime.senders, invocation.config, early);
  }
  return invocation.delivery;
}

/**
 * Run after a first response that was ready at once, or while the first invocation waits for
 * something: the delivery is created (a connection to the coldstart extension opens now, so that
 * the cold-start record's bytes can reach the kernel as soon as they are written).
 */
export function prepare(runtime: Runtime, invocation: Invocation): void {
  sinkOf(runtime, invocation).connect();
}

function coldRecord(runtime: Runtime, invocation: Invocation, complete: boolean, endNs: bigint): InvocationRecord {
  const cold = invocation.cold!;
  cold.invocationId ??= newId();
  // Unbundled, a bundle built with the esbuild plugin, or one without it (then the bundle file's
  // own time is added if the SDK could not see it load): a 64 kB read of the handler file at most.
  runtime.moduleSource ??= checkModuleSource(runtime, cold.moduleSourceAt);
  const record = buildRecord(runtime, invocation, complete, endNs);
  const versions = complete ? packageVersions(runtime.recorder.root) : new Map();
  record.module_tree = moduleTree(runtime.recorder, versions, runtime.esmTiming, runtime.coverage);
  // After the response (the complete record): the fingerprint is computed here, once, and cached
  // for warm records and the extension's template. The early copy only has it if already known.
  const id = complete ? codeId(runtime, versions) : cachedCodeId();
  if (id !== undefined) record.code_id = id;
  return record;
}

/** The early copy of the cold-start record, for a first invocation still running (start.ts). */
export function sendEarly(runtime: Runtime, invocation: Invocation): void {
  const cold = invocation.cold;
  if (cold === undefined || cold.earlySent || cold.completeSent) return;
  cold.earlySent = true;
  sinkOf(runtime, invocation).cold(coldRecord(runtime, invocation, false, process.hrtime.bigint()));
}

/** The complete cold-start record of a first invocation still running near Lambda's deadline. */
export function sendAtDeadline(runtime: Runtime, invocation: Invocation): void {
  void sendComplete(runtime, invocation, process.hrtime.bigint());
}

/** Returns a promise that settles once the record's bytes have left the process (see RecordSink.cold). */
function sendComplete(runtime: Runtime, invocation: Invocation, endNs: bigint): Promise<void> | undefined {
  const cold = invocation.cold;
  if (cold === undefined || cold.completeSent) return undefined;
  cold.completeSent = true;
  return sinkOf(runtime, invocation).cold(coldRecord(runtime, invocation, true, endNs));
}

/**
 * Called once the handler has finished (result, error or callback; `endNs` set): for a first
 * invocation after its response (start.ts), for a warm one as it finishes. Returns a promise to
 * wait for (warm: settled within about EXTENSION_ANSWER_MS; first: see above) or undefined when
 * there is nothing to wait for; never throws.
 */
export function finishInvocation(runtime: Runtime, invocation: Invocation, later: Later): Promise<void> | undefined {
  try {
    const endNs = invocation.endNs ?? process.hrtime.bigint();
    // The first invocation's is called after its response: the promise (its record's bytes out of
    // the process) bounds how long the environment is kept from being frozen (start.ts Later).
    // Then the collection its building made due, unless one completed since the handler was
    // wrapped (gc.ts): only here, after the response, never from the deadline's send, which runs
    // while the handler still works.
    if (invocation.cold !== undefined) return settleGc(sendComplete(runtime, invocation, endNs), runtime.heapMark);
    const rate = invocation.config.sampleRate;
    const sink = sinkOf(runtime, invocation);
    const build = (): InvocationRecord => buildRecord(runtime, invocation, true, endNs);
    // Left to the extension, which builds the record from Lambda's report and samples it: nothing
    // more to do here (`build` serves only if the extension goes away first). Only for a Lambda
    // request: the extension knows invocations by their request id.
    const requestId = invocation.context?.awsRequestId;
    const leave =
      typeof requestId === 'string' && requestId !== ''
        ? { describe: () => warmTemplate(runtime, invocation), requestId: clip(requestId) }
        : undefined;
    if (leave !== undefined && sink.leaveWarm(leave.describe, rate, leave.requestId, build, later)) return undefined;
    // Sampled, built and handed over after the response (delivery.ts), timed as of now. Through the
    // extension it is awaited briefly only when its bytes cannot reach the kernel at once, so that
    // nothing is left behind when Lambda freezes the environment; else it is batched.
    const wait = sink.warmAfterResponse(build, later, rate, leave);
    if (wait !== undefined) return holdOpen(wait, EXTENSION_ANSWER_MS + 50);
  } catch {
    // never break the function
  }
  return undefined;
}

// Reading the RSS costs a /proc read (about 20 µs): warm records reuse a reading up to 1 s old.
let rssMb = 0;
let rssAt = -Infinity;
function memoryUsedMb(fresh: boolean): number {
  const now = performance.now();
  if (fresh || now - rssAt > 1000) {
    rssMb = Math.round(process.memoryUsage.rss() / 1048576);
    rssAt = now;
  }
  return rssMb;
}

/** What a warm record of this process holds whatever the invocation: the extension's template. */
function warmTemplate(runtime: Runtime, invocation: Invocation): object {
  const record: Partial<InvocationRecord> = buildRecord(runtime, invocation, true);
  for (const key of [
    'invocation_id',
    'request_id',
    'timestamp',
    'cold_start',
    'start_kind',
    'execution_duration_ms',
    'billed_duration_ms',
    'memory_used_mb',
  ] as const)
    delete record[key];
  return record;
}

/** `complete` false: the early copy of a cold-start record, without what only the end knows. */
function buildRecord(runtime: Runtime, invocation: Invocation, complete = true, endNs = process.hrtime.bigint()): InvocationRecord {
  const fields = environment();
  const executionMs = Number(endNs - invocation.startNs) / 1e6;
  const context = invocation.context;
  const cold = invocation.cold;
  const invocationId = cold?.invocationId ?? newId();
  const recorder = runtime.recorder;
  return recordOf({
    functionName:
      fields.function_name ?? clip(typeof context?.functionName === 'string' && context.functionName ? context.functionName : 'unknown'),
    invocationId,
    requestId: typeof context?.awsRequestId === 'string' && context.awsRequestId ? clip(context.awsRequestId) : invocationId,
    timestamp: new Date(invocation.startWall).toISOString(),
    startKind: cold !== undefined ? cold.startKind : 'warm',
    runtimeVersion: fields.runtime_version,
    architecture: fields.architecture,
    end: complete ? { executionMs, billed: true, memoryUsedMb: memoryUsedMb(cold !== undefined) } : undefined,
    memoryAllocatedMb: fields.memory_allocated_mb,
    region: fields.region,
    moduleSource: runtime.moduleSource as ModuleSource | undefined,
    initType: fields.init_type,
    functionVersion: functionVersion(context),
    // warm records (and the extension's template, built from one) reuse the cold start's code_id
    codeId: cold === undefined && complete ? codeId(runtime) : cachedCodeId(),
    init:
      cold === undefined
        ? undefined
        : {
            initMs: cold.initMs,
            moduleTimings: moduleTimings(recorder.selfNs),
            sdkOverheadMs: Math.round((runtime.setupNs + recorder.overheadNs) / 1e3) / 1e3,
            esmTiming: runtime.esmTiming,
          },
  });
}
