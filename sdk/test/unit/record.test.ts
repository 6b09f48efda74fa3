// The record builder both senders use (src/shared/record.ts): the function's runtime and
// `coldstart profile --send`.
import { describe, expect, it } from 'vitest';
import { SDK_VERSION } from '../../src/shared/constants';
import { buildRecord, type RecordFacts } from '../../src/shared/record';

const facts = (over: Partial<RecordFacts> = {}): RecordFacts => ({
  functionName: 'orders-api',
  invocationId: 'id-1',
  requestId: 'req-1',
  timestamp: '2026-01-02T03:04:05.000Z',
  startKind: 'warm',
  runtimeVersion: 'nodejs20.x',
  architecture: 'x86_64',
  end: { executionMs: 12.4, billed: true, memoryUsedMb: 80 },
  ...over,
});

describe('buildRecord', () => {
  it('a warm record: the end figures, no init figures, optional facts only when known', () => {
    const record = buildRecord(facts({ region: 'eu-west-1' }));
    expect(record).toEqual({
      function_name: 'orders-api',
      invocation_id: 'id-1',
      request_id: 'req-1',
      timestamp: '2026-01-02T03:04:05.000Z',
      cold_start: false,
      runtime_version: 'nodejs20.x',
      architecture: 'x86_64',
      start_kind: 'warm',
      sdk_version: SDK_VERSION,
      execution_duration_ms: 12,
      billed_duration_ms: 13,
      memory_used_mb: 80,
      region: 'eu-west-1',
    });
  });

  it('a cold start carries its init figures; the early copy leaves out what only the end knows', () => {
    const init = { initMs: 250.6, moduleTimings: { moment: 60 }, sdkOverheadMs: 1.234, esmTiming: 'off' };
    const complete = buildRecord(facts({ startKind: 'cold', init, codeId: 'c1', functionVersion: '$LATEST' }));
    expect(complete).toMatchObject({
      cold_start: true,
      start_kind: 'cold',
      init_duration_ms: 251,
      module_timings: { moment: 60 },
      sdk_overhead_ms: 1.234,
      esm_timing: 'off',
      code_id: 'c1',
      function_version: '$LATEST',
    });
    expect(complete.complete).toBeUndefined();
    const early = buildRecord(facts({ startKind: 'cold', init, end: undefined }));
    expect(early.complete).toBe(false);
    for (const key of ['execution_duration_ms', 'billed_duration_ms', 'memory_used_mb'] as const) expect(early).not.toHaveProperty(key);
    expect(early.init_duration_ms).toBe(251);
  });

  it('a profiled run is not billed; an execution under 1 ms is billed 1 ms; names are cut at 255 characters', () => {
    expect(buildRecord(facts({ end: { executionMs: 0, billed: false, memoryUsedMb: 70 } }))).not.toHaveProperty('billed_duration_ms');
    expect(buildRecord(facts({ end: { executionMs: 0.2, billed: true, memoryUsedMb: 70 } })).billed_duration_ms).toBe(1);
    expect(buildRecord(facts({ functionName: 'f'.repeat(300) })).function_name).toHaveLength(255);
  });
});
