// Failures around the function: the endpoint down, slow, failing or refusing the key; the handler
// throwing or running into Lambda's timeout. The function's result must be untouched and the
// cold-start record delivered whenever the endpoint can take it.
import { afterEach, describe, expect, test } from 'vitest';
import { closedPort, runFixture, startCollector, waitFor, type Collector } from '../harness/helpers';

let collector: Collector | undefined;
afterEach(async () => {
  await collector?.close();
  collector = undefined;
});

describe('endpoint failures leave the function alone', () => {
  test('endpoint down: result untouched, one warning, the first response not delayed', async () => {
    const result = await runFixture({
      handler: 'async.handler',
      endpoint: 'http://127.0.0.1:9',
      invocations: 3,
      env: { COLDSTART_TIMEOUT: '500' },
    });
    expect(result.code).toBe(0);
    expect(result.results.map((r) => r.value.shape)).toEqual(['async', 'async', 'async']);
    // nothing on the response's path waits for the network (the precise cost is in bench/sdk)
    expect(result.results[0].ms).toBeLessThan(100);
    expect(result.stderr).toContain('could not deliver');
    expect(result.stderr.split('could not deliver').length - 1).toBe(1);
  });

  test('slow endpoint: no invocation waits for it, the process still exits', async () => {
    collector = await startCollector(() => {
      /* never answers */
    });
    const result = await runFixture({
      handler: 'async.handler',
      endpoint: collector.url,
      invocations: 3,
      env: { COLDSTART_TIMEOUT: '300' },
    });
    expect(result.code).toBe(0);
    expect(result.results).toHaveLength(3);
    expect(result.results[0].ms).toBeLessThan(100);
    expect(result.results[1].ms).toBeLessThan(100);
    expect(result.results[2].ms).toBeLessThan(100);
    expect(result.ms).toBeLessThan(8000);
    expect(collector.received.some((r) => r.path === '/api/v1/ingest' && r.body.cold_start)).toBe(true);
  });

  test('endpoint refusing, then back: the cold-start record is kept and delivered later in the life of the process', async () => {
    const port = await closedPort();
    const running = runFixture({ handler: 'async.handler', endpoint: `http://127.0.0.1:${port}`, invocations: 1, lingerMs: 4000 });
    await new Promise((r) => setTimeout(r, 700)); // refused a few times meanwhile
    collector = await startCollector(undefined, port);
    const result = await running;
    expect(result.results[0].ms).toBeLessThan(100);
    expect(result.stderr).toContain('could not deliver');
    const cold = collector.records().filter((r) => r.cold_start);
    expect(cold).toHaveLength(1);
    expect(cold[0].module_timings).toBeTypeOf('object');
  });

  test('HTTP 500: retried with the same invocation_id, result untouched', async () => {
    collector = await startCollector((_q, response, index) => {
      response.writeHead(index < 2 ? 500 : 200);
      response.end('{}');
    });
    const result = await runFixture({ handler: 'async.handler', endpoint: collector.url });
    expect(result.results[0].value.shape).toBe('async');
    await waitFor(() => collector!.received.length >= 3);
    const ids = collector.received.map((r) => r.body.invocation_id);
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ids).size).toBe(1);
  });

  test('invalid key (401): not retried, reported once, result untouched', async () => {
    collector = await startCollector((_q, response) => {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end('{"detail":"Invalid or missing API key","error_code":"AUTHENTICATION_ERROR"}');
    });
    const result = await runFixture({ handler: 'async.handler', endpoint: collector.url, invocations: 2 });
    expect(result.results.map((r) => r.ok)).toEqual([true, true]);
    expect(result.stderr).toContain('rejected the API key');
    // each copy posted once (an early copy goes out only if the handler awaited something first)
    const posts = collector.received.filter((r) => r.path === '/api/v1/ingest');
    expect(posts.filter((r) => r.body.complete === undefined)).toHaveLength(1);
    expect(posts.filter((r) => r.body.complete === false).length).toBeLessThanOrEqual(1);
  });
});

describe('handler failures still deliver the cold-start record', () => {
  test('async handler throws: the same error reaches the runtime, the record is delivered first', async () => {
    collector = await startCollector();
    const result = await runFixture({ handler: 'throws.handler', endpoint: collector.url });
    expect(result.results[0]).toMatchObject({ ok: false, error: 'payment declined' });
    expect(collector.records().filter((r) => r.cold_start)).toHaveLength(1);
  });

  test('handler throws synchronously: rethrown synchronously, record sent in the background', async () => {
    collector = await startCollector();
    const result = await runFixture({ handler: 'sync-throws.handler', endpoint: collector.url, lingerMs: 300 });
    expect(result.results[0]).toMatchObject({ ok: false, error: 'sync failure', sync: true });
    await waitFor(() => collector!.records().length >= 1);
    expect(collector.records()[0].cold_start).toBe(true);
  });

  test('handler hangs until Lambda kills it: the record goes out before the deadline', async () => {
    collector = await startCollector();
    const result = await runFixture({
      handler: 'hang.handler',
      endpoint: collector.url,
      timeoutMs: 2500,
      env: { COLDSTART_TIMEOUT: '500' },
    });
    expect(result.signal).toBe('SIGKILL');
    expect(result.lines.some((l) => l.type === 'timeout')).toBe(true);
    const cold = collector.records().filter((r) => r.cold_start);
    expect(cold).toHaveLength(1);
    // sent about 750 ms (timeout + margin) before the deadline, with the execution time so far
    expect(cold[0].execution_duration_ms).toBeGreaterThanOrEqual(1250);
    expect(cold[0].execution_duration_ms).toBeLessThan(2500);
  });
});
