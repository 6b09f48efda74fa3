// End to end against a real coldstartd (and its PostgreSQL): a fixture function with its own
// node_modules runs through the SDK in a fresh process; the records must come back through the
// backend's read API. Runs only when a backend is given:
//   COLDSTART_E2E_ENDPOINT=http://127.0.0.1:8000 COLDSTART_E2E_API_KEY=csa_... \
//     node node_modules/vitest/vitest.mjs run test/e2e
// With COLDSTART_E2E_DATABASE_URL (the backend's database, read with psql) the stored rows are
// checked too: the cold start's early copy and its completion make one complete row.
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { runFixture } from '../harness/helpers';

const endpoint = process.env.COLDSTART_E2E_ENDPOINT;
const apiKey = process.env.COLDSTART_E2E_API_KEY;
const databaseUrl = process.env.COLDSTART_E2E_DATABASE_URL;

/** Rows of `sql` (psql, unaligned, `|`-separated). */
function query(sql: string): string[][] {
  const run = spawnSync('psql', [databaseUrl!, '-X', '-At', '-F', '|', '-c', sql], { encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.trim() === ''
    ? []
    : run.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('|'));
}

async function get(path: string): Promise<any> {
  const response = await fetch(`${endpoint}${path}`, { headers: { 'X-API-Key': apiKey! } });
  expect(response.status, path).toBe(200);
  return response.json();
}

describe.skipIf(!endpoint || !apiKey)('end to end with coldstartd', () => {
  test('cold and warm records are stored and analysed', async () => {
    const name = `e2e-sdk-${Date.now()}-${process.pid}`;
    const result = await runFixture({
      handler: 'accuracy.handler',
      preload: 'require',
      endpoint,
      invocations: 3,
      env: { AWS_LAMBDA_FUNCTION_NAME: name, COLDSTART_API_KEY: apiKey },
    });
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr).not.toContain('[coldstart]'); // no delivery problem, no rejected record

    let fn: any;
    for (let i = 0; i < 50; i++) {
      const page = await get(`/api/v1/functions?name_prefix=${encodeURIComponent(name)}`);
      fn = page.functions.find((f: any) => f.function_name === name);
      if (fn?.cold_start_stats?.total_invocations_24h === 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(fn.cold_start_stats).toMatchObject({ cold_starts_24h: 1, total_invocations_24h: 3 });
    expect(fn).toMatchObject({ runtime: 'nodejs20.x', region: 'eu-west-1', memory_allocated_mb: 512 });

    const detail = await get(`/api/v1/functions/${fn.id}`);
    expect(detail.cold_starts).toBe(1);
    expect(detail.module_breakdown.alpha.p50_ms).toBeGreaterThan(200);
    expect(detail.module_breakdown.alpha.version).toBe('1.2.3');
    expect(detail.module_breakdown['./accuracy']).toBeDefined();
    expect(detail.module_tree.children[0].name).toBe('./accuracy');

    if (databaseUrl) {
      // one row per invocation; the cold one complete: execution figures from the complete copy,
      // the module tree with package versions (read after the early copy had left)
      const rows = query(`SELECT i.cold_start, i.execution_duration_ms IS NOT NULL, i.billed_duration_ms IS NOT NULL,
          i.memory_used_mb IS NOT NULL, i.init_duration_ms IS NOT NULL, i.module_tree::text LIKE '%"version": "1.2.3"%'
        FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = '${name}' ORDER BY i.cold_start DESC`);
      expect(rows).toHaveLength(3);
      expect(rows[0]).toEqual(['t', 't', 't', 't', 't', 't']);
      for (const warm of rows.slice(1)) expect(warm.slice(0, 2)).toEqual(['f', 't']);
    }
  });

  test('a process that dies in its first invocation leaves its cold start stored (the early copy)', async () => {
    const name = `e2e-sdk-crash-${Date.now()}-${process.pid}`;
    const result = await runFixture({
      handler: 'crash.handler',
      preload: 'require',
      endpoint,
      event: { mode: 'exit', afterMs: 300 },
      env: { AWS_LAMBDA_FUNCTION_NAME: name, COLDSTART_API_KEY: apiKey },
    });
    expect(result.code).toBe(3);
    expect(result.stderr).not.toContain('[coldstart]');
    let fn: any;
    for (let i = 0; i < 50 && !fn; i++) {
      const page = await get(`/api/v1/functions?name_prefix=${encodeURIComponent(name)}`);
      fn = page.functions.find((f: any) => f.function_name === name);
      if (!fn) await new Promise((r) => setTimeout(r, 100));
    }
    const detail = await get(`/api/v1/functions/${fn.id}`);
    expect(detail.cold_starts).toBe(1);
    expect(detail.module_breakdown.alpha.p50_ms).toBeGreaterThan(200);
    if (databaseUrl) {
      const rows = query(`SELECT i.cold_start, i.execution_duration_ms IS NULL, i.init_duration_ms IS NOT NULL, i.module_tree IS NOT NULL
        FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = '${name}'`);
      expect(rows).toEqual([['t', 't', 't', 't']]);
    }
  });
});
