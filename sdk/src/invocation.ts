// One invocation from start to record: classification, the payload, and when it is sent.
//
// Cold start (first invocation): init is closed at its start (the recorder stops) and the
// cold-start record goes out at once, at the handler's first await, marked `"complete": false` and
// without the fields only the end of the invocation knows (execution_duration_ms,
// billed_duration_ms, memory_used_mb): a handler that crashes or a process that dies mid-invocation
// cannot take the init data with it. Package versions are read in the background meanwhile. When
// the handler finishes (success or error) the complete record goes out with the same invocation_id
// and timestamp (the backend fills in the missing fields once; any other duplicate is ignored),
// and both sends are awaited at most `timeout` ms in all. A handler that never finishes still gets
// its complete record out: a timer fires shortly before Lambda's deadline
// (context.getRemainingTimeInMillis) and sends it with the execution time so far.
// Warm invocations: sampled, timed at the handler's end, then built and handed over after the
// response has gone out (delivery.ts): queued and sent in batches in the background, never
// awaited. Through the coldstart extension, each record is one line on its stream, awaited only
// when its bytes cannot reach the kernel at once.

import { checkModuleSource, type ModuleSource } from './bundle';
import type { ResolvedConfig } from './config';
import { EXTENSION_ANSWER_MS, LAMBDA_ENV, SDK_VERSION } from './constants';
import { architecture, classifyStart, clip, positiveInteger, runtimeVersion, type StartKind } from './classify';
import { moduleTimings, moduleTree, packageNodes, type ModuleTree } from './report';
import type { TreeNode } from './recorder';
import type { Runtime } from './runtime';
import { deliveryFor, type Delivery } from './delivery';
import { holdOpen, type SendResult } from './sender';

/** The subset of Lambda's context object the SDK reads. */
export interface ContextLike {
  functionName?: string;
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

export interface InvocationRecord {
  function_name: string;
  invocation_id: string;
  request_id: string;
  timestamp: string;
  cold_start: boolean;
  init_duration_ms?: number;
  /** absent only in the early copy of a cold-start record (`complete: false`) */
  execution_duration_ms?: number;
  billed_duration_ms?: number;
  memory_used_mb?: number;
  memory_allocated_mb?: number;
  module_timings?: Record<string, number>;
  runtime_version: string;
  architecture: string;
  region?: string;
  init_type?: string;
  start_kind: StartKind;
  module_tree?: ModuleTree;
  sdk_version: string;
  sdk_overhead_ms?: number;
  esm_timing?: string;
  /** "hooks", "esbuild-plugin" or "bundled-no-plugin" (bundle.ts), decided at the cold start */
  module_source?: ModuleSource;
  /**
   * `false` on the early copy of a cold-start record, sent at the start of the first invocation;
   * the complete record (same invocation_id and timestamp) follows at its end. Absent otherwise.
   */
  complete?: false;
}

interface Cold {
  initMs: number;
  startKind: StartKind;
  /** shared by the early copy and the complete record */
  invocationId: string;
  versions: Promise<Map<TreeNode, string>>;
  deadlineTimer: NodeJS.Timeout | undefined;
  /** the early copy (`complete: false`), sent as the invocation starts */
  early: Promise<unknown> | undefined;
  /** the complete record */
  sent: Promise<unknown> | undefined;
}

export interface Invocation {
  readonly startNs: bigint;
  readonly startWall: number;
  readonly context: ContextLike | undefined;
  readonly config: ResolvedConfig;
  /** to the backend, or to the coldstart extension when installed */
  readonly delivery: Delivery;
  readonly cold: Cold | undefined;
  finished: boolean;
}

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
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  randomUUID ??= (require('node:crypto') as typeof import('node:crypto')).randomUUID;
  return randomUUID();
}

/** Called as the handler is entered. Never throws (returns undefined if anything goes wrong). */
export function beginInvocation(runtime: Runtime, config: ResolvedConfig, context: ContextLike | undefined): Invocation | undefined {
  try {
    const startNs = process.hrtime.bigint();
    const startWall = Date.now();
    const delivery = deliveryFor(runtime.senders, config);
    let cold: Cold | undefined;
    if (!runtime.started) {
      runtime.started = true;
      cold = beginCold(runtime);
    }
    const invocation: Invocation = { startNs, startWall, context, config, delivery, cold, finished: false };
    if (cold !== undefined) {
      // Right after the handler's synchronous start (its first await), not before it: building and
      // posting the record (loading node:http the first time) takes several ms that would
      // otherwise delay the handler; this way they overlap what the handler waits for. A handler
      // that finished synchronously has its complete record on the way already.
      process.nextTick(() => {
        if (!invocation.finished) sendEarly(runtime, invocation, cold!);
      });
      armDeadline(runtime, invocation, cold);
    }
    return invocation;
  } catch {
    return undefined;
  }
}

