// The garbage collection that the SDK's own after-response work makes due is done before the
// environment may be frozen, not left for the next invocation.
//
// When init ends, a function's old generation is close to V8's first limit: whatever is allocated
// after init (the cold-start record: module tree, package versions, code_id) makes V8 start a major
// collection, incrementally, some 30-40 ms later. Lambda freezes the environment as soon as the
// runtime asks for its next event, so the rest of that collection ran when the next event arrived:
// the second response, one a user waits for, was 10-25 ms late in bench/sdk/cold-request.mjs. So
// once the cold-start record has left (while the hold of start.ts keeps the environment from being
// frozen), the SDK runs that collection itself: one full collection, 15-30 ms on this project's
// benchmark machine, billed to the first invocation after its response.
//
// Unless a major collection has already completed since the function's handler was wrapped, its
// modules loaded (the function's own: the AWS SDK v2 handler of bench/sdk makes one due at the end
// of its init, which on Node.js 24 often completes in its first response). Such a collection sets
// V8's next limit from the heap it left, with room for growth (a factor of
// at least 1.1 and a minimum step of megabytes), more than the record's work promotes (well under
// 1 MB): none is due again before the next event, and a forced one would be a second full
// collection for nothing (17-30 ms of billed time; the v2 handler's second responses stayed at
// 2.5-4 ms without it, traced for bench/sdk/COLD-REQUEST-BILLED.md).
// What is not covered: a function that, after that collection, allocates megabytes more before its
// first invocation ends could have the next one due again; the second response would then carry
// its end, as before the SDK collected at all. The sign is a weak reference to an object made as
// the handler is wrapped (runtime.ts heapMark): only a major collection clears it (a scavenge
// keeps its target), and JavaScript has no other sign of a completed collection that costs nothing
// to keep. It misses collections that complete while the JavaScript job that made it still runs
// (V8 keeps a weak reference's target alive until then): with AWS's runtime client 4, init and its
// first wait for an event are one job, so a collection at the end of init is not seen and the SDK
// collects as before (bench/sdk/COLD-REQUEST-BILLED.md: the v2 handler on Node.js 22, whose
// collection completes as its last modules load; on Node.js 24 it completes in the first response
// and is seen).

import type { HeapMark } from '../runtime/runtime';

type Collect = (options?: { type?: string; execution?: string }) => unknown;

let collect: Collect | null | undefined;

/** V8's gc(), made available without --expose-gc; null where that is not possible. */
function collector(): Collect | null {
  if (collect !== undefined) return collect;
  collect = null;
  try {
    const g = globalThis as { gc?: unknown };
    if (typeof g.gc === 'function') return (collect = g.gc as Collect);
    const v8 = require('node:v8') as typeof import('node:v8');
    const vm = require('node:vm') as typeof import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    try {
      const gc = vm.runInNewContext('gc') as unknown;
      if (typeof gc === 'function') collect = gc as Collect;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  } catch {
    collect = null;
  }
  return collect;
}

/** True when a major collection has completed since `mark` was taken (unknown: false). */
export function collectedSince(mark: HeapMark | undefined): boolean {
  try {
    return mark !== undefined && mark.deref() === undefined;
  } catch {
    return false;
  }
}

/**
 * Once `sent` settles (or at once), one full collection, unless a major collection has completed
 * since `mark` was taken; resolves after it (undefined: done at once). Never throws.
 */
export function settleGc(sent: Promise<void> | undefined, mark?: HeapMark): Promise<void> | undefined {
  const run = (): void => {
    try {
      if (!collectedSince(mark)) collector()?.();
    } catch {
      // a collection is an optimisation
    }
  };
  // Nothing to wait for (the logs transport): at once, before a turn of the event loop lets V8 run
  // a scavenge as a task (6-13 ms on the v3 handler of bench/sdk), work the full collection then
  // does itself.
  if (sent === undefined) {
    run();
    return undefined;
  }
  return sent.then(run, run);
}
