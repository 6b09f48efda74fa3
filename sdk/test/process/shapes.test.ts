// Every handler shape, in a fresh Node.js process with Lambda's environment, sending to a real
// HTTP listener.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { esmHooksApi } from '../../src/runtime/hooks';
import { API_KEY, NODE_VERSION, runFixture, startCollector, waitFor, type Collector } from '../harness/helpers';
import { expectValidRecord } from '../harness/record';

let collector: Collector;
beforeAll(async () => {
  collector = await startCollector();
});
afterAll(() => collector.close());

/** Runs a fixture with its own function name and returns the records that reached the listener. */
async function run(handler: string, options: Parameters<typeof runFixture>[0] extends infer O ? Partial<O> : never = {}) {
  const name = `fn-${handler}-${Math.random().toString(36).slice(2, 8)}`;
  const result = await runFixture({
    handler,
    endpoint: collector.url,
    ...options,
    env: { AWS_LAMBDA_FUNCTION_NAME: name, ...options.env },
  });
  const expected = options.env?.COLDSTART_ENABLED === 'false' ? 0 : (options.invocations ?? 1);
  await waitFor(
    () => expected > 0 && collector.records().filter((r) => r.function_name === name).length >= expected,
    expected > 0 ? 3000 : 300,
  );
  const records = collector.records().filter((r) => r.function_name === name);
  return { result, records, cold: records.filter((r) => r.cold_start), warm: records.filter((r) => !r.cold_start) };
}

describe('handler shapes', () => {
  test('async handler (CommonJS .js): result untouched, one cold record, warm records batched', async () => {
    const { result, records, cold, warm } = await run('async.handler', { invocations: 3, event: { hello: 'world' } });
    expect(result.code).toBe(0);
    expect(result.results).toHaveLength(3);
    expect(result.results[0]).toMatchObject({ ok: true, value: { shape: 'async', echo: { hello: 'world' }, alpha: 'alpha' } });
    expect(records).toHaveLength(3);
    expect(cold).toHaveLength(1);
    expect(warm).toHaveLength(2);
    for (const record of records) expectValidRecord(record);
    const record = cold[0];
    expect(record).toMatchObject({
      request_id: result.results[0].value.request,
      start_kind: 'cold',
      runtime_version: 'nodejs20.x',
      memory_allocated_mb: 512,
      region: 'eu-west-1',
      init_type: 'on-demand',
    });
    expect(record.module_timings.alpha).toBeGreaterThan(50);
    expect(record.module_tree.coverage).toBe('require');
    expect(record.module_tree.children.find((c: any) => c.name === 'alpha').version).toBe('1.2.3');
    expect(new Set(records.map((r) => r.invocation_id)).size).toBe(3);
    const paths = collector.received
      .filter((r) => records.includes(r.body) || r.body?.invocations?.some((x: any) => records.includes(x)))
      .map((r) => r.path);
    expect(paths).toContain('/api/v1/ingest');
    expect(paths).toContain('/api/v1/ingest/batch');
    expect(collector.received.every((r) => r.apiKey === API_KEY)).toBe(true);
  });

  test('callback handler keeps working and is recorded', async () => {
    const { result, cold } = await run('callback.handler', { invocations: 2 });
    expect(result.results.map((r) => r.value)).toEqual([
      { shape: 'callback', echo: { n: 1 } },
      { shape: 'callback', echo: { n: 1 } },
    ]);
    expect(cold).toHaveLength(1);
    expectValidRecord(cold[0]);
  });

  test('callback error passes through', async () => {
    const { result, cold } = await run('callback-error.handler');
    expect(result.results[0]).toMatchObject({ ok: false, error: 'callback failure' });
    expect(cold).toHaveLength(1);
  });

  test('response streaming handler keeps its marker and its stream', async () => {
    const { result, cold } = await run('streaming.handler');
    expect(result.results[0].ok).toBe(true);
    expect(result.results[0].value).toMatch(/^chunk-1;request=req-\d+-0;done$/);
    expect(cold).toHaveLength(1);
    expect(cold[0].request_id).toMatch(/^req-\d+-0$/);
  });

  test('.cjs handler', async () => {
    const { result, cold } = await run('cjs-handler.handler');
    expect(result.results[0].value).toEqual({ shape: 'cjs', echo: { n: 1 } });
    expect(cold[0].module_timings.beta).toBeGreaterThan(0);
  });

  test('.mjs handler importing the SDK (no preload): partial ESM coverage is stated', async () => {
    const { result, cold } = await run('esm-handler.handler');
    expect(result.results[0].value).toEqual({ shape: 'esm', name: 'esm-pkg+lib', echo: { n: 1 } });
    expect(cold).toHaveLength(1);
    expectValidRecord(cold[0]);
    expect(['partial', 'skipped', 'unsupported']).toContain(cold[0].esm_timing);
  });

  test('analyze() never wraps twice', async () => {
    const { result, records } = await run('double.handler', { invocations: 2 });
    expect(result.results.map((r) => r.value)).toEqual(['once', 'once']);
    expect(records).toHaveLength(2);
  });
});

