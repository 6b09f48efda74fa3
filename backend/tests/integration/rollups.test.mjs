// Hourly rollups (migrations/002) and records handed off early ("complete": false).
//
// Invocation counts come from function_hourly (+ the deltas not yet folded) for whole hours and
// from the rows themselves for the partial hours at a window's ends. These tests send records on
// both sides of every boundary, count independently here what a user would count, and compare
// before and after the deltas are folded; duplicates and completions must never be counted twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, runCli, uid, lit, sleep, mapLimit, assertValidationError, createProjectKeys } from './harness.mjs';

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

// ---- execution times by start class (migrations/012) ----------------------------------------

const pct = (values, q) => {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return null;
  const pos = q * (v.length - 1),
    lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
};

test('execution times by start class count each invocation once, with its final time (early copies, completions, replays)', async () => {
  // a project of its own: "all functions" reads the project's total rows
  const slug = 'exec-' + uid('p').slice(-6);
  const keys = await createProjectKeys(ctx.db.url, 'Exec times', slug);
  const [pid] = (await ctx.rows(`SELECT id FROM projects WHERE slug = ${lit(slug)}`)).map((r) => r.id);
  const send = async (invocations) => {
    const res = await ctx.batch({ invocations }, { key: keys.admin });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.failed ?? 0, 0, res.text);
  };
  const now = Date.now();
  const from = now - 26 * HOUR - 17 * MIN - 13000;
  const to = now - 2 * HOUR - 41 * MIN - 7000;
  const kinds = [
    { cold_start: false },
    { cold_start: false, start_kind: 'warm' },
    { cold_start: true },
    { cold_start: true, start_kind: 'cold' },
    { cold_start: true, start_kind: 'proactive' },
    { cold_start: true, start_kind: 'provisioned' },
    { cold_start: true, start_kind: 'warm' },
  ];
  const fns = ['exec-a', 'exec-b', 'exec-c'];
  const recs = [];
  let i = 0;
  // every 20 minutes over 30 hours, and on both sides of the window's edges and of the day boundary
  const times = [];
  for (let t = now - 30 * HOUR; t < now; t += 30 * MIN) times.push(t);
  const midnight = Math.floor(now / (24 * HOUR)) * 24 * HOUR;
  for (const edge of [from, to, midnight, midnight - 24 * HOUR])
    for (const d of [-61 * MIN, -1000, 0, 1000, 59 * MIN]) times.push(edge + d);
  for (const t of times)
    for (const fn of fns) {
      const kind = kinds[i % kinds.length];
      const ms = ((i * 7919) % 700) + (i % 11 === 0 ? 0 : 1); // some zeros
      recs.push(record(fn, t, { ...kind, ...(kind.cold_start ? { init_duration_ms: 200 } : {}), execution_duration_ms: ms }));
      i++;
    }
  const cold = recs.filter((r) => r.cold_start);
  const early = (r) => {
    const { execution_duration_ms, ...e } = r;
    return { ...e, complete: false };
  };
  const later = new Set(cold.filter((_, k) => k % 3 === 0)); // sent early, completed later
  const never = new Set(cold.filter((_, k) => k % 3 === 1 && k % 5 === 0)); // sent early, never completed
  const first = recs.map((r) => (later.has(r) || never.has(r) ? early(r) : r));
  await mapLimit([...Array(Math.ceil(first.length / 29)).keys()], 4, (k) => send(first.slice(29 * k, 29 * k + 29)));
  // user's view: every record once; the time of the completed ones
  const final = recs.map((r) => (never.has(r) ? { ...r, execution_duration_ms: undefined } : r));
  const cls = (r) =>
    !r.cold_start
      ? 'warm'
      : (r.start_kind ?? 'cold') === 'cold'
        ? 'cold'
        : ['proactive', 'provisioned'].includes(r.start_kind)
          ? r.start_kind
          : 'other';
  const want = (list, set, t0, t1) => {
    const by = new Map();
    for (const r of list) {
      const t = Date.parse(r.timestamp);
      if (!set.includes(r.function_name) || t < t0 || t > t1) continue;
      const c = cls(r);
      if (!by.has(c)) by.set(c, { n: 0, v: [] });
      by.get(c).n++;
      if (r.execution_duration_ms !== undefined) by.get(c).v.push(r.execution_duration_ms);
    }
    return [...by]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([c, { n, v }]) => ({
        start_class: c,
        invocations: n,
        timed: v.length,
        avg: v.length ? Math.round((10 * v.reduce((a, b) => a + b, 0)) / v.length) / 10 : null,
        p95: pct(v, 0.95),
      }));
  };
  // every (functions, window) pair in one psql call
  const allCases = [];
  // one function (its rows), two of three (the project's total minus the third's), all (the total)
  for (const set of [['exec-a'], ['exec-a', 'exec-b'], fns]) {
    for (const [t0, t1] of [
      [from, to],
      [now - 40 * HOUR, now],
      [from, from + 20 * MIN],
      [midnight - 24 * HOUR, midnight],
    ])
      allCases.push({ set, t0, t1 });
  }
  // every window at the stages that change what is stored (completed, folded), the widest one at
  // the others (early copies, replays)
  const check = async (list, when, { all = true } = {}) => {
    const cases = all ? allCases : allCases.filter((c) => c.t0 === now - 40 * HOUR);
    const got = JSON.parse(
      await ctx.sql(
        `SELECT json_agg(r ORDER BY r.k) FROM (${cases
          .map(
            (c, k) => `
      SELECT ${k} AS k, (SELECT coalesce(json_agg(e ORDER BY e.start_class), '[]') FROM (
        SELECT start_class, invocations, timed, avg_ms::float8 AS avg, p95_ms AS p95
        FROM csa_exec_times(${lit(pid)}, ARRAY(SELECT id FROM functions WHERE project_id = ${lit(pid)}
                                               AND function_name IN (${c.set.map(lit).join(', ')})),
                            ${lit(iso(c.t0))}, ${lit(iso(c.t1))})) e) AS rows`,
          )
          .join(' UNION ALL ')}) r`,
      ),
    );
    cases.forEach((c, k) => {
      const rows = got[k].rows;
      const exp = want(list, c.set, c.t0, c.t1);
      const what = `${when}, ${c.set.join('+')}, ${iso(c.t0)}..${iso(c.t1)}`;
      assert.deepEqual(
        rows.map(({ p95, ...g }) => g),
        exp.map(({ p95, ...e }) => e),
        `${what}: counts and averages exact`,
      );
      rows.forEach((g, j) => {
        if (exp[j].p95 === null) assert.equal(g.p95, null, what);
        else
          assert.ok(
            Math.abs(g.p95 - exp[j].p95) <= 0.01 * Math.max(1, exp[j].p95),
            `${what} ${g.start_class}: p95 ${g.p95} vs ${exp[j].p95}`,
          );
      });
    });
  };
  // before the completions: the early copies count as invocations, without a time
  await check(
    recs.map((r) => (later.has(r) || never.has(r) ? { ...r, execution_duration_ms: undefined } : r)),
    'early copies',
    { all: false },
  );
  // the completions (some in a batch with replays of complete records), then replays of everything
  const done = [...later];
  await send([...done.slice(0, 10), ...recs.filter((r) => !later.has(r) && !never.has(r)).slice(0, 10)]);
  await mapLimit(done.slice(10, 20), 4, async (r) => assert.equal((await ctx.ingest(r, { key: keys.admin })).status, 200));
  await send(done.slice(20));
  await check(final, 'completed');
  for (let k = 0; k < recs.length; k += 50)
    await send(
      recs.slice(k, k + 50).map((r) => (never.has(r) ? early(r) : { ...r, execution_duration_ms: r.execution_duration_ms + 1000 })),
    );
  await send(done.slice(0, 5).map(early));
  await check(final, 'replayed', { all: false });
  await fold();
  await check(final, 'folded');
  // the rollups hold exactly what is stored, per function, hour and class, and the project's rows their sum
  const rollupVsRows = await ctx.count(`
    WITH raw AS (
      SELECT function_id, csa_hour("timestamp") AS hour, csa_exec_start_class(cold_start, start_kind) AS c, count(*) AS n,
             count(execution_duration_ms) AS t, coalesce(sum(execution_duration_ms), 0) AS s,
             min(execution_duration_ms) AS mn, max(execution_duration_ms) AS mx
      FROM invocations WHERE project_id = ${lit(pid)} GROUP BY 1, 2, 3
      UNION ALL
      SELECT '00000000-0000-0000-0000-000000000000', csa_hour("timestamp"), csa_exec_start_class(cold_start, start_kind), count(*),
             count(execution_duration_ms), coalesce(sum(execution_duration_ms), 0), min(execution_duration_ms), max(execution_duration_ms)
      FROM invocations WHERE project_id = ${lit(pid)} GROUP BY 2, 3)
    SELECT count(*) FROM raw FULL JOIN (SELECT function_id, hour, start_class AS c, invocations AS n, timed AS t, sum_ms AS s,
                                               min_ms AS mn, max_ms AS mx, keys, counts
                                        FROM function_exec_hourly WHERE project_id = ${lit(pid)}) r USING (function_id, hour, c)
    WHERE (raw.n, raw.t, raw.s, raw.mn, raw.mx) IS DISTINCT FROM (r.n, r.t, r.s, r.mn, r.mx)
       OR (SELECT sum(x) FROM unnest(r.counts) x) IS DISTINCT FROM CASE WHEN raw.t > 0 THEN raw.t END`);
  assert.equal(rollupVsRows, 0, 'function_exec_hourly equals the rows grouped by function, hour and start class');
  assert.equal(
    await ctx.count(`SELECT count(*) FROM (SELECT function_id, (hour AT TIME ZONE 'UTC')::date AS day, start_class, sum(invocations) AS n,
                                                  sum(timed) AS t, sum(sum_ms) AS s
                                           FROM function_exec_hourly WHERE project_id = ${lit(pid)} GROUP BY 1, 2, 3) h
                     FULL JOIN (SELECT function_id, day, start_class, invocations AS n, timed AS t, sum_ms AS s
                                FROM function_exec_daily WHERE project_id = ${lit(pid)}) d USING (function_id, day, start_class)
                     WHERE (h.n, h.t, h.s) IS DISTINCT FROM (d.n, d.t, d.s)`),
    0,
    'the daily rows equal their hours',
  );
});
