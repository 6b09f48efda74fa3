// The logs transport (COLDSTART_TRANSPORT=logs): each record is one line {"coldstart_record":...}
// on stdout, written synchronously after the response; nothing goes to the network and no API key
// is needed. (That coldstartd stores these lines as it stores the records sent directly is checked
// in backend/tests/integration/transports.test.mjs, through CloudWatch Logs and Firehose.)
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runFixture, startCollector, type Collector } from '../harness/helpers';
import { expectValidRecord } from '../harness/record';

let collector: Collector;
beforeAll(async () => {
  collector = await startCollector();
});
afterAll(() => collector.close());

const recordLines = (lines: any[]) => lines.filter((line) => line.coldstart_record !== undefined).map((line) => line.coldstart_record);
const logs = { COLDSTART_TRANSPORT: 'logs', COLDSTART_API_KEY: undefined };

describe('the logs transport', () => {
  test('a line per invocation on stdout, nothing on the network, no key needed', async () => {
    const result = await runFixture({ handler: 'async.handler', endpoint: collector.url, invocations: 3, env: logs });
    expect(result.code).toBe(0);
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr).not.toContain('[coldstart]');
    const records = recordLines(result.lines);
    expect(records).toHaveLength(3);
    for (const record of records) expectValidRecord(record);
    expect(records.map((r) => r.cold_start)).toEqual([true, false, false]);
    expect(records[0].module_timings.alpha).toBeGreaterThan(0);
    expect(records[0].module_tree.children.find((c: any) => c.name === 'alpha').version).toBe('1.2.3');
    // each record comes after its invocation's response (the runner prints each result as it gets it)
    const order = result.lines.filter((l) => l.type === 'result' || l.coldstart_record !== undefined);
    for (let k = 0; k < 3; k++) {
      const response = order.findIndex((l) => l.type === 'result' && l.index === k);
      const record = order.indexOf(order.filter((l) => l.coldstart_record !== undefined)[k]);
      expect(record, `record ${k}`).toBeGreaterThan(response);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(collector.received).toHaveLength(0);
  });

  test('a process that dies 600 ms into its first invocation has written the early copy', async () => {
    const result = await runFixture({
      handler: 'crash.handler',
      endpoint: collector.url,
      event: { mode: 'exit', afterMs: 600 },
      env: logs,
    });
    expect(result.code).toBe(3);
    const records = recordLines(result.lines);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ cold_start: true, complete: false, start_kind: 'cold' });
    expect(records[0].module_timings.alpha).toBeGreaterThan(0);
  });
});
