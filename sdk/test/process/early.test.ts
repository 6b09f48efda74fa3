// The cold-start record is handed off at the START of the first invocation (an early copy marked
// `"complete": false`, without the fields only the end knows), then sent complete at its end with
// the same invocation_id and timestamp. A process that dies mid-invocation still leaves the early
// copy at the listener.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runFixture, startCollector, waitFor, type Collector } from '../harness/helpers';
import { expectValidRecord } from '../harness/record';

let collector: Collector;
beforeAll(async () => {
  collector = await startCollector((request, response) => {
    if (request.method === 'GET') {
      // the fixture's probe: has the early copy of this function's cold-start record arrived?
      const name = new URL(request.url ?? '/', 'http://x').searchParams.get('fn');
      response.end(collector.earlyRecords().some((r) => r.function_name === name) ? 'yes' : 'no');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"status":"ok"}');
  });
});
afterAll(() => collector.close());

const ONLY_AT_THE_END = ['execution_duration_ms', 'billed_duration_ms', 'memory_used_mb'];

function expectEarlyCopy(early: any): void {
  expect(early).toMatchObject({ cold_start: true, complete: false, start_kind: 'cold', sdk_version: expect.any(String) });
  for (const field of ONLY_AT_THE_END) expect(early[field], field).toBeUndefined();
  expect(typeof early.invocation_id).toBe('string');
  expect(Number.isInteger(early.init_duration_ms)).toBe(true);
  expect(early.module_timings.alpha).toBeGreaterThan(50);
  expect(typeof early.sdk_overhead_ms).toBe('number');
  expect(early.module_tree.children.length).toBeGreaterThan(0);
}

describe('early hand-off of the cold-start record', () => {
  test('the early copy leaves before the handler returns; the complete record follows with the same identity', async () => {
    const name = `early-${Date.now()}`;
    const result = await runFixture({
      handler: 'early-probe.handler',
      endpoint: collector.url,
      invocations: 2,
      env: { AWS_LAMBDA_FUNCTION_NAME: name, EARLY_PROBE: `${collector.url}/__early?fn=${name}` },
    });
    expect(result.code).toBe(0);
    // the handler saw the early copy at the listener while it was still running
    expect(result.results[0].value).toMatchObject({ sawEarly: true });
    await waitFor(() => collector.records().filter((r) => r.function_name === name).length >= 2);
    const early = collector.earlyRecords().filter((r) => r.function_name === name);
    const complete = collector.records().filter((r) => r.function_name === name && r.cold_start);
    expect(early).toHaveLength(1);
    expect(complete).toHaveLength(1);
    expectEarlyCopy(early[0]);
    expectValidRecord(complete[0]);
    expect(complete[0].complete).toBeUndefined();
    for (const field of ['invocation_id', 'timestamp', 'request_id', 'init_duration_ms', 'start_kind', 'sdk_overhead_ms']) {
      expect(complete[0][field], field).toEqual(early[0][field]);
    }
    expect(complete[0].module_timings).toEqual(early[0].module_timings);
    // the complete record came later, and carries the execution figures and the package versions
    const arrival = (record: any) => collector.received.findIndex((r) => r.body === record);
    expect(arrival(early[0])).toBeLessThan(arrival(complete[0]));
    expect(complete[0].execution_duration_ms).toBeGreaterThanOrEqual(0);
    expect(complete[0].module_tree.children.find((c: any) => c.name === 'alpha').version).toBe('1.2.3');
    // warm records are unaffected: no early copy, complete, their own invocation_id
    const warm = collector.records().filter((r) => r.function_name === name && !r.cold_start);
    expect(warm).toHaveLength(1);
    expect(warm[0].complete).toBeUndefined();
    expect(warm[0].invocation_id).not.toBe(early[0].invocation_id);
  });

  for (const mode of ['exit', 'uncaught', 'kill'] as const) {
    test(`the process dies mid-invocation (${mode}): the early copy is at the listener`, async () => {
      const name = `crash-${mode}-${Date.now()}`;
      const result = await runFixture({
        handler: 'crash.handler',
        endpoint: collector.url,
        event: { mode, afterMs: 300 },
        env: { AWS_LAMBDA_FUNCTION_NAME: name },
      });
      expect(result.results).toHaveLength(0); // the invocation never finished
      if (mode === 'exit') expect(result.code).toBe(3);
      if (mode === 'kill') expect(result.signal).toBe('SIGKILL');
      if (mode === 'uncaught') {
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('crash outside the handler promise');
      }
      await waitFor(() => collector.earlyRecords().some((r) => r.function_name === name), 1000);
      const early = collector.earlyRecords().filter((r) => r.function_name === name);
      expect(early).toHaveLength(1);
      expectEarlyCopy(early[0]);
    });
  }
});
