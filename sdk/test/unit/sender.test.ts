import { afterEach, describe, expect, test } from 'vitest';
import { Sender } from '../../src/shared/sender';
import { startCollector, type Collector } from '../harness/helpers';

let collector: Collector | undefined;
afterEach(async () => {
  await collector?.close();
  collector = undefined;
});

const deadline = (ms: number) => performance.now() + ms;

describe('Sender', () => {
  test('posts JSON with the API key', async () => {
    collector = await startCollector();
    const sender = new Sender(collector.url, 'csa_key');
    const result = await sender.send('/api/v1/ingest', JSON.stringify({ a: 1 }), deadline(2000));
    expect(result).toMatchObject({ ok: true, status: 200, attempts: 1 });
    expect(collector.received[0]).toMatchObject({
      path: '/api/v1/ingest',
      apiKey: 'csa_key',
      contentType: 'application/json',
      body: { a: 1 },
    });
  });

  test('retries 5xx and 429 with the same body, then succeeds', async () => {
    collector = await startCollector((_q, response, index) => {
      response.writeHead(index === 0 ? 503 : index === 1 ? 429 : 200);
      response.end('{}');
    });
    const sender = new Sender(collector.url, 'k', { backoffMs: 5 });
    const result = await sender.send('/api/v1/ingest', '{"invocation_id":"same"}', deadline(3000));
    expect(result).toMatchObject({ ok: true, attempts: 3 });
    expect(collector.received.map((r) => r.body.invocation_id)).toEqual(['same', 'same', 'same']);
  });

  test('does not retry a rejected key or a rejected record', async () => {
    collector = await startCollector((_q, response) => {
      response.writeHead(401);
      response.end('{"detail":"Invalid or missing API key"}');
    });
    const sender = new Sender(collector.url, 'bad', { backoffMs: 5 });
    const result = await sender.send('/api/v1/ingest', '{}', deadline(2000));
    expect(result).toMatchObject({ ok: false, status: 401, attempts: 1 });
  });

  test('gives up at the deadline when the endpoint is slow', async () => {
    collector = await startCollector((_q, response) => setTimeout(() => response.end('{}'), 2000).unref());
    const sender = new Sender(collector.url, 'k');
    const started = performance.now();
    const result = await sender.send('/api/v1/ingest', '{}', deadline(200));
    expect(result.ok).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test('bounded retries when the endpoint is down', async () => {
    const sender = new Sender('http://127.0.0.1:9', 'k', { backoffMs: 5 });
    const result = await sender.send('/api/v1/ingest', '{}', deadline(5000));
    expect(result.ok).toBe(false);
    expect(result.attempts).toBe(3);
  });

  test('warm records are batched; one batch in flight at a time', async () => {
    collector = await startCollector((_q, response) => setTimeout(() => response.end('{}'), 50));
    const sender = new Sender(collector.url, 'k');
    for (let i = 0; i < 25; i++) sender.enqueue({ i });
    await sender.flush();
    const batches = collector.received.filter((r) => r.path === '/api/v1/ingest/batch');
    expect(batches.length).toBeGreaterThanOrEqual(1);
    expect(batches.length).toBeLessThanOrEqual(2);
    expect(collector.records().map((r) => r.i)).toEqual([...Array(25).keys()]);
    expect(sender.stats.sent).toBe(25);
  });

  test('the queue is bounded', async () => {
    const sender = new Sender('http://127.0.0.1:9', 'k', { maxQueue: 10, backoffMs: 1 });
    for (let i = 0; i < 100; i++) sender.enqueue({ i });
    expect(sender.queued).toBeLessThanOrEqual(10);
    expect(sender.stats.dropped).toBeGreaterThan(0);
    await sender.flush();
  });
});
