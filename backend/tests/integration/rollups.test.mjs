// Hourly rollups (migrations/002) and records handed off early ("complete": false).
//
// Invocation counts come from function_hourly (+ the deltas not yet folded) for whole hours and
// from the rows themselves for the partial hours at a window's ends. These tests send records on
// both sides of every boundary, count independently here what a user would count, and compare
// before and after the deltas are folded; duplicates and completions must never be counted twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, runCli, uid, lit, sleep, mapLimit, assertValidationError } from './harness.mjs';

const ctx = useServer({ env: { RATE_LIMIT_QUERY: 1000000, RATE_LIMIT_INGEST: 1000000 } });
const MIN = 60000;
const HOUR = 60 * MIN;
const iso = (ms) => new Date(ms).toISOString();

const record = (fn, ms, overrides = {}) => ({
  function_name: fn,
  invocation_id: uid(),
  timestamp: iso(ms),
  cold_start: false,
  execution_duration_ms: 10,
  ...overrides,
});

async function functionId(name) {
  const rows = await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(name)}`);
  assert.equal(rows.length, 1, `function ${name} stored`);
  return rows[0].id;
}

async function listed(name) {
  const res = await ctx.get(`/api/v1/functions?prefix=${encodeURIComponent(name)}`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(res.status, 200, res.text);
  const f = res.json.functions.find((x) => x.function_name === name);
  assert.ok(f, `${name} listed`);
  return f.cold_start_stats;
}

async function detail(id, from, to) {
  const q = from ? `?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}` : '';
  const res = await ctx.get(`/api/v1/functions/${id}${q}`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function fold() {
  const r = await runCli(['maintain'], { env: { DATABASE_URL: ctx.db.url } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rollups: \d+ delta rows folded/);
}

test('invocation counts are exact across hour boundaries, before and after the rollups are folded', async () => {
  const fn = 'rollup-' + uid('f').slice(-8);
  const now = Date.now();
  // the detail window: odd minutes and seconds, so both ends cut an hour
  const from = now - 30 * HOUR - 17 * MIN - 13000;
  const to = now - 3 * HOUR - 41 * MIN - 7000;
  const times = [];
  for (let h = 0; h < 36; h++) times.push(now - h * HOUR - 60000, now - h * HOUR - 30 * MIN);
  // on both sides of every edge: the window's, the 24 h list's, and the hours around them
  for (const edge of [from, to, now - 24 * HOUR]) {
    for (const d of [-5 * MIN, -1000, -1, 0, 1, 1000, 5 * MIN]) times.push(edge + d);
  }
  times.push(now + 10 * MIN); // a little in the future (clock skew): counted in the 24 h list
  const records = times.map((t, i) =>
    record(fn, t, i % 7 === 0 ? { cold_start: true, init_duration_ms: 300 + i, start_kind: 'cold' } : {}),
  );
  // in batches, so that several statements (and delta rows) fall into the same hours
  for (let i = 0; i < records.length; i += 13) {
    const res = await ctx.batch({ invocations: records.slice(i, i + 13) });
    assert.equal(res.status, 200, res.text);
  }
  // retried copies change nothing
  const again = await ctx.batch({ invocations: records.slice(0, 20) });
  assert.equal(again.status, 200, again.text);

  const id = await functionId(fn);
  // what a user counts. The list's window starts 24 h before the request, so the records placed
  // within a second or so after the test's own now - 24 h may leave it while the test runs: the
  // list total must lie between the counts at the moments just before and after the request.
  const inWindow = times.filter((t) => t >= from && t < to).length;
  const check = async (when) => {
    const t0 = Date.now() - 24 * HOUR;
    const expectList = times.filter((t) => t >= t0).length;
    const stats = await listed(fn);
    const t1 = Date.now() - 24 * HOUR;
    const expectLate = times.filter((t) => t >= t1).length;
    assert.ok(
      stats.total_invocations_24h <= expectList && stats.total_invocations_24h >= expectLate,
      `${when}: list total ${stats.total_invocations_24h}, expected ${expectLate}..${expectList}`,
    );
    const d = await detail(id, iso(from), iso(to));
    assert.equal(d.invocations, inWindow, `${when}: detail invocations in [from, to)`);
    assert.equal(d.cold_starts, records.filter((r, i) => r.cold_start && times[i] >= from && times[i] < to).length);
  };
  await check('before folding');
  const deltas = await ctx.count(`SELECT count(*) FROM function_hourly_delta WHERE function_id = ${lit(id)}`);
  await fold();
  assert.equal(
    await ctx.count(`SELECT count(*) FROM function_hourly_delta WHERE function_id = ${lit(id)}`),
    0,
    `the ${deltas} deltas were folded`,
  );
  await check('after folding');
  // the rollup holds exactly what is stored, hour by hour
  const mismatched = await ctx.count(`
    SELECT count(*) FROM (
      SELECT csa_hour("timestamp") AS hour, count(*) AS n, count(*) FILTER (WHERE cold_start) AS c
      FROM invocations WHERE function_id = ${lit(id)} GROUP BY 1) raw
    FULL JOIN (SELECT hour, invocations AS n, cold_starts AS c FROM function_hourly WHERE function_id = ${lit(id)}) r
      USING (hour)
    WHERE raw.n IS DISTINCT FROM r.n OR raw.c IS DISTINCT FROM r.c`);
  assert.equal(mismatched, 0, 'function_hourly equals the rows grouped by hour');
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE function_id = ${lit(id)}`), records.length);
});

