// settleGc: after the cold-start record has left, the SDK runs the major collection its own work
// made due, so that it is not left to the next invocation (bench/sdk/COLD-REQUEST.md), and leaves
// no trace: no `gc` global in contexts created afterwards, no thrown error; and skips it when a
// major collection has completed since the handler was wrapped (none can be due again).
import { runInNewContext } from 'node:vm';
import { PerformanceObserver } from 'node:perf_hooks';
import { expect, test } from 'vitest';
import { collectedSince, settleGc } from '../../src/invoke/gc';

const MARK_SWEEP_COMPACT = 4;

function majorCollections(): { count: () => number; stop: () => void } {
  let count = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if ((entry as unknown as { detail: { kind: number } }).detail.kind === MARK_SWEEP_COMPACT) count++;
  });
  observer.observe({ entryTypes: ['gc'] });
  return { count: () => count, stop: () => observer.disconnect() };
}

test('a full collection runs once the record has left, and gc is not left exposed', async () => {
  const seen = majorCollections();
  let left = false;
  await settleGc(
    new Promise<void>((resolve) =>
      setTimeout(() => {
        left = true;
        resolve();
      }, 20),
    ),
  );
  expect(left).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 50)); // gc entries arrive a turn late
  seen.stop();
  expect(seen.count()).toBeGreaterThanOrEqual(1);
  expect(runInNewContext('typeof gc')).toBe('undefined');
});

test('with nothing to wait for, and after a failed send, it still collects and resolves', async () => {
  const seen = majorCollections();
  await settleGc(undefined);
  await settleGc(Promise.reject(new Error('refused')) as Promise<void>);
  await new Promise((resolve) => setTimeout(resolve, 50));
  seen.stop();
  expect(seen.count()).toBeGreaterThanOrEqual(2);
});

/** V8's gc() for the test itself (the same way the SDK gets it). */
function testGc(): () => void {
  const v8 = require('node:v8') as typeof import('node:v8');
  v8.setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

test('after a major collection since the mark, it collects nothing; a mark no collection has seen, it collects', async () => {
  const gc = testGc();
  const mark = new WeakRef({});
  await new Promise((resolve) => setImmediate(resolve)); // a WeakRef keeps its target until its job ends
  gc();
  expect(collectedSince(mark)).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const seen = majorCollections();
  expect(settleGc(undefined, mark)).toBeUndefined(); // done at once
  await settleGc(Promise.resolve(), mark);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const skipped = seen.count();
  seen.stop();
  expect(skipped).toBe(0);

  const fresh = new WeakRef({}); // kept until this job ends: no collection can have cleared it
  expect(collectedSince(fresh)).toBe(false);
  const again = majorCollections();
  settleGc(undefined, fresh);
  await new Promise((resolve) => setTimeout(resolve, 50));
  again.stop();
  expect(again.count()).toBeGreaterThanOrEqual(1);
  expect(collectedSince(undefined)).toBe(false); // no mark (a runtime of an older copy): collect
});
