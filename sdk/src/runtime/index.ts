// Public surface of @coldstart/analyzer. Loading this module installs the module-load hooks
// (that is its side effect), so load it first, or preload it with `--require`/`--import
// @coldstart/analyzer/register`.

import { LOAD_START } from './clock';
import type { AnalyzeOptions } from './config';
import { ENV_ENABLED } from '../shared/constants';
import { loadOriginalHandler } from './redirect';
import { existingRuntime, obtainRuntime, type Coverage, type Runtime } from './runtime';
import { wrapHandler } from './wrapper';
import { invocationHalf } from './lazy';

export {
  ENV_API_KEY,
  ENV_ENDPOINT,
  ENV_ENABLED,
  ENV_SAMPLE_RATE,
  ENV_TIMEOUT,
  ENV_HANDLER,
  ENV_ESM_TIMING,
  ENV_EXTENSION,
  ENV_TRANSPORT,
  SDK_VERSION,
  DEFAULT_ENDPOINT,
} from '../shared/constants';
export { resolveConfig } from './config';
export type { AnalyzeOptions, ResolvedConfig, Transport } from './config';
export type { Context, Callback, Handler } from './wrapper';
export type { InvocationRecord } from '../shared/record';

function disabledByEnv(): boolean {
  const text = process.env[ENV_ENABLED]?.trim().toLowerCase();
  return text === 'false' || text === '0' || text === 'no' || text === 'off';
}

function runtime(coverage: Coverage, start: bigint): Runtime {
  return obtainRuntime(coverage, start, __filename);
}

// Installed when first loaded, unless switched off by the environment.
if (!disabledByEnv()) runtime('require', LOAD_START);

/**
 * Wraps a Lambda handler so that each invocation is recorded: the first one with the full
 * cold-start breakdown. Returns the handler unchanged if the SDK is disabled or has no API key.
 */
// biome-ignore lint/suspicious/noExplicitAny: any handler function, whatever its parameters and result
export function analyze<H extends (...args: any[]) => any>(handler: H, options?: AnalyzeOptions): H {
  const started = process.hrtime.bigint();
  const current = existingRuntime() ?? runtime('require', started);
  try {
    return wrapHandler(handler, options, current);
  } catch {
    return handler;
  } finally {
    current.recorder.exclude(started); // the SDK's own time, not the calling module's
  }
}

/** @internal Entry of the `register` preload; `start` is the clock before the SDK loaded. */
export function __preload(start: bigint): void {
  try {
    if (disabledByEnv()) return;
    const current = existingRuntime();
    if (current === undefined) {
      runtime('preload', start);
    } else if (!current.started) {
      current.coverage = 'preload';
      current.setupNs = Number(process.hrtime.bigint() - start);
    }
  } catch {
    // never break start-up
  }
}

/** @internal The ESM entry point was used: without a preload, the importing graph was already linked. */
export function __importedFromEsm(): void {
  const current = existingRuntime();
  if (current !== undefined && current.coverage === 'require') {
    current.coverage = 'import';
    if (current.esmTiming === 'on' || current.esmTiming === 'hooks-thread' || current.esmTiming === 'evaluation')
      current.esmTiming = 'partial';
  }
}

/** @internal Entry of the handler redirect (handler.mjs): loads COLDSTART_HANDLER and wraps it. */
export async function __redirectHandler(start: bigint): Promise<(...args: unknown[]) => unknown> {
  const current = existingRuntime();
  if (current !== undefined && (current.coverage === 'require' || current.coverage === 'import')) {
    current.coverage = 'redirect';
    current.setupNs = Number(process.hrtime.bigint() - start);
  }
  const original = await loadOriginalHandler();
  return analyze(original);
}

/** @internal Self time per package so far (ms), for tests and debugging. */
export function __timings(): Record<string, number> {
  const current = existingRuntime();
  return current === undefined ? {} : invocationHalf().moduleTimings(current.recorder.selfNs);
}

/**
 * @internal For `coldstart profile`: ends init now (stops the recorder, removes the hooks) and
 * returns what a cold-start record would carry, with package versions read synchronously.
 */
export function __profileSnapshot(): Record<string, unknown> | undefined {
  const current = existingRuntime();
  if (current === undefined) return undefined;
  const initMs = performance.now();
  current.uninstall();
  return invocationHalf().profileSnapshot(current, initMs);
}
