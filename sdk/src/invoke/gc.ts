// The garbage collection that the SDK's own after-response work makes due is done before the
// environment may be frozen, not left for the next invocation.
//
// When init ends, a function's old generation is close to V8's first limit: whatever is allocated
// after init (the cold-start record: module tree, package versions, code_id) makes V8 start a major
// collection, incrementally, some 30-40 ms later. Lambda freezes the environment as soon as the
// runtime asks for its next event, so the rest of that collection ran when the next event arrived:
// the second response, one a user waits for, was 10-25 ms late in bench/sdk/cold-request.mjs. So
// once the cold-start record has left (while the hold of start.ts keeps the environment from being
// frozen), the SDK runs that collection itself: one full collection, 5-10 ms on this project's
// benchmark machine, billed to the first invocation after its response.

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

/** Once `sent` settles (or at once), one full collection; resolves after it. Never throws. */
export function settleGc(sent: Promise<void> | undefined): Promise<void> {
  const run = (): void => {
    try {
      collector()?.();
    } catch {
      // a collection is an optimisation
    }
  };
  if (sent === undefined)
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        run();
        resolve();
      }),
    );
  return sent.then(run, run);
}