function beginCold(runtime: Runtime): Cold {
  const now = performance.now();
  const recorder = runtime.recorder;
  runtime.uninstall(); // closes the recorder: what loads from now on is not init
  // End of init as far as we can see it: the last module load finished, else now.
  const initEndMs = recorder.lastExit !== undefined ? now - Number(process.hrtime.bigint() - recorder.lastExit) / 1e6 : now;
  const gapMs = now - initEndMs;
  const startKind = classifyStart(true, environment().init_type, gapMs);
  // Init runs from process start (performance.timeOrigin) to this first invocation; for a
  // proactive init, the idle wait before the invocation is not init and is left out.
  const initMs = startKind === 'proactive' ? initEndMs : now;
  // Unbundled, a bundle built with the esbuild plugin, or one without it (then the bundle file's
  // own time is added if the SDK could not see it load): a 64 kB read of the handler file at most.
  runtime.moduleSource = checkModuleSource(runtime, startKind === 'proactive' ? recorder.lastExit : process.hrtime.bigint());
  // Package versions are read after init, in the background (thread pool), while the handler runs.
  const versions = new Promise<Map<TreeNode, string>>((resolve) => {
    setImmediate(() => {
      readVersions(packageNodes(recorder.root)).then(resolve, () => resolve(new Map()));
    }).unref();
  });
  return { initMs, startKind, invocationId: newId(), versions, deadlineTimer: undefined, early: undefined, sent: undefined };
}

/** Longest wait for the package versions before the complete record goes out without them. */
const VERSIONS_WAIT_MS = 200;

/** Early copies still being retried give up after this long (the complete record supersedes them). */
const EARLY_DEADLINE_MS = 10_000;

/**
 * Hands the cold-start record off as the first invocation starts: everything init knows, marked
 * incomplete. Called as soon as the handler's synchronous start has run; the request leaves as
 * soon as the event loop turns, while the handler waits. Package versions are not known yet (they
 * are read in the background); the complete record carries them.
 */
function sendEarly(runtime: Runtime, invocation: Invocation, cold: Cold): void {
  try {
    const record = buildRecord(runtime, invocation, false);
    record.module_tree = moduleTree(runtime.recorder, new Map(), runtime.esmTiming, runtime.coverage);
    cold.early = invocation.delivery.single(JSON.stringify(record), performance.now() + EARLY_DEADLINE_MS);
  } catch {
    // the complete record still goes out at the end
  }
}

async function readVersions(nodes: TreeNode[]): Promise<Map<TreeNode, string>> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { readFile } = require('node:fs/promises') as typeof import('node:fs/promises');
  const versions = new Map<TreeNode, string>();
  const byDir = new Map<string, Promise<string | undefined>>();
  await Promise.all(
    nodes.map(async (node) => {
      const dir = node.packageDir!;
      let pending = byDir.get(dir);
      if (pending === undefined) {
        pending = readFile(dir + '/package.json', 'utf8').then(
          (text) => {
            const version = (JSON.parse(text) as { version?: unknown }).version;
            return typeof version === 'string' ? clip(version, 64) : undefined;
          },
          () => undefined,
        );
        byDir.set(dir, pending);
      }
      const version = await pending;
      if (version !== undefined) versions.set(node, version);
    }),
  );
  return versions;
}

/** Sends the cold-start record before Lambda's deadline if the handler has not finished by then. */
function armDeadline(runtime: Runtime, invocation: Invocation, cold: Cold): void {
  const remaining = invocation.context?.getRemainingTimeInMillis?.();
  if (typeof remaining !== 'number' || !Number.isFinite(remaining) || remaining <= 0) return;
  const margin = invocation.config.timeout + 250;
  const delay = Math.max(remaining - margin, remaining / 2);
  cold.deadlineTimer = setTimeout(() => {
    cold.deadlineTimer = undefined;
    if (!invocation.finished) void sendCold(runtime, invocation, cold, remaining - delay - 50);
  }, delay);
  cold.deadlineTimer.unref();
}

function sendCold(runtime: Runtime, invocation: Invocation, cold: Cold, budgetMs: number): Promise<unknown> {
  if (cold.sent === undefined) {
    const deadline = performance.now() + Math.max(50, budgetMs);
    const record = buildRecord(runtime, invocation, true);
    cold.sent = (async () => {
      // Versions are normally ready long before (a few ms of reads in the thread pool, started as
      // the invocation began); on a busy machine they may not be: wait for them a little, at most
      // VERSIONS_WAIT_MS and half the budget (the early copy already holds everything else).
      const wait = Math.min(VERSIONS_WAIT_MS, budgetMs / 2);
      const versions = await Promise.race([cold.versions, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), wait).unref())]);
      record.module_tree = moduleTree(runtime.recorder, versions ?? new Map(), runtime.esmTiming, runtime.coverage);
      return invocation.delivery.single(JSON.stringify(record), deadline);
    })().catch(() => undefined);
  }
  // Both copies, within the same budget. Once the complete record is stored, an early copy still
  // on its way adds nothing (the backend ignores it), so it is not waited for then.
  const early = cold.early;
  const both = early === undefined ? cold.sent : cold.sent.then((result) => ((result as SendResult | undefined)?.ok ? result : early));
  return holdOpen(both, Math.max(0, budgetMs));
}

