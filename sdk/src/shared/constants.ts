// Names shared with users (environment variables) and with other copies of the SDK (global
// symbols). Everything the SDK reads from the environment is named here.

declare const __SDK_VERSION__: string;
/** Version of this SDK, sent as `sdk_version`. */
export const SDK_VERSION: string = typeof __SDK_VERSION__ === 'string' ? __SDK_VERSION__ : '0.0.0-dev';

/** Name of this package. */
export const SDK_PACKAGE = '@coldstart/analyzer';

/** API key sent in the `X-API-Key` header. */
export const ENV_API_KEY = 'COLDSTART_API_KEY';
/** Base URL of the backend, e.g. `https://api.coldstart.dev` or `http://127.0.0.1:8000`. */
export const ENV_ENDPOINT = 'COLDSTART_ENDPOINT';
/** `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`). */
export const ENV_ENABLED = 'COLDSTART_ENABLED';
/** Fraction of warm invocations recorded, 0 to 1. Cold starts are always recorded. */
export const ENV_SAMPLE_RATE = 'COLDSTART_SAMPLE_RATE';
/** Milliseconds the function waits at most for the cold-start record to be delivered. */
export const ENV_TIMEOUT = 'COLDSTART_TIMEOUT';
/** The original Lambda handler (`index.handler`) when the Lambda handler is set to our redirect. */
export const ENV_HANDLER = 'COLDSTART_HANDLER';
/** `auto` (default), `on` or `off`: whether to time ES module evaluation. */
export const ENV_ESM_TIMING = 'COLDSTART_ESM_TIMING';
/** `profile`: also record a V8 CPU profile of init, samples by script URL (cpu-profile.ts) */
export const ENV_LOADING = 'COLDSTART_LOADING';
/** `auto` (default) or `off`: send records to the coldstart Lambda extension when it is present. */
export const ENV_EXTENSION = 'COLDSTART_EXTENSION';
/** The extension's local endpoint (the extension reads the same variables): host and port. */
export const ENV_EXTENSION_HOST = 'COLDSTART_EXTENSION_HOST';
export const ENV_EXTENSION_PORT = 'COLDSTART_EXTENSION_PORT';
/** The extension's stream endpoint (same host): one persistent connection, a JSON line per record. */
export const ENV_EXTENSION_STREAM_PORT = 'COLDSTART_EXTENSION_STREAM_PORT';
/**
 * Where records go: `auto` (default: the coldstart extension when its layer is installed, else the
 * backend), `direct` (always the backend, over HTTP(S)) or `logs` (one line per record on stdout,
 * which Lambda ships to CloudWatch Logs; a subscription filter and Firehose bring it to the backend).
 */
export const ENV_TRANSPORT = 'COLDSTART_TRANSPORT';
/** For tests: the file whose presence means the extension is installed. */
export const ENV_EXTENSION_PATH = 'COLDSTART_EXTENSION_PATH';

/** Lambda's own variables that the SDK reads. */
export const LAMBDA_ENV = Object.freeze({
  functionName: 'AWS_LAMBDA_FUNCTION_NAME',
  functionVersion: 'AWS_LAMBDA_FUNCTION_VERSION',
  memorySize: 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  executionEnv: 'AWS_EXECUTION_ENV',
  region: 'AWS_REGION',
  initializationType: 'AWS_LAMBDA_INITIALIZATION_TYPE',
  taskRoot: 'LAMBDA_TASK_ROOT',
  handler: '_HANDLER',
});

export const DEFAULT_ENDPOINT = 'https://api.coldstart.dev';
export const DEFAULT_SAMPLE_RATE = 1;
export const DEFAULT_TIMEOUT_MS = 1000;

/** Where the layer puts the extension (`extensions/coldstart` in the zip, unpacked under /opt). */
export const DEFAULT_EXTENSION_PATH = '/opt/extensions/coldstart';
export const DEFAULT_EXTENSION_HOST = '127.0.0.1';
export const DEFAULT_EXTENSION_PORT = 7242;
/** Not 7243: the extension's telemetry listener has that port (a record line sent there would get an HTTP 400). */
export const DEFAULT_EXTENSION_STREAM_PORT = 7244;
/**
 * The extension answers 202 at once (HTTP) and takes stream connections at once: no answer, or a
 * record still not in the kernel, after this long (ms) means it is not there (or hung), and
 * records go to the backend from then on. Warm records are awaited only when their bytes could not
 * be written at once, so this is short; the cold-start copies allow more (the first connection of
 * a process on a small, busy Lambda sandbox can take a while; the early copy is not awaited and
 * the complete one is bounded by `timeout` anyway).
 */
export const EXTENSION_ANSWER_MS = 100;
export const EXTENSION_COLD_ANSWER_MS = 500;

export const INGEST_PATH = '/api/v1/ingest';
export const BATCH_PATH = '/api/v1/ingest/batch';

export const FIREHOSE_PATH = '/api/v1/ingest/firehose';

/**
 * The logs transport writes each record as a line `{"coldstart_record":{...}}`: the subscription
 * filter's pattern is this term, and coldstartd's Firehose endpoint takes the lines that carry it.
 */
export const LOG_RECORD_KEY = 'coldstart_record';
/**
 * CloudWatch Logs truncates an event beyond 256 KiB: a cold-start record whose line would be longer
 * is written without its module_tree (module_timings stay).
 */
export const MAX_LOG_LINE_BYTES = 250_000;

/**
 * A first invocation still running after this long (ms) hands off an early copy of its cold-start
 * record (`complete: false`), so that a process that dies mid-invocation cannot take the init data
 * with it. Shorter handlers (most) send only the complete record, after their response.
 */
export const EARLY_COPY_AFTER_MS = 250;

/** More than this between the end of init and the first invocation: a proactive initialization. */
export const PROACTIVE_GAP_MS = 10_000;

/** Global slot holding the one runtime per process, whichever copy of the SDK created it. */
export const RUNTIME_SYMBOL = Symbol.for('coldstart.analyzer.runtime');
/**
 * Function called by the markers the off-thread loader (esm-loader.ts) injects into ES modules:
 * (0 | 1, import.meta.url).
 */
export const ESM_MARKER_KEY = 'coldstart.analyzer.esm';
/**
 * Property of globalThis (non-enumerable) called by the markers the in-thread hooks inject into ES
 * modules: (0 | 1, id), the id numbering the modules loaded in this process. A bare short call:
 * longer markers (a member call, the module's URL as a literal) made Node.js 24 compile each
 * module measurably slower (tens of microseconds for a 1 kB module), charged to its package.
 */
export const ESM_MARKER_GLOBAL = '__csaEsm';
/**
 * Property of globalThis (non-enumerable) called by the markers the esbuild plugin puts into
 * bundles: (0, id, key) at a module's start, (1, id) at its end. A short name: it is written twice
 * per bundled module.
 */
export const BUNDLE_MARKER_GLOBAL = '__coldstart';
/** Property on a wrapped handler pointing to the original, so that nothing is wrapped twice. */
export const WRAPPED_SYMBOL = Symbol.for('coldstart.analyzer.wrapped');
/** Lambda's marker on response-streaming handlers (set by awslambda.streamifyResponse). */
export const STREAMING_SYMBOL = Symbol.for('aws.lambda.runtime.handler.streaming');
