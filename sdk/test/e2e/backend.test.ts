// End to end against a real coldstartd (and its PostgreSQL): a fixture function with its own
// node_modules runs through the SDK in a fresh process; the records must come back through the
// backend's read API. Runs only when a backend is given:
//   COLDSTART_E2E_ENDPOINT=http://127.0.0.1:8000 COLDSTART_E2E_API_KEY=csa_... \
//     node node_modules/vitest/vitest.mjs run test/e2e
import { describe, expect, test } from 'vitest';
import { runFixture } from '../harness/helpers';

const endpoint = process.env.COLDSTART_E2E_ENDPOINT;
const apiKey = process.env.COLDSTART_E2E_API_KEY;

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
  });
});
