// One invocation from start to record: classification, the payload, and when it is sent.
//
// Cold start (first invocation): init is closed at its start (the recorder stops), versions of the
// loaded packages are read in the background, and the record goes out when the handler finishes,
// success or error, awaited at most `timeout` ms. A handler that never finishes still gets its
// record out: a timer fires shortly before Lambda's deadline (context.getRemainingTimeInMillis)
// and sends it with the execution time so far.
// Warm invocations: sampled, queued and sent in batches in the background; never awaited.

import { checkModuleSource, type ModuleSource } from './bundle';
import type { ResolvedConfig } from './config';
import { INGEST_PATH, LAMBDA_ENV, SDK_VERSION } from './constants';
import { architecture, classifyStart, clip, positiveInteger, runtimeVersion, type StartKind } from './classify';
import { moduleTimings, moduleTree, packageNodes, type ModuleTree } from './report';
import type { TreeNode } from './recorder';
import type { Runtime } from './runtime';
import { holdOpen, Sender } from './sender';

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
  execution_duration_ms: number;
  billed_duration_ms: number;
  memory_used_mb: number;
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
  /** "hooks", "esbuild-plugin" or "bundled-no-plugin" (bundle.ts); cold starts only */
  module_source?: ModuleSource;
}

interface Cold {
  initMs: number;
  startKind: StartKind;
  source: ModuleSource;
  versions: Promise<Map<TreeNode, string>>;
  deadlineTimer: NodeJS.Timeout | undefined;
  sent: Promise<unknown> | undefined;
}

export interface Invocation {
  readonly startNs: bigint;
  readonly startWall: number;
  readonly context: ContextLike | undefined;
  readonly config: ResolvedConfig;
  readonly sender: Sender;
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

function senderFor(runtime: Runtime, endpoint: string, apiKey: string): Sender {
  const id = `${endpoint}\n${apiKey}`;
  let sender = runtime.senders.get(id) as Sender | undefined;
  if (sender === undefined) {
    sender = new Sender(endpoint, apiKey);
    runtime.senders.set(id, sender);
  }
  return sender;
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
    const sender = senderFor(runtime, config.endpoint, config.apiKey!);
    let cold: Cold | undefined;
    if (!runtime.started) {
      runtime.started = true;
      cold = beginCold(runtime);
    }
    const invocation: Invocation = { startNs, startWall, context, config, sender, cold, finished: false };
    if (cold !== undefined) armDeadline(runtime, invocation, cold);
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
  const source = checkModuleSource(runtime, startKind === 'proactive' ? recorder.lastExit : process.hrtime.bigint());
  // Package versions are read after init, in the background (thread pool), while the handler runs.
  const versions = new Promise<Map<TreeNode, string>>((resolve) => {
    setImmediate(() => {
      readVersions(packageNodes(recorder.root)).then(resolve, () => resolve(new Map()));
    }).unref();
  });
  return { initMs, startKind, source, versions, deadlineTimer: undefined, sent: undefined };
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
    const record = buildRecord(runtime, invocation);
    cold.sent = (async () => {
      // Versions are normally ready long before; never hold the record for them more than 50 ms.
      const versions = await Promise.race([cold.versions, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50).unref())]);
      record.module_tree = moduleTree(runtime.recorder, versions ?? new Map(), runtime.esmTiming, runtime.coverage);
      return invocation.sender.send(INGEST_PATH, JSON.stringify(record), deadline);
    })().catch(() => undefined);
  }
  return holdOpen(cold.sent, Math.max(0, budgetMs));
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
    if (rate < 1 && !(Math.random() < rate)) return undefined;
    invocation.sender.enqueue(buildRecord(runtime, invocation));
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

function buildRecord(runtime: Runtime, invocation: Invocation): InvocationRecord {
  const fields = environment();
  const executionMs = Number(process.hrtime.bigint() - invocation.startNs) / 1e6;
  const context = invocation.context;
  const invocationId = newId();
  const record: InvocationRecord = {
    function_name: fields.function_name ?? clip(typeof context?.functionName === 'string' && context.functionName ? context.functionName : 'unknown'),
    invocation_id: invocationId,
    request_id: typeof context?.awsRequestId === 'string' && context.awsRequestId ? clip(context.awsRequestId) : invocationId,
    timestamp: new Date(invocation.startWall).toISOString(),
    cold_start: invocation.cold !== undefined,
    execution_duration_ms: Math.round(executionMs),
    billed_duration_ms: Math.max(1, Math.ceil(executionMs)),
    memory_used_mb: memoryUsedMb(invocation.cold !== undefined),
    runtime_version: fields.runtime_version,
    architecture: fields.architecture,
    start_kind: invocation.cold !== undefined ? invocation.cold.startKind : 'warm',
    sdk_version: SDK_VERSION,
  };
  if (fields.memory_allocated_mb !== undefined) record.memory_allocated_mb = fields.memory_allocated_mb;
  if (fields.region !== undefined) record.region = fields.region;
  if (fields.init_type !== undefined) record.init_type = fields.init_type;
  const cold = invocation.cold;
  if (cold !== undefined) {
    const recorder = runtime.recorder;
    record.init_duration_ms = Math.round(cold.initMs);
    record.module_timings = moduleTimings(recorder.selfNs);
    record.sdk_overhead_ms = Math.round((runtime.setupNs + recorder.overheadNs) / 1e3) / 1e3;
    record.esm_timing = runtime.esmTiming;
    record.module_source = cold.source;
  }
  return record;
}