test('the server folds the deltas by itself within seconds', async () => {
  const fn = 'rollup-fold-' + uid('f').slice(-8);
  const res = await ctx.batch({ invocations: Array.from({ length: 5 }, (_, i) => record(fn, Date.now() - i * HOUR)) });
  assert.equal(res.status, 200, res.text);
  const id = await functionId(fn);
  let left = -1;
  for (let i = 0; i < 60 && left !== 0; i++) {
    await sleep(250);
    left = await ctx.count(`SELECT count(*) FROM function_hourly_delta WHERE function_id = ${lit(id)}`);
  }
  assert.equal(left, 0, 'deltas folded within 15 s (the server folds every 5 s)');
  assert.equal(await ctx.count(`SELECT coalesce(sum(invocations), 0) FROM function_hourly WHERE function_id = ${lit(id)}`), 5);
});

test('a cold-start record handed off early is completed by its full copy, once', async () => {
  const fn = 'early-' + uid('f').slice(-8);
  const full = record(fn, Date.now() - 2 * MIN, {
    cold_start: true,
    start_kind: 'cold',
    init_duration_ms: 900,
    execution_duration_ms: 120,
    billed_duration_ms: 1020,
    memory_used_mb: 150,
    module_timings: { 'aws-sdk': 500, './index': 20 },
    module_tree: { name: 'root', self: 20, inclusive: 520, children: [{ name: 'aws-sdk', self: 500, inclusive: 500 }] },
    module_source: 'hooks',
  });
  const { execution_duration_ms, billed_duration_ms, memory_used_mb, module_tree, ...early } = full;
  const res1 = await ctx.ingest({ ...early, complete: false });
  assert.equal(res1.status, 200, res1.text);
  assert.equal(res1.json.invocation_id, full.invocation_id);
  const row = async () =>
    await ctx.rows(`SELECT execution_duration_ms AS exec, billed_duration_ms AS billed, memory_used_mb AS mem,
                            module_tree IS NOT NULL AS tree, module_source AS source
                     FROM invocations WHERE invocation_id = ${lit(full.invocation_id)}`);
  assert.deepEqual(
    await row(),
    [{ exec: null, billed: null, mem: null, tree: false, source: 'hooks' }],
    'stored at once, execution figures unknown',
  );
  const id = await functionId(fn);
  // the early copy already counts: it is the cold start
  assert.equal((await detail(id)).cold_starts, 1);

  // the full copy may carry the platform's init figures (the extension joins them when its report came)
  const res2 = await ctx.ingest({ ...full, init_duration_ms: 912, init_type: 'on-demand', memory_allocated_mb: 1024 });
  assert.equal(res2.status, 200, res2.text);
  assert.deepEqual(await row(), [{ exec: 120, billed: 1020, mem: 150, tree: true, source: 'hooks' }], 'the full copy filled the row in');
  assert.deepEqual(
    await ctx.rows(
      `SELECT init_duration_ms AS init, init_type, memory_allocated_mb AS alloc FROM invocations WHERE invocation_id = ${lit(full.invocation_id)}`,
    ),
    [{ init: 912, init_type: 'on-demand', alloc: 1024 }],
  );
  // a late early copy, or another full copy with other figures, changes nothing
  assert.equal((await ctx.ingest({ ...early, complete: false })).status, 200);
  assert.equal((await ctx.ingest({ ...full, execution_duration_ms: 999 })).status, 200);
  assert.deepEqual(await row(), [{ exec: 120, billed: 1020, mem: 150, tree: true, source: 'hooks' }]);
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(full.invocation_id)}`), 1);
  const d = await detail(id);
  assert.equal(d.invocations, 1, 'one invocation, counted once');
  assert.equal(d.cold_starts, 1);
});

test('early and full copies racing each other (same batch, concurrent requests) leave one complete row each', async () => {
  const fn = 'race-' + uid('f').slice(-8);
  const pairs = Array.from({ length: 60 }, (_, i) => {
    const full = record(fn, Date.now() - MIN - i * 1000, {
      cold_start: true,
      start_kind: 'cold',
      init_duration_ms: 400,
      execution_duration_ms: 30 + i,
    });
    const { execution_duration_ms, ...early } = full;
    return { full, early: { ...early, complete: false } };
  });
  // one batch holding both copies of the first ten, early copy first and last
  const first = pairs.slice(0, 10).flatMap((p, i) => (i % 2 ? [p.early, p.full] : [p.full, p.early]));
  assert.equal((await ctx.batch({ invocations: first })).status, 200);
  // the others: both copies sent at the same moment, on separate connections
  await mapLimit(pairs.slice(10), 8, async (p) => {
    const [a, b] = await Promise.all([
      ctx.request('POST', '/api/v1/ingest', { body: p.early, headers: { 'X-API-Key': ctx.key }, fresh: true }),
      ctx.request('POST', '/api/v1/ingest', { body: p.full, headers: { 'X-API-Key': ctx.key }, fresh: true }),
    ]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
  });
  const id = await functionId(fn);
  const rows = await ctx.rows(`SELECT invocation_id AS inv, execution_duration_ms AS exec FROM invocations WHERE function_id = ${lit(id)}`);
  assert.equal(rows.length, pairs.length, 'one row per invocation');
  const want = new Map(pairs.map((p) => [p.full.invocation_id, p.full.execution_duration_ms]));
  for (const { inv, exec } of rows) assert.equal(exec, want.get(inv), `${inv} completed`);
  await fold();
  assert.equal(await ctx.count(`SELECT coalesce(sum(invocations), 0) FROM function_hourly WHERE function_id = ${lit(id)}`), pairs.length);
});

test('complete: false is refused where it cannot be completed or is not a cold start', async () => {
  const base = record('early-bad', Date.now() - MIN, { cold_start: true, complete: false });
  delete base.execution_duration_ms;
  const noId = { ...base };
  delete noId.invocation_id;
  assertValidationError(await ctx.ingest(noId), ['body', 'invocation_id'], 'missing');
  assertValidationError(await ctx.ingest({ ...base, cold_start: false }), ['body', 'complete'], 'value_error');
  const { complete, ...plain } = base;
  assertValidationError(await ctx.ingest(plain), ['body', 'execution_duration_ms'], 'missing');
  assertValidationError(await ctx.ingest({ ...base, module_source: 'rollup' }), ['body', 'module_source'], 'literal_error');
  assert.equal(await ctx.count(`SELECT count(*) FROM functions WHERE function_name = 'early-bad'`), 0, 'nothing stored');
});

test('the module breakdown reads every module name as sent: quotes, backslashes, non-ASCII', async () => {
  const fn = 'names-' + uid('f').slice(-8);
  const names = ['plain', 'we"ird', 'back\\slash', 'ünïcödé/パッケージ', 'sl/ash', '@scope/pkg'];
  const sent = [];
  for (let i = 0; i < 6; i++) {
    const timings = Object.fromEntries(names.map((n, k) => [n, (k + 1) * 10 + i * 0.25]));
    sent.push(timings);
    const res = await ctx.ingest(
      record(fn, Date.now() - (i + 1) * MIN, { cold_start: true, start_kind: 'cold', init_duration_ms: 500, module_timings: timings }),
    );
    assert.equal(res.status, 200, res.text);
  }
  const d = await detail(await functionId(fn));
  assert.deepEqual(Object.keys(d.module_breakdown).sort(), [...names].sort());
  for (const n of names) {
    const vals = sent.map((t) => t[n]).sort((x, y) => x - y);
    const m = d.module_breakdown[n];
    assert.equal(m.samples, 6, n);
    assert.equal(m.avg_load_time_ms, Math.round((vals.reduce((x, y) => x + y) / 6) * 100) / 100, `${n} avg`);
    assert.equal(m.p50_ms, Math.round(((vals[2] + vals[3]) / 2) * 100) / 100, `${n} p50`);
  }
});
