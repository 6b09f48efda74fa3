// ES module entry: re-exports the CommonJS core, so that ESM and CommonJS users (and the
// preload) share one copy of the SDK's state.
// Every public value of src/runtime/index.ts is re-exported here (test/unit/entry.test.ts checks it).
import core from '../dist/index.cjs';

core.__importedFromEsm();

export const analyze = core.analyze;
export const resolveConfig = core.resolveConfig;
export const ENV_API_KEY = core.ENV_API_KEY;
export const ENV_ENDPOINT = core.ENV_ENDPOINT;
export const ENV_ENABLED = core.ENV_ENABLED;
export const ENV_SAMPLE_RATE = core.ENV_SAMPLE_RATE;
export const ENV_TIMEOUT = core.ENV_TIMEOUT;
export const ENV_HANDLER = core.ENV_HANDLER;
export const ENV_ESM_TIMING = core.ENV_ESM_TIMING;
export const ENV_EXTENSION = core.ENV_EXTENSION;
export const ENV_TRANSPORT = core.ENV_TRANSPORT;
export const SDK_VERSION = core.SDK_VERSION;
export const DEFAULT_ENDPOINT = core.DEFAULT_ENDPOINT;
export default core;
