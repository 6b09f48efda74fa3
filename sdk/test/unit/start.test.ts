// afterResponse: the SDK's work runs after the runtime has posted the function's response and,
// where the runtime client allows, before it asks for its next event (after which Lambda may freeze
// the environment). Each runtime client's order is reproduced here as its source does it; the real
// client 4 runs in bench/sdk/cold-request.mjs.
import { afterEach, describe, expect, test } from 'vitest';
import { afterResponse, hookRuntimeClient } from '../../src/runtime/start';

const holder = globalThis as { awslambda?: Record<string, unknown> };
afterEach(() => {
  delete holder.awslambda;
});

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('afterResponse', () => {
  test('older runtime clients: the response is posted in the promise reaction, the next event asked from a setImmediate queued after ours', async () => {
    const order: string[] = [];
    await Promise.resolve()
      .then(() => afterResponse(() => void order.push('work')))
      .then(() => {
        order.push('response posted');
        setImmediate(() => order.push('next event asked for'));
      });
    await tick();
    await tick();
    expect(order).toEqual(['response posted', 'work', 'next event asked for']);
  });

  test('client 4 (InvokeStore.run around each invocation): the work runs after the post and before the next event, and run() settles once what it handed off has left, at most its hold', async () => {
    // globalThis.awslambda is set up before the handler loads; the SDK hooks it as it wraps the handler
    holder.awslambda = {};
    hookRuntimeClient();
    // the client creates its store at the first invocation
    const store = { run: (_context: unknown, fn: () => unknown) => fn() };
    holder.awslambda.InvokeStore = store;
    expect(holder.awslambda.InvokeStore).toBe(store);
    const order: string[] = [];
    let handedOff!: () => void;
    const invocation = async (): Promise<string> => {
      // the handler settles; the SDK's wrapper schedules its work with a hold of 200 ms
      await Promise.resolve().then(() =>
        afterResponse(() => {
          order.push('work');
          return new Promise<void>((resolve) => (handedOff = resolve));
        }, 200),
      );
      await new Promise((resolve) => setImmediate(resolve)); // lifecycle.succeed
      order.push('response posted');
      return 'result';
    };
    const started = performance.now();
    const running = (holder.awslambda.InvokeStore as typeof store).run({}, invocation) as Promise<string>;
    const next = running.then((value) => order.push(`next event asked for (${value})`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(order).toEqual(['response posted', 'work']); // held: the record has not left yet
    handedOff();
    await next;
    expect(order).toEqual(['response posted', 'work', 'next event asked for (result)']);
    expect(performance.now() - started).toBeLessThan(200);

    // a record that never leaves holds the next event at most its hold; an error passes through
    const failing = (holder.awslambda.InvokeStore as typeof store).run({}, async () => {
      await Promise.resolve().then(() => afterResponse(() => new Promise<void>(() => undefined), 100));
      throw new Error('handler error');
    }) as Promise<never>;
    const t0 = performance.now();
    await expect(failing).rejects.toThrow('handler error');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  test('client 4 without the hook (a store the SDK could not wrap): the work still runs after the post', async () => {
    holder.awslambda = { InvokeStore: Object.freeze({ run: (_c: unknown, fn: () => unknown) => fn() }) };
    const order: string[] = [];
    await Promise.resolve().then(() => afterResponse(() => void order.push('work')));
    await tick(); // lifecycle.succeed's setImmediate, queued after ours
    order.push('response posted');
    await tick();
    await tick();
    expect(order).toEqual(['response posted', 'work']);
  });
});
