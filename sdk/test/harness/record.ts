import { expect } from 'vitest';

const INTEGER_FIELDS = ['init_duration_ms', 'execution_duration_ms', 'billed_duration_ms', 'memory_used_mb', 'memory_allocated_mb'];
const STRING_FIELDS = [
  'function_name',
  'invocation_id',
  'request_id',
  'timestamp',
  'runtime_version',
  'architecture',
  'region',
  'init_type',
  'start_kind',
  'sdk_version',
];

/** Checks a record against the ingest contract (types as strict as the backend's). */
export function expectValidRecord(record: any): void {
  expect(typeof record.function_name).toBe('string');
  expect(typeof record.invocation_id).toBe('string');
  expect(typeof record.request_id).toBe('string');
  expect(record.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  expect(typeof record.cold_start).toBe('boolean');
  expect(Number.isInteger(record.execution_duration_ms)).toBe(true);
  for (const field of INTEGER_FIELDS) {
    if (record[field] !== undefined) expect(Number.isInteger(record[field]), field).toBe(true);
  }
  for (const field of STRING_FIELDS) {
    if (record[field] !== undefined) {
      expect(typeof record[field], field).toBe('string');
      expect(record[field].length, field).toBeLessThanOrEqual(255);
    }
  }
  expect(['cold', 'warm', 'proactive', 'provisioned']).toContain(record.start_kind);
  expect(record.billed_duration_ms).toBeGreaterThanOrEqual(Math.max(1, record.execution_duration_ms));
  if (record.cold_start) {
    expect(Number.isInteger(record.init_duration_ms)).toBe(true);
    expect(typeof record.module_timings).toBe('object');
    for (const value of Object.values(record.module_timings)) {
      expect(typeof value).toBe('number');
      expect(value as number).toBeGreaterThanOrEqual(0);
    }
    expect(typeof record.sdk_overhead_ms).toBe('number');
    expect(typeof record.module_tree).toBe('object');
  } else {
    expect(record.init_duration_ms).toBeUndefined();
    expect(record.module_timings).toBeUndefined();
  }
}