/**
 * Called once when the handler has finished (result, error or callback). Returns a promise to
 * wait for (bounded by config.timeout) or undefined when there is nothing to wait for.
 */
export function finishInvocation(runtime: Runtime, invocation: Invocation | undefined): Promise<void> | undefined {
  if (invocation === undefined || invocation.finished) return undefined;
  invocation.finished = true;
  try {
    const cold = invocation.cold;
    if (cold !== undefined) {
      if (cold.deadlineTimer !== undefined) clearTimeout(cold.deadlineTimer);
      return sendCold(runtime, invocation, cold, invocation.config.timeout).then(noop, noop);
    }
    const rate = invocation.config.sampleRate;
    const endNs = process.hrtime.bigint();
    const build = (): InvocationRecord => buildRecord(runtime, invocation, true, endNs);
    // Left to the extension, which builds the record from Lambda's report and samples it: nothing
    // more to do here (`build` serves only if the extension goes away first). Only for a Lambda
    // request: the extension knows invocations by their request id.
    const requestId = invocation.context?.awsRequestId;
    if (typeof requestId === 'string' && requestId !== '' && invocation.delivery.leaveWarm(() => warmTemplate(runtime, invocation), rate, clip(requestId), build)) return undefined;
    if (rate < 1 && !(Math.random() < rate)) return undefined;
    // Built and handed over after the response (delivery.ts), timed as of now. Through the
    // extension it is awaited briefly only when its bytes cannot reach the kernel at once, so that
    // nothing is left behind when Lambda freezes the environment; else it is batched.
    const wait = invocation.delivery.warmAfterResponse(build);
    if (wait !== undefined) return holdOpen(wait, EXTENSION_ANSWER_MS + 50);
  } catch {
    // never break the function
  }
  return undefined;
}

function noop(): void {}

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
  for (const key of ['invocation_id', 'request_id', 'timestamp', 'cold_start', 'start_kind', 'execution_duration_ms', 'billed_duration_ms', 'memory_used_mb'] as const) delete record[key];
  return record;
}

/** `complete` false: the early copy of a cold-start record, without what only the end knows. */
function buildRecord(runtime: Runtime, invocation: Invocation, complete = true, endNs = process.hrtime.bigint()): InvocationRecord {
  const fields = environment();
  const executionMs = Number(endNs - invocation.startNs) / 1e6;
  const context = invocation.context;
  const invocationId = invocation.cold !== undefined ? invocation.cold.invocationId : newId();
  const record: InvocationRecord = {
    function_name: fields.function_name ?? clip(typeof context?.functionName === 'string' && context.functionName ? context.functionName : 'unknown'),
    invocation_id: invocationId,
    request_id: typeof context?.awsRequestId === 'string' && context.awsRequestId ? clip(context.awsRequestId) : invocationId,
    timestamp: new Date(invocation.startWall).toISOString(),
    cold_start: invocation.cold !== undefined,
    runtime_version: fields.runtime_version,
    architecture: fields.architecture,
    start_kind: invocation.cold !== undefined ? invocation.cold.startKind : 'warm',
    sdk_version: SDK_VERSION,
  };
  if (complete) {
    record.execution_duration_ms = Math.round(executionMs);
    record.billed_duration_ms = Math.max(1, Math.ceil(executionMs));
    record.memory_used_mb = memoryUsedMb(invocation.cold !== undefined);
  } else {
    record.complete = false;
  }
  if (fields.memory_allocated_mb !== undefined) record.memory_allocated_mb = fields.memory_allocated_mb;
  if (fields.region !== undefined) record.region = fields.region;
  if (runtime.moduleSource !== undefined) record.module_source = runtime.moduleSource as ModuleSource;
  if (fields.init_type !== undefined) record.init_type = fields.init_type;
  const cold = invocation.cold;
  if (cold !== undefined) {
    const recorder = runtime.recorder;
    record.init_duration_ms = Math.round(cold.initMs);
    record.module_timings = moduleTimings(recorder.selfNs);
    record.sdk_overhead_ms = Math.round((runtime.setupNs + recorder.overheadNs) / 1e3) / 1e3;
    record.esm_timing = runtime.esmTiming;
  }
  return record;
}
