// Module customization hooks for Node.js versions without module.registerHooks (18.19+, 20.x,
// 22 before 22.15): loaded by module.register() and run in Node's hooks thread, only when
// COLDSTART_ESM_TIMING=on (see hooks.ts). Evaluation only: module bodies get markers; the SDK's
// own files (this file is dist/esm-loader.mjs) do not.

import { sdkFiles } from '../shared/sdk-files';
import { injectMarkers, markers, shouldInstrument } from './inject';

const MARKERS = markers('globalThis[Symbol.for("coldstart.analyzer.esm")]?.', 'import.meta.url');

// This file is built as an ES module (tsup), the type check sees the CommonJS settings.
// @ts-expect-error TS1470: import.meta in a file the type check takes for CommonJS
const own = sdkFiles(new URL('..', import.meta.url as string).href);

interface LoadResult {
  format?: string | null;
  source?: unknown;
  shortCircuit?: boolean;
}
type NextLoad = (url: string, context?: unknown) => Promise<LoadResult>;

export async function load(url: string, context: unknown, nextLoad: NextLoad): Promise<LoadResult> {
  const result = await nextLoad(url, context);
  try {
    if (shouldInstrument(url, result.format) && !own(url)) {
      const source = injectMarkers(result.source, MARKERS);
      if (source !== undefined) return { ...result, source };
    }
  } catch {
    // leave the module untouched
  }
  return result;
}