describe('zero-code: preload and handler redirect', () => {
  test('--require preload + redirect times the handler file itself (CommonJS)', async () => {
    const { result, cold } = await run('plain.handler', { preload: 'require', redirect: true, invocations: 2 });
    expect(result.results[0].value).toEqual({ shape: 'plain', echo: { n: 1 } });
    expect(cold).toHaveLength(1);
    expectValidRecord(cold[0]);
    expect(cold[0].module_tree.coverage).toBe('preload');
    expect(Object.keys(cold[0].module_timings)).toEqual(expect.arrayContaining(['./plain', 'alpha']));
    // a CommonJS handler: no ES module hooks registered (they would slow every require())
    expect(cold[0].esm_timing).toBe('commonjs');
    expect(cold[0].module_tree.esm_timing).toBe('commonjs');
  });

  test('--import preload + redirect times ES modules (in-thread hooks), or says it skipped them (hooks thread)', async () => {
    const { result, cold } = await run('plain-esm.handler', { preload: 'import', redirect: true });
    expect(result.results[0].value).toEqual({ shape: 'plain-esm', name: 'esm-pkg+lib', echo: { n: 1 } });
    expect(cold).toHaveLength(1);
    const api = esmHooksApi(NODE_VERSION);
    // Node.js 18.19+/20 (module.register only): the hooks thread is not started by default (issue
    // 16: +86 % of an ES module handler's init on Node.js 20), and the record says so
    expect(cold[0].esm_timing).toBe(api === 'registerHooks' ? 'on' : api === 'register' ? 'skipped' : 'unsupported');
    expect(cold[0].module_tree.esm_timing).toBe(cold[0].esm_timing);
    if (api === 'registerHooks') {
      expect(cold[0].module_timings['esm-pkg']).toBeGreaterThan(50);
      expect(cold[0].module_timings['./plain-esm']).toBeGreaterThanOrEqual(0);
      expect(cold[0].module_timings['@coldstart/analyzer']).toBeUndefined();
    } else {
      // nothing guessed: ES modules are absent, and the SDK is not charged with them either
      expect(cold[0].module_timings['esm-pkg']).toBeUndefined();
      expect(cold[0].module_timings['@coldstart/analyzer']).toBeUndefined();
    }
  });

  test('COLDSTART_ESM_TIMING=on forces ES module timing where only the hooks thread exists (loading from the hooks thread)', async () => {
    const { result, cold } = await run('plain-esm.handler', { preload: 'import', redirect: true, env: { COLDSTART_ESM_TIMING: 'on' } });
    expect(result.results[0].value).toEqual({ shape: 'plain-esm', name: 'esm-pkg+lib', echo: { n: 1 } });
    const api = esmHooksApi(NODE_VERSION);
    expect(cold[0].esm_timing).toBe(api === 'registerHooks' ? 'on' : api === 'register' ? 'hooks-thread' : 'unsupported');
    if (api !== undefined) expect(cold[0].module_timings['esm-pkg']).toBeGreaterThan(50);
    expect(cold[0].module_timings['@coldstart/analyzer']).toBeUndefined();
  });

  test('a module imported after init (lazily, by the handler) is left as it is: no markers', async () => {
    const { result } = await run('lazy-esm.handler', { preload: 'require', redirect: true, invocations: 2 });
    const { init, lazy } = result.results[1].value;
    // the same line in both files: its column moves right only in a module the SDK marked
    if (esmHooksApi(NODE_VERSION) === 'registerHooks') expect(init).toBeGreaterThan(lazy);
    else expect(init).toBe(lazy);
  });

  test('COLDSTART_ESM_TIMING=off: no ES module timing on any version', async () => {
    const { cold } = await run('plain-esm.handler', { preload: 'import', redirect: true, env: { COLDSTART_ESM_TIMING: 'off' } });
    expect(cold[0].esm_timing).toBe('off');
    expect(cold[0].module_timings['esm-pkg']).toBeUndefined();
  });

  test('redirect alone (no NODE_OPTIONS) still sees the whole handler load', async () => {
    const { cold } = await run('plain.handler', { redirect: true });
    expect(cold[0].module_tree.coverage).toBe('redirect');
    expect(cold[0].module_timings.alpha).toBeGreaterThan(50);
  });

  test('redirect without COLDSTART_HANDLER fails init loudly (like a wrong handler name)', async () => {
    const result = await runFixture({ handler: 'plain.handler', endpoint: collector.url, redirect: true, env: { COLDSTART_HANDLER: '' } });
    expect(result.code).toBe(2);
    expect(JSON.stringify(result.lines)).toContain('COLDSTART_HANDLER');
  });

  test('COLDSTART_ENABLED=false: the handler runs unwrapped and nothing is sent', async () => {
    const { result, records } = await run('async.handler', { preload: 'require', env: { COLDSTART_ENABLED: 'false' } });
    expect(result.results[0].ok).toBe(true);
    expect(records).toHaveLength(0);
  });
});

describe('start classification', () => {
  test('provisioned concurrency', async () => {
    const { cold } = await run('async.handler', { env: { AWS_LAMBDA_INITIALIZATION_TYPE: 'provisioned-concurrency' } });
    expect(cold[0]).toMatchObject({ start_kind: 'provisioned', init_type: 'provisioned-concurrency', cold_start: true });
  });

  test('sampleRate 0 drops warm records but never the cold one', async () => {
    const name = `fn-sample-${Date.now()}`;
    await runFixture({
      handler: 'async.handler',
      endpoint: collector.url,
      invocations: 5,
      env: { AWS_LAMBDA_FUNCTION_NAME: name, COLDSTART_SAMPLE_RATE: '0' },
    });
    await new Promise((r) => setTimeout(r, 300));
    const records = collector.records().filter((r) => r.function_name === name);
    expect(records).toHaveLength(1);
    expect(records[0].cold_start).toBe(true);
  });
});
