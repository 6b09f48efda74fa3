// Entry point of the runtime bundle (dist/index.cjs): the public surface of ./index, exported as a
// plain `module.exports` object. esbuild would turn `export { ... }` into a getter per name and a
// copy of them (its ESM-to-CommonJS helpers), which costs a few hundred microseconds of the SDK's
// own load in a freshly started process. The types (dist/index.d.ts) come from ./index.
// Every value exported by ./index must be listed here, and its public ones in esm/index.mjs
// (test/unit/entry.test.ts checks both against dist/index.d.ts).

import {
  DEFAULT_ENDPOINT,
  ENV_API_KEY,
  ENV_ENABLED,
  ENV_ENDPOINT,
  ENV_ESM_TIMING,
  ENV_EXTENSION,
  ENV_TRANSPORT,
  ENV_HANDLER,
  ENV_SAMPLE_RATE,
  ENV_TIMEOUT,
  SDK_VERSION,
  __importedFromEsm,
  __preload,
  __profileSnapshot,
  __redirectHandler,
  __timings,
  analyze,
  resolveConfig,
} from './index';

const api = {
  analyze,
  resolveConfig,
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
  __preload,
  __importedFromEsm,
  __redirectHandler,
  __timings,
  __profileSnapshot,
};
// as esbuild's own output marks it (non-enumerable): TypeScript's and bundlers' interop read it
Object.defineProperty(api, '__esModule', { value: true });

export = api;
