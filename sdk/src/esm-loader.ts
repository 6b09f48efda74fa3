// Module customization hooks for Node.js versions without module.registerHooks (18.19+, 20.x,
// 22 before 22.15): loaded by module.register() and run in Node's hooks thread.

import { injectMarkers, shouldInstrument, sourceText } from './inject';

interface LoadResult {
  format?: string | null;
  source?: unknown;
  shortCircuit?: boolean;
}
type NextLoad = (url: string, context?: unknown) => Promise<LoadResult>;

export async function load(url: string, context: unknown, nextLoad: NextLoad): Promise<LoadResult> {
  const result = await nextLoad(url, context);
  try {
    if (shouldInstrument(url, result.format)) {
      const text = sourceText(result.source);
      if (text !== undefined) return { ...result, source: injectMarkers(text) };
    }
  } catch {
    // leave the module untouched
  }
  return result;
}
