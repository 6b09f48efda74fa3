// Day and hour sketches (migrations/006, 008): the function detail takes whole UTC days from
// per-day DDSketches (1 % relative error on percentiles; counts, averages and costs exact), the
// whole hours of the partial days at the window's ends from per-hour ones, the partial hours at its
// very ends from the rows; its timeline takes whole hours from the hour sketches. Cold starts go through HTTP on several days; the test computes the
// exact figures itself and compares, after the queue is folded (`coldstartd maintain`); replays
// and records completed later ("complete": false, then true) must count once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, runCli, uid } from './harness.mjs';

const ctx = useServer({ env: { RATE_LIMIT_QUERY: 1000000, RATE_LIMIT_INGEST: 1000000 } });
const HOUR = 3600000;
const DAY = 24 * HOUR;
const iso = (ms) => new Date(ms).toISOString();

function percentileCont(values, p) {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// a fixed pseudo-random sequence, so that a failure can be replayed
let state = 12345;
const rand = () => {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state / 2147483648;
};

function coldStart(fn, t, extra = {}) {
  const init = Math.round(200 + 1500 * rand() ** 3);
  return {
    function_name: fn,
    invocation_id: uid(),
    timestamp: iso(t),
    cold_start: true,
    start_kind: 'cold',
    init_duration_ms: init,
    execution_duration_ms: 30,
    memory_allocated_mb: 512,
    module_timings: {
      'aws-sdk': Math.round((40 + 400 * rand() ** 2) * 1000) / 1000,
      lodash: Math.round(8 * rand() * 1000) / 1000,
      './src/handler': Math.round(0.5 * rand() * 1000) / 1000,
    },
    ...extra,
  };
}

async function send(records) {
  for (let i = 0; i < records.length; i += 200) {
    const res = await ctx.batch({ invocations: records.slice(i, i + 200) });
    assert.equal(res.status, 200, res.text);
  }
}

async function fold() {
  const r = await runCli(['maintain'], { env: { DATABASE_URL: ctx.db.url } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /day sketches: \d+ cold starts folded/);
  assert.equal(await ctx.count('SELECT count(*) FROM function_day_sketch_pending'), 0, 'queue empty after the fold');
}

// what the dashboard's cold start panels count (migrations/009): [from, to), to inclusive in SQL
async function coldCount(id, from, to) {
  return ctx.count(`SELECT csa_cold_starts(ARRAY['${id}']::uuid[], '${iso(from)}', '${iso(to - 1)}')`);
}

// what the dashboard's init panels read (migrations/010): the pieces of [from, to) summed, and the
// merged buckets' p95; against the records: counts, sums and GB-seconds exact, p95 within 1 %; with
// whole hours only, and with whole 6-hour blocks where the range holds some (migrations/013)
async function checkPieces(id, records, from, to, what) {
  for (const blocks of [false, true]) await checkPiecesOf(id, records, from, to, blocks, `${what}${blocks ? ', 6-hour blocks' : ''}`);
}

async function checkPiecesOf(id, records, from, to, blocks, what) {
  const [got] = await ctx.rows(`WITH p AS (
      SELECT * FROM csa_cold_start_pieces(ARRAY['${id}']::uuid[], '${iso(from)}', '${iso(to - 1)}', ${blocks})
    ), b AS (
      SELECT u.k, sum(u.c)::bigint AS c FROM p CROSS JOIN LATERAL unnest(p.init_keys, p.init_counts) u(k, c) GROUP BY u.k
    )
    SELECT coalesce(sum(cold_starts), 0)::int AS cold, coalesce(sum(proactive_starts), 0)::int AS proactive,
           coalesce(sum(init_n), 0)::int AS n, coalesce(sum(init_sum), 0) AS s,
           coalesce(sum(init_gb_s_x86_64), 0) AS gb_s, coalesce(sum(init_gb_s_arm64), 0) AS gb_arm, (SELECT coalesce(sum(c), 0) FROM b)::int AS buckets,
           csa_buckets_quantile((SELECT array_agg(k ORDER BY k) FROM b), (SELECT array_agg(c ORDER BY k) FROM b),
             min(init_min), max(init_max), 0.95) AS p95
    FROM p`);
  const exp = expected(records, from, to);
  const proactive = records.filter((r) => {
    const t = Date.parse(r.timestamp);
    return t >= from && t < to && r.start_kind === 'proactive';
  }).length;
  assert.equal(got.cold, exp.cold, `${what}: pieces, cold starts`);
  assert.equal(got.proactive, proactive, `${what}: pieces, proactive starts`);
  assert.equal(got.n, exp.inits.length, `${what}: pieces, init durations`);
  assert.equal(got.buckets, exp.inits.length, `${what}: pieces, the buckets hold each init once`);
  near(
    Number(got.s),
    exp.inits.reduce((a, b) => a + b, 0),
    1e-12,
    `${what}: pieces, init sum (exact)`,
  );
  // by architecture (a third of the records are arm64)
  const realInits = records.filter((r) => {
    const t = Date.parse(r.timestamp);
    return t >= from && t < to && r.cold_start && (r.start_kind ?? 'cold') === 'cold' && r.init_duration_ms !== undefined;
  });
  const gbOf = (arm) =>
    realInits.filter((r) => (r.architecture === 'arm64') === arm).reduce((a, r) => a + (r.init_duration_ms / 1000) * 0.5, 0);
  near(Number(got.gb_s), gbOf(false), 1e-12, `${what}: pieces, GB-seconds x86_64 (exact)`);
  near(Number(got.gb_arm), gbOf(true), 1e-12, `${what}: pieces, GB-seconds arm64 (exact)`);
  if (exp.inits.length) near(Number(got.p95), percentileCont(exp.inits, 0.95), 0.01, `${what}: pieces, p95`);
}

async function detail(id, from, to) {
  const res = await ctx.get(`/api/v1/functions/${id}?from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}`, {
    headers: { 'X-API-Key': ctx.key },
  });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// what a user computes from the records themselves
function expected(records, from, to) {
  const real = records.filter((r) => {
    const t = Date.parse(r.timestamp);
    return t >= from && t < to && r.cold_start && (r.start_kind ?? 'cold') === 'cold';
  });
  const inits = real.filter((r) => r.init_duration_ms !== undefined).map((r) => r.init_duration_ms);
  const modules = {};
  for (const r of real) for (const [k, v] of Object.entries(r.module_timings || {})) (modules[k] ||= []).push(v);
  return { cold: real.length, inits, modules };
}

// 1 % relative (the sketches' bound) plus the answer's rounding to 0.01 ms
function near(got, want, relative, what) {
  const bound = relative * Math.abs(want) + 0.005 + 1e-9;
  assert.ok(Math.abs(got - want) <= bound, `${what}: got ${got}, exact ${want} (bound ${bound.toFixed(3)})`);
}

// the timeline's buckets against the records: counts exact, percentiles within `relative`
function checkTimeline(body, records, from, to, relative, what) {
  const width = body.timeline.bucket_seconds * 1000;
  const byStart = new Map();
  for (const r of records) {
    const t = Date.parse(r.timestamp);
    if (!(t >= from && t < to && r.cold_start)) continue;
    const start = Math.floor((t - Date.UTC(2000, 0, 1)) / width) * width + Date.UTC(2000, 0, 1);
    const b = byStart.get(start) || { cold: 0, proactive: 0, inits: [] };
    if ((r.start_kind ?? 'cold') === 'cold') {
      b.cold++;
      if (r.init_duration_ms !== undefined) b.inits.push(r.init_duration_ms);
    } else if (r.start_kind === 'proactive') b.proactive++;
    byStart.set(start, b);
  }
  const got = new Map(body.timeline.buckets.map((b) => [Date.parse(b.start), b]));
  for (const [start, b] of byStart) {
    const g = got.get(start);
    assert.ok(g, `${what}: timeline bucket ${iso(start)}`);
    assert.equal(g.cold_starts, b.cold, `${what}: ${iso(start)} cold_starts`);
    assert.equal(g.proactive_starts, b.proactive, `${what}: ${iso(start)} proactive_starts`);
    if (b.inits.length === 0) continue;
    near(g.init_p50_ms, percentileCont(b.inits, 0.5), relative, `${what}: ${iso(start)} p50`);
    near(g.init_p99_ms, percentileCont(b.inits, 0.99), relative, `${what}: ${iso(start)} p99`);
  }
  for (const g of body.timeline.buckets) if (!byStart.has(Date.parse(g.start))) assert.equal(g.cold_starts, 0, `${what}: ${g.start}`);
}

function check(body, exp, relative, what) {
  assert.equal(body.cold_starts, exp.cold, `${what}: cold_starts`);
  near(body.init_duration_ms.avg, mean(exp.inits), 0, `${what}: init avg (exact)`);
  for (const [k, p] of [
    ['p50', 0.5],
    ['p95', 0.95],
    ['p99', 0.99],
  ])
    near(body.init_duration_ms[k], percentileCont(exp.inits, p), relative, `${what}: init ${k}`);
  assert.deepEqual(Object.keys(body.module_breakdown).sort(), Object.keys(exp.modules).sort(), `${what}: packages`);
  for (const [name, vals] of Object.entries(exp.modules)) {
    const m = body.module_breakdown[name];
    assert.equal(m.samples, vals.length, `${what}: ${name} samples`);
    near(m.avg_load_time_ms, mean(vals), 0, `${what}: ${name} avg (exact)`);
    for (const [k, p] of [
      ['p50_ms', 0.5],
      ['p95_ms', 0.95],
      ['p99_ms', 0.99],
    ]) {
      // self times under 1 us count as 0 in a sketch (docs/api-reference.md)
      const want = percentileCont(vals, p);
      near(m[k], want, relative, `${what}: ${name} ${k}`);
    }
  }
}

test('the detail merges day sketches for whole days, hour sketches for the whole hours of partial days and reads partial hours exactly; replays and completions count once', async () => {
  const fn = 'sketch-' + uid('f').slice(-8);
  const today = Math.floor(Date.now() / DAY) * DAY;
  const records = [];
  // six whole days, 120 to 220 cold starts each, at odd times of day
  for (let d = 6; d >= 1; d--)
    for (let i = 0, n = 120 + 20 * d; i < n; i++) records.push(coldStart(fn, today - d * DAY + Math.floor(rand() * DAY)));
  // partial days at the window's ends: the evening before, and today's first hour
  const from = today - 6 * DAY - 5 * HOUR - 17 * 60000;
  for (let i = 0; i < 40; i++) records.push(coldStart(fn, from - 2 * HOUR + Math.floor(rand() * 7 * HOUR)));
  for (let i = 0; i < 25; i++) records.push(coldStart(fn, today + Math.floor(rand() * 50 * 60000)));
  const to = today + HOUR;
  // a third on arm64 (the per-function package rollups keep GB-seconds by architecture)
  records.forEach((r, i) => {
    if (i % 3 === 0) r.architecture = 'arm64';
  });
  // other kinds and warm invocations: counted apart, not in the percentiles
  records.push(coldStart(fn, today - 2 * DAY + HOUR, { start_kind: 'proactive' }));
  records.push({
    ...coldStart(fn, today - 3 * DAY + HOUR),
    cold_start: false,
    start_kind: 'warm',
    init_duration_ms: undefined,
    module_timings: undefined,
  });
  // some cold starts handed off early ("complete": false) and completed later
  const early = records.filter((r, i) => r.start_kind === 'cold' && i % 17 === 0);
  assert.ok(early.length > 10);
  await send(early.map(({ execution_duration_ms: _x, ...r }) => ({ ...r, complete: false })));
  await fold(); // incomplete rows are not in the sketches yet: the detail reads them as rows
  const id = (await ctx.rows(`SELECT id FROM functions WHERE function_name = '${fn}'`))[0].id;
  assert.equal(await coldCount(id, from, to), expected(early, from, to).cold, 'csa_cold_starts: incomplete rows');
  await checkPieces(id, early, from, to, 'incomplete rows');
  await send(records);
  await send(records.slice(0, 300)); // replays
  // queued, not folded yet (the server's own fold may have taken some: either way exact)
  assert.equal(await coldCount(id, from, to), expected(records, from, to).cold, 'csa_cold_starts: queued rows');
  await checkPieces(id, records, from, to, 'queued rows');
  await fold();
  assert.equal(
    await ctx.count(`SELECT coalesce(sum(cold_starts), 0) FROM function_day_sketches WHERE function_id = '${id}'`),
    records.filter((r) => r.start_kind === 'cold').length,
    'each real cold start is in the sketches once',
  );
  assert.equal(
    await ctx.count(`SELECT coalesce(sum(cold_starts), 0) FROM function_hour_sketches WHERE function_id = '${id}'`),
    records.filter((r) => r.start_kind === 'cold').length,
    'and in the hour sketches once',
  );
  assert.equal(
    await ctx.count(`SELECT coalesce(sum(cold_starts), 0) FROM function_init_hourly WHERE function_id = '${id}'`),
    records.filter((r) => r.start_kind === 'cold').length,
    'and in function_init_hourly once',
  );
  assert.equal(
    await ctx.count(`SELECT coalesce(sum(cold_starts), 0) FROM function_init_6h WHERE function_id = '${id}'`),
    records.filter((r) => r.start_kind === 'cold').length,
    'and in function_init_6h once',
  );

  const body = await detail(id, from, to);
  assert.equal(body.percentiles, 'sketch', 'whole days come from the day sketches');
  check(body, expected(records, from, to), 0.01, 'six whole days and two partial ones');
  assert.equal(body.proactive_starts, 1);
  checkTimeline(body, records, from, to, 0.01, 'timeline');
  for (const [a, z] of [
    [from, to],
    [today - 3 * DAY + 2 * HOUR + 7 * 60000, today - 3 * DAY + 20 * HOUR + 31 * 60000],
    [today, today + 50 * 60000],
    [today - 2 * DAY, today - DAY],
  ]) {
    assert.equal(await coldCount(id, a, z), expected(records, a, z).cold, `csa_cold_starts: folded, ${iso(a)} to ${iso(z)}`);
    await checkPieces(id, records, a, z, `folded, ${iso(a)} to ${iso(z)}`);
  }

  // replaying everything again, early copies included, changes nothing
  await send(records);
  await send(early.map(({ execution_duration_ms: _x, ...r }) => ({ ...r, complete: false })));
  await fold();
  check(await detail(id, from, to), expected(records, from, to), 0.01, 'after replays');

  // a window inside one day holds no whole day: its whole hours from the hour sketches
  const a = today - 3 * DAY + 2 * HOUR + 7 * 60000;
  const z = today - 3 * DAY + 20 * HOUR + 31 * 60000;
  const inside = await detail(id, a, z);
  assert.equal(inside.percentiles, 'sketch');
  check(inside, expected(records, a, z), 0.01, 'partial day only');
  checkTimeline(inside, records, a, z, 0.01, 'partial day only, timeline');
  // a window inside one hour holds no whole hour: exact, the timeline too
  const today1 = records.filter((r) => Date.parse(r.timestamp) >= today && Date.parse(r.timestamp) < today + 50 * 60000);
  assert.ok(today1.length >= 20);
  const exact = await detail(id, today, today + 50 * 60000);
  assert.equal(exact.percentiles, 'exact');
  check(exact, expected(records, today, today + 50 * 60000), 0, 'partial hour only');
  checkTimeline(exact, records, today, today + 50 * 60000, 0, 'partial hour only, timeline');

  // a record never completed is still a cold start of its day (read exactly), and counts once
  // when its full copy comes after the day was folded
  const late = coldStart(fn, today - 4 * DAY + 5 * HOUR);
  const { execution_duration_ms: _l, ...lateEarly } = late;
  await send([{ ...lateEarly, complete: false }]);
  await fold();
  const withLate = [...records, late];
  check(await detail(id, from, to), expected(withLate, from, to), 0.01, 'an incomplete record in a whole day');
  assert.equal(await coldCount(id, from, to), expected(withLate, from, to).cold, 'csa_cold_starts: an incomplete row in a folded hour');
  await checkPieces(id, withLate, from, to, 'an incomplete row in a folded hour');
  await send([late]);
  await fold();
  await checkPieces(id, withLate, from, to, 'completed after its hour was folded');
  check(await detail(id, from, to), expected(withLate, from, to), 0.01, 'completed after its day was folded');

  // the project's package rollups (migrations/007), folded with the sketches: every complete real
  // cold start once per package, in its hour and in its day, despite the replays and completions
  const all = expected(withLate, 0, Date.now() + DAY).modules;
  const project = (await ctx.rows(`SELECT project_id FROM functions WHERE id = '${id}'`))[0].project_id;
  for (const table of ['package_hourly', 'package_daily']) {
    const rows = await ctx.rows(`SELECT package, sum(cold_starts)::int AS n, sum(sum_ms) AS ms,
      sum((SELECT sum(c) FROM unnest(counts) c))::int AS buckets FROM ${table} WHERE project_id = '${project}' GROUP BY 1`);
    assert.deepEqual(rows.map((r) => r.package).sort(), Object.keys(all).sort(), `${table}: packages`);
    for (const r of rows) {
      assert.equal(r.n, all[r.package].length, `${table} ${r.package}: cold starts`);
      assert.equal(r.buckets, r.n, `${table} ${r.package}: the sketch holds each once`);
      near(
        Number(r.ms),
        all[r.package].reduce((a, b) => a + b, 0),
        1e-9,
        `${table} ${r.package}: sum`,
      );
    }
  }
  // what the dashboard's panel reads: whole days from package_daily, the hours at the ends from
  // package_hourly (`from` is 5 h 17 min past an hour: that hour counts whole)
  const hourFrom = Math.floor(from / HOUR) * HOUR;
  const win = expected(withLate, hourFrom, to).modules;
  const panel = await ctx.rows(`SELECT * FROM csa_slowest_packages('${project}', '${iso(from)}', '${iso(to - 1)}', 10)`);
  assert.deepEqual(
    panel.map((r) => r.package),
    Object.keys(win).sort((a, b) => mean(win[b]) - mean(win[a])),
    'ordered by average',
  );
  for (const r of panel) {
    const vals = win[r.package];
    assert.equal(Number(r.cold_starts), vals.length, `${r.package}: cold starts`);
    assert.equal(Number(r.functions), 1, `${r.package}: functions`);
    assert.ok(
      Math.abs(Number(r.avg_self) - mean(vals)) <= 0.05 + 1e-9,
      `${r.package}: avg ${r.avg_self} (rounded to 0.1), exact ${mean(vals)}`,
    );
    near(Number(r.p95_self), percentileCont(vals, 0.95), 0.01, `${r.package}: p95`);
  }

  // the per-function package rollups (migrations/011), folded with them: the same, per function,
  // with self time x memory (512 MB) in GB-seconds by architecture; the hourly rows from the UTC
  // day two days before today on, the daily rows all
  const hoursFrom = Math.floor(Date.now() / DAY) * DAY - 2 * DAY;
  const real = withLate.filter((r) => (r.start_kind ?? 'cold') === 'cold');
  const recent = expected(withLate, hoursFrom, Date.now() + DAY).modules;
  for (const [table, want, since] of [
    ['function_package_hourly', recent, hoursFrom],
    ['function_package_daily', all, 0],
  ]) {
    const rows = await ctx.rows(`SELECT package, sum(cold_starts)::int AS n, sum(sum_ms) AS ms, sum(gb_s_x86_64) AS x86,
      sum(gb_s_arm64) AS arm, sum((SELECT sum(c) FROM unnest(counts) c))::int AS buckets
      FROM ${table} WHERE function_id = '${id}' GROUP BY 1`);
    assert.deepEqual(rows.map((r) => r.package).sort(), Object.keys(want).sort(), `${table}: packages`);
    for (const r of rows) {
      assert.equal(r.n, want[r.package].length, `${table} ${r.package}: cold starts`);
      assert.equal(r.buckets, r.n, `${table} ${r.package}: the sketch holds each once`);
      near(
        Number(r.ms),
        want[r.package].reduce((a, b) => a + b, 0),
        1e-9,
        `${table} ${r.package}: sum`,
      );
      const since_ = real.filter((x) => Date.parse(x.timestamp) >= since);
      const gb = (arm) =>
        since_
          .filter((x) => (x.architecture === 'arm64') === arm && x.module_timings?.[r.package] !== undefined)
          .reduce((a, x) => a + (x.module_timings[r.package] / 1000) * 0.5, 0);
      near(Number(r.x86), gb(false), 1e-9, `${table} ${r.package}: GB-s x86_64`);
      near(Number(r.arm), gb(true), 1e-9, `${table} ${r.package}: GB-s arm64`);
      assert.ok(Number(r.arm) > 0 && Number(r.x86) > 0, `${table} ${r.package}: both architectures`);
    }
  }
  assert.equal(
    await ctx.count(`SELECT count(*) FROM function_package_hourly WHERE function_id = '${id}' AND hour < '${iso(hoursFrom)}'`),
    0,
    'no hourly rows before the recent days',
  );
  // what the "Module timing breakdown" and "Init cost by package" panels read: the same window,
  // whose start (6 days ago) is older than the hourly rows: its whole day counts
  const dayFrom = Math.floor(from / DAY) * DAY;
  const fnWin = expected(withLate, dayFrom, to).modules;
  assert.notEqual(fnWin['aws-sdk'].length, win['aws-sdk'].length, 'the whole day differs from the hours here');
  const breakdown = await ctx.rows(`SELECT * FROM csa_module_breakdown(ARRAY['${id}']::uuid[], '${iso(from)}', '${iso(to - 1)}', 2)`);
  const byAvg = Object.keys(fnWin).sort((a, b) => mean(fnWin[b]) - mean(fnWin[a]));
  assert.deepEqual(
    breakdown.map((r) => r.package),
    byAvg.slice(0, 2),
    'the top 2 by average',
  );
  for (const r of breakdown) {
    const vals = fnWin[r.package];
    assert.equal(r.function_id, id);
    assert.equal(Number(r.cold_starts), vals.length, `breakdown ${r.package}: cold starts`);
    assert.ok(Math.abs(Number(r.avg_self) - mean(vals)) <= 0.05 + 1e-9, `breakdown ${r.package}: avg ${r.avg_self}`);
    near(Number(r.p95_self), percentileCont(vals, 0.95), 0.01, `breakdown ${r.package}: p95`);
  }
  const winReal = withLate.filter((r) => {
    const t = Date.parse(r.timestamp);
    return t >= dayFrom && t < to && (r.start_kind ?? 'cold') === 'cold';
  });
  const costs = await ctx.rows(`SELECT * FROM csa_function_packages(ARRAY['${id}']::uuid[], '${iso(from)}', '${iso(to - 1)}')`);
  assert.deepEqual(costs.map((r) => r.package).sort(), Object.keys(fnWin).sort(), 'csa_function_packages: packages');
  for (const r of costs) {
    const mine = winReal.filter((x) => x.module_timings?.[r.package] !== undefined);
    assert.equal(Number(r.functions), 1);
    assert.equal(Number(r.cold_starts), mine.length, `${r.package}: cold starts`);
    for (const [col, arm] of [
      ['gb_s_x86_64', false],
      ['gb_s_arm64', true],
    ]) {
      const want = mine
        .filter((x) => (x.architecture === 'arm64') === arm)
        .reduce((a, x) => a + (x.module_timings[r.package] / 1000) * 0.5, 0);
      near(Number(r[col]), want, 1e-9, `${r.package}: ${col}`);
    }
  }
});

test('retention drops the months it drops from the day sketches, the package rollups and the execution-time rollups too', async () => {
  const fn = 'retention-' + uid('f').slice(-8);
  const now = new Date();
  const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const lastMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 15, 10); // its partition always exists
  const recent = Math.max(monthStart + 1000, Date.now() - 60000);
  const old = Array.from({ length: 5 }, (_, i) => coldStart(fn, lastMonth + i * HOUR));
  const kept = Array.from({ length: 3 }, (_, i) => coldStart(fn, recent - i));
  await send([...old, ...kept]);
  await fold();
  const id = (await ctx.rows(`SELECT id, project_id FROM functions WHERE function_name = '${fn}'`))[0];
  const count = (table, slot) =>
    ctx.count(
      `SELECT coalesce(sum(cold_starts), 0) FROM ${table} WHERE ${table.startsWith('function_') ? `function_id = '${id.id}'` : `project_id = '${id.project_id}'`} AND ${slot}`,
    );
  const before = iso(monthStart);
  assert.equal(
    await count('package_hourly', `hour >= '${iso(lastMonth)}' AND hour < '${iso(lastMonth + 5 * HOUR)}'`),
    5 * 3,
    'last month: 5 cold starts x 3 packages',
  );
  assert.equal(await count('function_package_daily', `day < '${before}'::timestamptz::date`), 5 * 3, 'last month, per function');
  const keptHourly = await count('package_hourly', `hour >= '${before}'`);
  const keptDaily = await count('package_daily', `day >= '${before}'::timestamptz::date`);
  const keptFnHourly = await count('function_package_hourly', `hour >= '${before}'`);
  const keptFnDaily = await count('function_package_daily', `day >= '${before}'::timestamptz::date`);
  assert.equal(keptFnHourly, 3 * 3, 'this month, per function');
  assert.ok(keptHourly >= 3 * 3, 'this month');
  // the execution-time rollups (migration 012): the function's rows and the project's total rows
  // (which other tests' records of last month may share)
  const execRows = (table, slot, fid = id.id) =>
    ctx.count(`SELECT coalesce(sum(invocations), 0) FROM ${table} WHERE project_id = '${id.project_id}'
               AND function_id = '${fid}' AND ${slot}`);
  const NIL = '00000000-0000-0000-0000-000000000000';
  assert.equal(await execRows('function_exec_hourly', `hour < '${before}'`), 5, 'last month: 5 invocations');
  assert.equal(await execRows('function_exec_daily', `day < '${before}'::timestamptz::date`), 5);
  assert.ok((await execRows('function_exec_hourly', `hour < '${before}'`, NIL)) >= 5, 'and in the project total');
  const keptExec = await execRows('function_exec_hourly', `hour >= '${before}'`);
  assert.equal(keptExec, 3, 'this month');
  // what `coldstartd maintain` runs with RETENTION_MONTHS: drop whole months before the cutoff
  await ctx.rows(`SELECT csa_drop_partitions_before('${before}')`);
  assert.equal(await execRows('function_exec_hourly', `hour < '${before}'`), 0, 'function_exec_hourly: the dropped months are gone');
  assert.equal(
    await execRows('function_exec_daily', `day < '${before}'::timestamptz::date`),
    0,
    'function_exec_daily: the dropped months are gone',
  );
  assert.equal(await execRows('function_exec_hourly', `hour >= '${before}'`), keptExec, 'function_exec_hourly: this month is kept');
  assert.equal(await execRows('function_exec_hourly', `hour < '${before}'`, NIL), 0, 'the project total: the dropped months are gone');
  assert.equal(await execRows('function_exec_daily', `day < '${before}'::timestamptz::date`, NIL), 0);
  assert.equal(await count('package_hourly', `hour < '${before}'`), 0, 'package_hourly: the dropped months are gone');
  assert.equal(await count('package_daily', `day < '${before}'::timestamptz::date`), 0, 'package_daily: the dropped months are gone');
  assert.equal(
    await ctx.count(`SELECT count(*) FROM function_day_sketches WHERE function_id = '${id.id}' AND day < '${before}'::timestamptz::date`),
    0,
  );
  assert.equal(await ctx.count(`SELECT count(*) FROM function_init_hourly WHERE function_id = '${id.id}' AND hour < '${before}'`), 0);
  // every table of per-hour or per-day figures is one retention empties (migrations/010)
  const unlisted = await ctx.rows(`SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()
    AND column_name IN ('hour', 'day') AND table_name NOT IN (SELECT relname FROM csa_retained_tables) ORDER BY 1`);
  assert.deepEqual(unlisted, [], 'tables with an hour or day column missing from csa_retained_tables');
  assert.equal(await ctx.count(`SELECT coalesce(sum(cold_starts), 0) FROM function_init_hourly WHERE function_id = '${id.id}'`), 3);
  assert.equal(await ctx.count(`SELECT count(*) FROM function_init_6h WHERE function_id = '${id.id}' AND hour < '${before}'`), 0);
  assert.equal(await ctx.count(`SELECT coalesce(sum(cold_starts), 0) FROM function_init_6h WHERE function_id = '${id.id}'`), 3);
  assert.equal(await count('package_hourly', `hour >= '${before}'`), keptHourly, 'package_hourly: this month is kept');
  assert.equal(await count('package_daily', `day >= '${before}'::timestamptz::date`), keptDaily, 'package_daily: this month is kept');
  assert.equal(await count('function_package_hourly', `hour < '${before}'`), 0, 'function_package_hourly: the dropped months are gone');
  assert.equal(
    await count('function_package_daily', `day < '${before}'::timestamptz::date`),
    0,
    'function_package_daily: the dropped months are gone',
  );
  assert.equal(await count('function_package_hourly', `hour >= '${before}'`), keptFnHourly, 'function_package_hourly: kept');
  assert.equal(await count('function_package_daily', `day >= '${before}'::timestamptz::date`), keptFnDaily, 'function_package_daily: kept');
});
