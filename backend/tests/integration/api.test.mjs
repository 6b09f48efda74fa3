// The read API (issue 4): function list and detail with percentiles checked against values
// computed here from what was sent, pagination, tenant isolation, API key management, project
// onboarding, rate limits and CORS. All data goes in through the real ingest API; psql is used only
// for independent checks of what the server stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  useServer,
  startServer,
  createProject,
  cliKey,
  http,
  uid,
  lit,
  sleep,
  assertErrorBody,
  assertValidationError,
  KEY_RE,
  REPO,
} from './harness.mjs';

const ADMIN_SECRET = 'it-admin-' + randomBytes(24).toString('hex'); // 57 characters
const ALLOWED_ORIGIN = 'http://localhost:3000';
const ctx = useServer({
  env: {
    KEY_CACHE_TTL: 1,
    APP_SECRET_KEY: ADMIN_SECRET,
    CORS_ORIGINS: JSON.stringify([ALLOWED_ORIGIN]),
    RATE_LIMIT_QUERY: 1000000,
    RATE_LIMIT_INGEST: 1000000,
  },
});

const RULES_FILE = path.join(REPO, 'rules/recommendations.json');
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const MIN = 60000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------------------------------------
// Independent statistics: what PostgreSQL's avg() and percentile_cont() give.

/** percentile_cont(p): linear interpolation between the two closest ranks (0-based p*(n-1)). */
function percentileCont(values, p) {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const pos = p * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}
const mean = (values) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
const sum = (values) => values.reduce((a, b) => a + b, 0);

/** The server rounds to 0.01 ms: allow that (and float noise) on top of the exact value. */
// relative: the error a figure may have besides the rounding to 0.01 ms (percentiles from day
// sketches: 1 %, docs/api-reference.md)
function assertMs(got, expected, what, relative = 0) {
  if (expected === null) {
    assert.equal(got, null, `${what}: expected null, got ${got}`);
    return;
  }
  assert.equal(typeof got, 'number', `${what}: expected a number near ${expected}, got ${JSON.stringify(got)}`);
  const bound = 0.01 + relative * Math.abs(expected) + 1e-9;
  assert.ok(Math.abs(got - expected) <= bound, `${what}: got ${got}, expected ${expected} (within ${bound})`);
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const round2 = (x) => Math.round(x * 100) / 100;

// ---------------------------------------------------------------------------------------------
// Seeding through the ingest API.

const NOW = Math.floor(Date.now() / 1000) * 1000;
const at = (msAgo) => new Date(NOW - msAgo).toISOString();

/** Sends records through /ingest/batch (in chunks of 500) with `key`; asserts all were stored. */
async function ingestAll(records, key = ctx.key) {
  for (let i = 0; i < records.length; i += 500) {
    const chunk = records.slice(i, i + 500);
    const res = await ctx.batch({ invocations: chunk }, { key });
    assert.equal(res.status, 200, `batch ingest: ${res.status} ${res.text.slice(0, 500)}`);
    assert.equal(res.json.processed, chunk.length, `batch ingest: ${res.text.slice(0, 500)}`);
    assert.equal(res.json.failed, 0, `batch ingest: ${res.text.slice(0, 500)}`);
  }
}

function rec(fn, msAgo, fields) {
  return {
    function_name: fn,
    invocation_id: uid(fn),
    timestamp: at(msAgo),
    execution_duration_ms: 40,
    runtime_version: 'nodejs20.x',
    region: 'eu-central-1',
    memory_allocated_mb: 1024,
    architecture: 'arm64',
    ...fields,
  };
}

// stats-fn: the list's 24 h statistics.
const STATS_COLD_INITS = [812, 1500, 903, 2210, 1333, 999, 1750, 640, 1205, 3100, 1420, 1111];
function statsRecords() {
  const out = [];
  STATS_COLD_INITS.forEach((init, i) => {
    const fields = { cold_start: true, init_duration_ms: init };
    if (i % 2 === 0) fields.start_kind = 'cold'; // absent start_kind also means a real cold start
    out.push(rec('stats-fn', (10 + i * 50) * MIN, fields));
  });
  out.push(rec('stats-fn', 30 * MIN, { cold_start: true, start_kind: 'cold' })); // no init duration
  for (let i = 0; i < 20; i++) out.push(rec('stats-fn', (5 + i * 60) * MIN, { cold_start: false, start_kind: i % 2 ? 'warm' : undefined }));
  for (let i = 0; i < 3; i++)
    out.push(rec('stats-fn', (20 + i * 7) * MIN, { cold_start: true, start_kind: 'proactive', init_duration_ms: 9000 }));
  for (let i = 0; i < 2; i++)
    out.push(rec('stats-fn', (25 + i * 9) * MIN, { cold_start: true, start_kind: 'provisioned', init_duration_ms: 9500 }));
  // older than 24 h: outside the list's statistics
  for (let i = 0; i < 4; i++) out.push(rec('stats-fn', 26 * HOUR + i * MIN, { cold_start: true, init_duration_ms: 20000 }));
  for (let i = 0; i < 5; i++) out.push(rec('stats-fn', 27 * HOUR + i * MIN, { cold_start: false }));
  return out.map((r) => JSON.parse(JSON.stringify(r))); // drop undefined fields
}
const STATS_EXPECTED = {
  total: STATS_COLD_INITS.length + 1 + 20 + 3 + 2,
  cold: STATS_COLD_INITS.length + 1,
  proactive: 3,
  provisioned: 2,
};

// detail-fn: module breakdowns over a window.
const DETAIL_MODULES = ['aws-sdk', '@prisma/client', 'lodash', 'moment', './src/handler'];
const detailRows = []; // what was sent, for the expected values
const WINDOW_FROM = NOW - 4 * DAY;
const WINDOW_TO = NOW - 2 * DAY;
function detailRecords() {
  const rnd = prng(20260102);
  const out = [];
  const push = (msAgo, fields) => {
    const r = rec('detail-fn', msAgo, fields);
    out.push(r);
    detailRows.push({ ...r, t: Date.parse(r.timestamp) });
  };
  const timings = (scale = 1) => {
    const m = {};
    for (const [i, name] of DETAIL_MODULES.entries()) {
      if (i > 0 && rnd() < 0.25) continue; // not every cold start loads every module (aws-sdk always)
      m[name] = round2((20 + rnd() * 400 * (1 + i)) * scale);
    }
    return m;
  };
  // 40 real cold starts spread over the last 6.5 days
  for (let i = 0; i < 40; i++) {
    const msAgo = Math.floor((30 * MIN + rnd() * (6.5 * DAY - 30 * MIN)) / 1000) * 1000;
    const fields = { cold_start: true, init_duration_ms: 400 + Math.floor(rnd() * 2600), module_timings: timings() };
    if (i % 3 === 0) fields.start_kind = 'cold';
    push(msAgo, fields);
  }
  // real cold starts without module timings, one of them inside the explicit window
  push(3 * DAY, { cold_start: true, init_duration_ms: 777 });
  push(5 * HOUR, { cold_start: true, init_duration_ms: 1888 });
  // exactly on the explicit window's edges: from is inclusive, to exclusive
  push(NOW - WINDOW_FROM, { cold_start: true, init_duration_ms: 1234, module_timings: { 'aws-sdk': 111.11, 'edge-from': 50 } });
  push(NOW - WINDOW_TO, { cold_start: true, init_duration_ms: 4321, module_timings: { 'aws-sdk': 999.99, 'edge-to': 60 } });
  // proactive and provisioned starts and warm invocations: never in the breakdown
  for (let i = 0; i < 4; i++)
    push(2 * HOUR + i * DAY, {
      cold_start: true,
      start_kind: 'proactive',
      init_duration_ms: 30000,
      module_timings: { 'aws-sdk': 99999, 'proactive-only': 500 },
    });
  push(3 * HOUR, { cold_start: true, start_kind: 'provisioned', init_duration_ms: 31000, module_timings: { 'aws-sdk': 88888 } });
  for (let i = 0; i < 12; i++)
    push(7 * MIN + i * 11 * HOUR, { cold_start: false, module_timings: i < 2 ? { 'aws-sdk': 77777, 'warm-only': 5 } : undefined });
  // outside the default 7-day window
  push(8 * DAY, { cold_start: true, init_duration_ms: 50000, module_timings: { 'aws-sdk': 50000, 'ancient-module': 400 } });
  // module trees: the newest one in the window wins
  const tree = (v) => ({
    name: 'detail-fn',
    self: 12,
    inclusive: 900,
    children: [
      { name: 'aws-sdk', version: v, self: 400, inclusive: 600 },
      { name: 'lodash', version: '4.17.21', self: 80, inclusive: 80 },
    ],
  });
  push(40 * MIN, {
    cold_start: true,
    init_duration_ms: 1500,
    module_timings: { 'aws-sdk': 420.5, lodash: 75 },
    module_tree: tree('2.1693.0'),
  });
  push(3 * DAY + HOUR, { cold_start: true, init_duration_ms: 1600, module_timings: { 'aws-sdk': 430.25 }, module_tree: tree('2.1000.0') });
  return out.map((r) => JSON.parse(JSON.stringify(r)));
}

/** The detail endpoint's numbers, computed from detailRows for [from, to). */
function expectedDetail(from, to) {
  const rows = detailRows.filter((r) => r.t >= from && r.t < to);
  const real = rows.filter((r) => r.cold_start && (r.start_kind === undefined || r.start_kind === 'cold'));
  const inits = real.filter((r) => r.init_duration_ms !== undefined).map((r) => r.init_duration_ms);
  const perModule = new Map();
  for (const r of real) {
    for (const [name, v] of Object.entries(r.module_timings || {})) {
      if (!perModule.has(name)) perModule.set(name, []);
      perModule.get(name).push(v);
    }
  }
  const modules = {};
  for (const [name, vals] of perModule) {
    modules[name] = {
      avg: mean(vals),
      p50: percentileCont(vals, 0.5),
      p95: percentileCont(vals, 0.95),
      p99: percentileCont(vals, 0.99),
      samples: vals.length,
      seen_in: Math.round((vals.length / real.length) * 1000) / 1000,
    };
  }
  const moduleSums = real
    .filter((r) => r.init_duration_ms !== undefined && r.module_timings)
    .map((r) => sum(Object.values(r.module_timings)));
  const avgInit = mean(inits);
  const share = avgInit && moduleSums.length ? Math.round(Math.min(mean(moduleSums) / avgInit, 1) * 1000) / 1000 : null;
  const withTree = rows.filter((r) => r.cold_start && r.module_tree).sort((a, b) => b.t - a.t);
  return {
    invocations: rows.length,
    cold: real.length,
    proactive: rows.filter((r) => r.cold_start && r.start_kind === 'proactive').length,
    provisioned: rows.filter((r) => r.cold_start && r.start_kind === 'provisioned').length,
    init: { avg: avgInit, p50: percentileCont(inits, 0.5), p95: percentileCont(inits, 0.95), p99: percentileCont(inits, 0.99) },
    modules,
    share,
    tree: withTree.length ? withTree[0].module_tree : null,
  };
}

function checkDetail(body, exp, what) {
  // whole UTC days folded into day sketches answer percentiles within 1 %; the rest is exact
  assert.ok(['exact', 'sketch'].includes(body.percentiles), `${what}: percentiles ${body.percentiles}`);
  const rel = body.percentiles === 'sketch' ? 0.01 : 0;
  assert.equal(body.invocations, exp.invocations, `${what}: invocations`);
  assert.equal(body.cold_starts, exp.cold, `${what}: cold_starts`);
  assert.equal(body.proactive_starts, exp.proactive, `${what}: proactive_starts`);
  assert.equal(body.provisioned_starts, exp.provisioned, `${what}: provisioned_starts`);
  for (const k of ['avg', 'p50', 'p95', 'p99'])
    assertMs(body.init_duration_ms[k], exp.init[k], `${what}: init_duration_ms.${k}`, k === 'avg' ? 0 : rel);
  assert.deepEqual(Object.keys(body.module_breakdown).sort(), Object.keys(exp.modules).sort(), `${what}: modules in the breakdown`);
  for (const [name, e] of Object.entries(exp.modules)) {
    const m = body.module_breakdown[name];
    assertMs(m.avg_load_time_ms, e.avg, `${what}: ${name} avg`);
    assertMs(m.p50_ms, e.p50, `${what}: ${name} p50`, rel);
    assertMs(m.p95_ms, e.p95, `${what}: ${name} p95`, rel);
    assertMs(m.p99_ms, e.p99, `${what}: ${name} p99`, rel);
    assert.equal(m.samples, e.samples, `${what}: ${name} samples`);
    assert.ok(Math.abs(m.seen_in - e.seen_in) <= 0.001 + 1e-9, `${what}: ${name} seen_in ${m.seen_in} vs ${e.seen_in}`);
  }
  // sorted by average self time, largest first
  const order = Object.keys(body.module_breakdown);
  const avgs = order.map((n) => body.module_breakdown[n].avg_load_time_ms);
  for (let i = 1; i < avgs.length; i++) assert.ok(avgs[i - 1] >= avgs[i], `${what}: breakdown not sorted by avg: ${order.join(', ')}`);
  if (exp.share === null) assert.equal(body.module_load_share, null, `${what}: module_load_share`);
  else
    assert.ok(
      Math.abs(body.module_load_share - exp.share) <= 0.001 + 1e-9,
      `${what}: module_load_share ${body.module_load_share} vs ${exp.share}`,
    );
  assert.deepEqual(body.module_tree, exp.tree, `${what}: module_tree`);
}

// heavy-fn: modules the rule table knows.
function heavyRecords() {
  const out = [];
  for (let i = 0; i < 6; i++) {
    out.push(
      rec('heavy-fn', (15 + i * 30) * MIN, {
        cold_start: true,
        init_duration_ms: 1500 + i,
        module_timings: { moment: 300, 'aws-sdk': 400 + i * 10, 'tiny-module': 2, './index.js': 20 },
      }),
    );
  }
  return out;
}

const PAGE_FNS = Array.from({ length: 25 }, (_, i) => `page-fn-${String(i).padStart(2, '0')}`);

const ids = {}; // function_name -> id in project A
// Seeded once, by the first test that runs (node 20 does not order an async top-level before()
// after the harness's own before() reliably).
let seeding = null;
const seed = () => (seeding ??= seedAll());
async function seedAll() {
  await ingestAll([
    ...statsRecords(),
    ...detailRecords(),
    ...heavyRecords(),
    ...PAGE_FNS.map((fn, i) => rec(fn, (i + 1) * MIN, { cold_start: i % 2 === 0, init_duration_ms: 100 + i })),
    // only records older than 24 h
    rec('stale-fn', 30 * HOUR, { cold_start: true, init_duration_ms: 700 }),
    rec('stale-fn', 31 * HOUR, { cold_start: false }),
  ]);
  const rows = await ctx.rows('SELECT function_name, id FROM functions');
  for (const r of rows) ids[r.function_name] = r.id;
}

const auth = (key) => ({ headers: { 'X-API-Key': key } });
const getA = (p, opts = {}) => ctx.get(p, { ...opts, headers: { 'X-API-Key': ctx.key, ...(opts.headers || {}) } });

async function listAll(query, key = ctx.key) {
  const pages = [];
  let cursor = null;
  for (let guard = 0; guard < 50; guard++) {
    const q = new URLSearchParams(query);
    if (cursor) q.set('cursor', cursor);
    const res = await ctx.get(`/api/v1/functions?${q}`, auth(key));
    assert.equal(res.status, 200, res.text);
    pages.push(res.json);
    cursor = res.json.next_cursor;
    if (cursor === null) return pages;
    assert.equal(typeof cursor, 'string', `next_cursor: ${JSON.stringify(cursor)}`);
  }
  throw new Error('pagination did not end');
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/functions

test('GET /functions: fields of each function and of its cold_start_stats', async () => {
  await seed();
  const res = await getA('/api/v1/functions?name_prefix=stats-fn');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json).sort(), ['functions', 'next_cursor', 'prices_per_gb_second']);
  assert.deepEqual(res.json.prices_per_gb_second, { x86_64: 0.0000166667, arm64: 0.0000133334 }, "AWS's prices by default");
  assert.equal(res.json.functions.length, 1, res.text);
  const f = res.json.functions[0];
  assert.deepEqual(
    Object.keys(f).sort(),
    ['cold_start_stats', 'first_seen_at', 'function_name', 'id', 'last_seen_at', 'memory_allocated_mb', 'region', 'runtime'].sort(),
  );
  assert.equal(f.id, ids['stats-fn']);
  assert.match(f.id, UUID_RE);
  assert.equal(f.function_name, 'stats-fn');
  assert.equal(f.runtime, 'nodejs20.x');
  assert.equal(f.region, 'eu-central-1');
  assert.equal(f.memory_allocated_mb, 1024);
  assert.match(f.first_seen_at, TS_RE);
  assert.match(f.last_seen_at, TS_RE);
  assert.ok(
    Date.parse(f.first_seen_at) <= Date.parse(f.last_seen_at),
    `first_seen_at ${f.first_seen_at} after last_seen_at ${f.last_seen_at}`,
  );
  assert.deepEqual(Object.keys(f.cold_start_stats).sort(), [
    'avg_init_duration_ms',
    'cold_start_rate',
    'cold_starts_24h',
    'init_cost_usd',
    'init_cost_usd_per_month',
    'p50_init_duration_ms',
    'p95_init_duration_ms',
    'proactive_init_cost_usd',
    'proactive_starts_24h',
    'provisioned_starts_24h',
    'total_invocations_24h',
  ]);
  assert.equal(res.json.next_cursor, null);
});

test('GET /functions: cold_start_stats over 24 h count real cold starts only, p95 as percentile_cont', async () => {
  await seed();
  const res = await getA('/api/v1/functions?name_prefix=stats-fn');
  assert.equal(res.status, 200, res.text);
  const s = res.json.functions[0].cold_start_stats;
  assert.equal(
    s.total_invocations_24h,
    STATS_EXPECTED.total,
    'total_invocations_24h (warm, cold, proactive, provisioned; nothing older than 24 h)',
  );
  assert.equal(s.cold_starts_24h, STATS_EXPECTED.cold, 'cold_starts_24h (start_kind cold or absent)');
  assert.equal(s.proactive_starts_24h, STATS_EXPECTED.proactive);
  assert.equal(s.provisioned_starts_24h, STATS_EXPECTED.provisioned);
  assertMs(s.avg_init_duration_ms, mean(STATS_COLD_INITS), 'avg_init_duration_ms');
  assertMs(s.p95_init_duration_ms, percentileCont(STATS_COLD_INITS, 0.95), 'p95_init_duration_ms');
  assertMs(s.p50_init_duration_ms, percentileCont(STATS_COLD_INITS, 0.5), 'p50_init_duration_ms');
  const rate = STATS_EXPECTED.cold / STATS_EXPECTED.total;
  assert.ok(Math.abs(s.cold_start_rate - rate) <= 0.0001, `cold_start_rate ${s.cold_start_rate} vs ${rate}`);
  // the p95 must be the interpolated value, not the nearest rank
  const sorted = [...STATS_COLD_INITS].sort((a, b) => a - b);
  assert.ok(!sorted.includes(s.p95_init_duration_ms), `p95 ${s.p95_init_duration_ms} is a sample, not percentile_cont`);
  // and PostgreSQL agrees on the same rows
  const pg = await ctx.rows(
    `SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY init_duration_ms) AS p95 FROM invocations
     WHERE function_id = ${lit(ids['stats-fn'])} AND cold_start AND coalesce(start_kind, 'cold') = 'cold'
       AND timestamp >= now() - interval '24 hours'`,
  );
  assertMs(s.p95_init_duration_ms, pg[0].p95, 'p95 vs psql');
});

test('GET /functions: a function with records older than 24 h only has empty statistics', async () => {
  await seed();
  const res = await getA('/api/v1/functions?name_prefix=stale-fn');
  assert.equal(res.status, 200, res.text);
  const s = res.json.functions[0].cold_start_stats;
  assert.equal(s.total_invocations_24h, 0);
  assert.equal(s.cold_starts_24h, 0);
  assert.equal(s.cold_start_rate, 0);
  assert.equal(s.avg_init_duration_ms, null);
  assert.equal(s.p95_init_duration_ms, null);
  assert.equal(s.p50_init_duration_ms, null);
});

test('GET /functions: limit/next_cursor walk 3 pages with no duplicates or gaps, sorted by name', async () => {
  await seed();
  const pages = await listAll({ limit: '10', name_prefix: 'page-fn-' });
  assert.equal(pages.length, 3, `pages: ${pages.map((p) => p.functions.length)}`);
  assert.deepEqual(
    pages.map((p) => p.functions.length),
    [10, 10, 5],
  );
  assert.ok(pages[0].next_cursor && pages[1].next_cursor, 'next_cursor on the first two pages');
  assert.equal(pages[2].next_cursor, null, 'next_cursor null on the last page');
  const names = pages.flatMap((p) => p.functions.map((f) => f.function_name));
  assert.deepEqual(names, PAGE_FNS, 'all 25 functions once each, in name order');
});

test('GET /functions: paging the whole project (limit 7) matches the stored functions in order', async () => {
  await seed();
  const pages = await listAll({ limit: '7' });
  const names = pages.flatMap((p) => p.functions.map((f) => f.function_name));
  const stored = (
    await ctx.rows(
      `SELECT function_name FROM functions WHERE project_id = (SELECT project_id FROM api_keys WHERE key_prefix = ${lit(ctx.key.slice(0, 8))}) ORDER BY function_name`,
    )
  ).map((r) => r.function_name);
  assert.ok(pages.length >= 3, `only ${pages.length} pages`);
  assert.equal(new Set(names).size, names.length, `duplicates across pages: ${names}`);
  assert.deepEqual(names, stored);
  for (const p of pages.slice(0, -1)) assert.equal(p.functions.length, 7);
  const all = await getA('/api/v1/functions?limit=200');
  assert.deepEqual(
    all.json.functions.map((f) => f.function_name),
    stored,
    'one page of 200',
  );
  assert.equal(all.json.next_cursor, null);
  const def = await getA('/api/v1/functions');
  assert.equal(def.json.functions.length, Math.min(50, stored.length), 'default limit 50');
});

test('GET /functions: name_prefix filters by a literal prefix', async () => {
  await seed();
  let res = await getA('/api/v1/functions?name_prefix=page-fn-1');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(
    res.json.functions.map((f) => f.function_name),
    PAGE_FNS.filter((n) => n.startsWith('page-fn-1')),
  );
  res = await getA('/api/v1/functions?name_prefix=page_fn');
  assert.deepEqual(res.json.functions, [], '_ is not a wildcard');
  res = await getA('/api/v1/functions?name_prefix=page%25');
  assert.deepEqual(res.json.functions, [], '% is not a wildcard');
  res = await getA('/api/v1/functions?name_prefix=no-such-function');
  assert.deepEqual(res.json, { functions: [], next_cursor: null, prices_per_gb_second: { x86_64: 0.0000166667, arm64: 0.0000133334 } });
  // a prefix and the cursor together
  const pages = await listAll({ limit: '4', name_prefix: 'page-fn-1' });
  assert.deepEqual(
    pages.flatMap((p) => p.functions.map((f) => f.function_name)),
    PAGE_FNS.filter((n) => n.startsWith('page-fn-1')),
  );
});

// Names may be 255 characters, i.e. up to 1,020 bytes of UTF-8: the cursor and the prefix filter
// must work on the longest names too.
const LONG_FNS = ['a', 'b', 'c'].map((c) => 'long-' + '€'.repeat(249) + c); // 255 characters, 765 bytes

test('GET /functions: pagination over 255-character multi-byte names (cursor of a 765-byte name)', async () => {
  await seed();
  await ingestAll(LONG_FNS.map((fn) => rec(fn, MIN, { cold_start: false, invocation_id: uid('long') })));
  const pages = [];
  let cursor = null;
  for (let i = 0; i < 6; i++) {
    const q = new URLSearchParams({ limit: '1', name_prefix: 'long-' });
    if (cursor) q.set('cursor', cursor);
    const res = await getA(`/api/v1/functions?${q}`);
    assert.equal(
      res.status,
      200,
      `page ${i + 1} (cursor the server gave for ${JSON.stringify(pages.at(-1)?.functions[0]?.function_name?.slice(0, 12))}...): ${res.text.slice(0, 300)}`,
    );
    pages.push(res.json);
    cursor = res.json.next_cursor;
    if (cursor === null) break;
  }
  assert.deepEqual(
    pages.flatMap((p) => p.functions.map((f) => f.function_name)),
    LONG_FNS,
    'each long name once, in order',
  );
});

test('GET /functions: pagination never repeats a long name (a cursor cut at a character boundary)', async () => {
  await seed();
  // 1 + 170 x 3 bytes = 511 bytes, then one more character: a cursor cut after 511 bytes would be
  // a valid prefix of the name, and `name > cursor` would return the same function again
  const names = ['m', 'n'].map((c) => 'l' + '€'.repeat(170) + c);
  await ingestAll(names.map((fn) => rec(fn, MIN, { cold_start: false, invocation_id: uid('cut') })));
  const got = [];
  let cursor = null;
  for (let i = 0; i < 4; i++) {
    const q = new URLSearchParams({ limit: '1', name_prefix: 'l€' });
    if (cursor) q.set('cursor', cursor);
    const res = await getA(`/api/v1/functions?${q}`);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    got.push(...res.json.functions.map((f) => f.function_name));
    cursor = res.json.next_cursor;
    if (cursor === null) break;
  }
  assert.deepEqual(
    got.map((n) => n.slice(-1)),
    ['m', 'n'],
    'each function once (the walk must end after 2 pages)',
  );
});

test('GET /functions: a name_prefix longer than 255 bytes (but within 255 characters) still filters', async () => {
  await seed();
  await ingestAll(LONG_FNS.map((fn) => rec(fn, MIN, { cold_start: false, invocation_id: uid('long') })));
  const prefix = 'long-' + '€'.repeat(100); // 105 characters, 305 bytes
  const res = await getA(`/api/v1/functions?limit=200&name_prefix=${encodeURIComponent(prefix)}`);
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.deepEqual(
    res.json.functions.map((f) => f.function_name),
    LONG_FNS,
    'only the functions with that prefix',
  );
});

for (const bad of ['0', '201', '-1', 'abc', '1.5', '', '10x', '99999999999999999999']) {
  test(`GET /functions?limit=${bad} is 400 with loc ["query","limit"]`, async () => {
    await seed();
    const res = await getA(`/api/v1/functions?limit=${encodeURIComponent(bad)}`);
    assertValidationError(res, ['query', 'limit'], undefined, `limit=${bad}`);
  });
}

for (const bad of ['zz', 'abc', '00', 'ZZZZ', '7061796d656e74g0']) {
  test(`GET /functions?cursor=${bad} is 400 with loc ["query","cursor"]`, async () => {
    await seed();
    const res = await getA(`/api/v1/functions?cursor=${encodeURIComponent(bad)}`);
    assertValidationError(res, ['query', 'cursor'], undefined, `cursor=${bad}`);
  });
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/functions/{id}

test('GET /functions/{id}: default window is the last 7 days; breakdown and init percentiles match percentile_cont', async () => {
  await seed();
  const t0 = Date.now();
  const res = await getA(`/api/v1/functions/${ids['detail-fn']}`);
  const t1 = Date.now();
  assert.equal(res.status, 200, res.text);
  const b = res.json;
  for (const k of [
    'id',
    'function_name',
    'runtime',
    'region',
    'memory_allocated_mb',
    'first_seen_at',
    'last_seen_at',
    'window',
    'invocations',
    'cold_starts',
    'proactive_starts',
    'provisioned_starts',
    'init_duration_ms',
    'module_load_share',
    'percentiles',
    'module_breakdown',
    'module_tree',
    'recommendations',
    'timeline',
  ]) {
    assert.ok(k in b, `no ${k} in ${Object.keys(b)}`);
  }
  assert.equal(b.id, ids['detail-fn']);
  assert.equal(b.function_name, 'detail-fn');
  assert.match(b.window.from, TS_RE);
  assert.match(b.window.to, TS_RE);
  const to = Date.parse(b.window.to);
  const from = Date.parse(b.window.from);
  assert.ok(to >= t0 - 2000 && to <= t1 + 2000, `window.to ${b.window.to} is not now`);
  assert.equal(to - from, 7 * DAY, 'window is 7 days');
  checkDetail(b, expectedDetail(from, to), 'default window');
  assert.ok(!('ancient-module' in b.module_breakdown), 'a record 8 days old is outside the default window');
  assert.ok(!('proactive-only' in b.module_breakdown), 'proactive starts are not in the breakdown');
  assert.ok(!('warm-only' in b.module_breakdown), 'warm invocations are not in the breakdown');
  assert.equal(b.module_breakdown['aws-sdk'].version, '2.1693.0', 'version from the newest module tree');
  assert.equal(b.module_breakdown.lodash.version, '4.17.21');
  assert.equal(b.module_breakdown.moment.version, null);
  assert.ok(Array.isArray(b.recommendations), 'recommendations is an array');
});

test("GET /functions/{id}: timeline: UTC hours over a day, adding up to the window, with each hour's exact init percentiles", async () => {
  await seed();
  const from = new Date(NOW - DAY).toISOString();
  const to = new Date(NOW).toISOString();
  const res = await getA(`/api/v1/functions/${ids['stats-fn']}?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  assert.equal(res.status, 200, res.text);
  const { timeline, cold_starts: cold, proactive_starts: proactive, provisioned_starts: provisioned } = res.json;
  assert.deepEqual(Object.keys(timeline).sort(), ['bucket_seconds', 'buckets']);
  assert.equal(timeline.bucket_seconds, 3600);
  const starts = timeline.buckets.map((b) => Date.parse(b.start));
  for (const [i, t] of starts.entries()) {
    assert.equal(t % HOUR, 0, `bucket ${timeline.buckets[i].start} is not a UTC hour`);
    assert.ok(t >= Math.floor((NOW - DAY) / HOUR) * HOUR && t < NOW, `bucket ${timeline.buckets[i].start} outside the window`);
    if (i) assert.ok(t > starts[i - 1], 'buckets in time order');
  }
  const total = (k) => sum(timeline.buckets.map((b) => b[k]));
  assert.equal(total('cold_starts'), cold);
  assert.equal(total('proactive_starts'), proactive);
  assert.equal(total('provisioned_starts'), provisioned);
  assert.equal(total('invocations'), STATS_EXPECTED.total, 'invocations per hour from the rollups');
  const byHour = new Map();
  STATS_COLD_INITS.forEach((init, i) => {
    const hour = Math.floor((NOW - (10 + i * 50) * MIN) / HOUR) * HOUR;
    byHour.set(hour, [...(byHour.get(hour) || []), init]);
  });
  for (const b of timeline.buckets) {
    const inits = byHour.get(Date.parse(b.start));
    if (!inits) {
      assert.equal(b.init_p50_ms, null, `${b.start}: no init durations, no percentiles`);
      continue;
    }
    assertMs(b.init_p50_ms, percentileCont(inits, 0.5), `${b.start} p50`);
    assertMs(b.init_p95_ms, percentileCont(inits, 0.95), `${b.start} p95`);
    assertMs(b.init_p99_ms, percentileCont(inits, 0.99), `${b.start} p99`);
  }
  // a 30-day window: 6-hour buckets (at most 200)
  const month = await getA(`/api/v1/functions/${ids['stats-fn']}?from=${encodeURIComponent(new Date(NOW - 30 * DAY).toISOString())}`);
  assert.equal(month.status, 200, month.text);
  assert.equal(month.json.timeline.bucket_seconds, 6 * 3600);
  assert.equal(sum(month.json.timeline.buckets.map((b) => b.cold_starts)), month.json.cold_starts);
});

test('GET /functions/{id}?from&to: records outside [from, to) are excluded', async () => {
  await seed();
  const from = new Date(WINDOW_FROM).toISOString();
  const to = new Date(WINDOW_TO).toISOString();
  const res = await getA(`/api/v1/functions/${ids['detail-fn']}?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  assert.equal(res.status, 200, res.text);
  const b = res.json;
  assert.equal(Date.parse(b.window.from), WINDOW_FROM);
  assert.equal(Date.parse(b.window.to), WINDOW_TO);
  const exp = expectedDetail(WINDOW_FROM, WINDOW_TO);
  assert.ok(exp.cold >= 5, `the fixed window holds only ${exp.cold} cold starts`);
  checkDetail(b, exp, 'explicit window');
  assert.ok('edge-from' in b.module_breakdown, 'a record at exactly `from` is inside');
  assert.ok(!('edge-to' in b.module_breakdown), 'a record at exactly `to` is outside');
  assert.equal(b.module_breakdown['aws-sdk'].version, '2.1000.0', 'the newest tree inside the window');
  // an offset form of the same instants
  const off = (ms) => new Date(ms + 2 * HOUR).toISOString().replace('Z', '+02:00').replace('.000+', '+');
  const res2 = await getA(
    `/api/v1/functions/${ids['detail-fn']}?from=${encodeURIComponent(off(WINDOW_FROM))}&to=${encodeURIComponent(off(WINDOW_TO))}`,
  );
  assert.equal(res2.status, 200, res2.text);
  assert.deepEqual(res2.json.module_breakdown, b.module_breakdown);
});

test('GET /functions/{id}: only `to` gives the 7 days before it; only `from` runs to now', async () => {
  await seed();
  const to = new Date(NOW - 1 * DAY).toISOString();
  let res = await getA(`/api/v1/functions/${ids['detail-fn']}?to=${encodeURIComponent(to)}`);
  assert.equal(res.status, 200, res.text);
  assert.equal(Date.parse(res.json.window.to), NOW - DAY);
  assert.equal(Date.parse(res.json.window.from), NOW - 8 * DAY);
  checkDetail(res.json, expectedDetail(NOW - 8 * DAY, NOW - DAY), 'to only');
  assert.ok('ancient-module' in res.json.module_breakdown, 'the 8-day-old record is at the start of this window');
  const from = new Date(NOW - 10 * DAY).toISOString();
  res = await getA(`/api/v1/functions/${ids['detail-fn']}?from=${encodeURIComponent(from)}`);
  assert.equal(res.status, 200, res.text);
  assert.ok(Math.abs(Date.parse(res.json.window.to) - Date.now()) < 5000, `window.to ${res.json.window.to}`);
  checkDetail(res.json, expectedDetail(NOW - 10 * DAY, Date.parse(res.json.window.to)), 'from only');
});

test('GET /functions/{id}: a window without cold starts has an empty breakdown and null percentiles', async () => {
  await seed();
  const res = await getA(`/api/v1/functions/${ids['detail-fn']}?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z`);
  assert.equal(res.status, 200, res.text);
  const b = res.json;
  assert.equal(b.invocations, 0);
  assert.equal(b.cold_starts, 0);
  assert.deepEqual(b.module_breakdown, {});
  assert.deepEqual(b.init_duration_ms, { avg: null, p50: null, p95: null, p99: null });
  assert.equal(b.module_load_share, null);
  assert.equal(b.module_tree, null);
  assert.deepEqual(b.recommendations, []);
});

for (const [what, q] of [
  ['from equal to to', 'from=2026-01-02T00:00:00Z&to=2026-01-02T00:00:00Z'],
  ['from after to', 'from=2026-01-03T00:00:00Z&to=2026-01-02T00:00:00Z'],
]) {
  test(`GET /functions/{id} with ${what} is 400 VALIDATION_ERROR`, async () => {
    await seed();
    const res = await getA(`/api/v1/functions/${ids['detail-fn']}?${q}`);
    assertErrorBody(res, 400, 'VALIDATION_ERROR', q);
  });
}

test('GET /functions/{id}: a window wider than MAX_READ_WINDOW_DAYS (90) is 400 saying so; 90 days is fine', async () => {
  await seed();
  const DAY_MS = 86400000;
  const iso = (t) => new Date(t).toISOString();
  const t1 = Date.now();
  for (const q of [
    `from=${iso(t1 - 91 * DAY_MS)}&to=${iso(t1)}`,
    `from=${iso(t1 - 91 * DAY_MS)}`,
    'from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
  ]) {
    const res = await getA(`/api/v1/functions/${ids['detail-fn']}?${q}`);
    assertErrorBody(res, 400, 'VALIDATION_ERROR', q);
    assert.deepEqual(res.json.errors[0].loc, ['query', 'from']);
    assert.equal(res.json.errors[0].type, 'window_too_wide');
    assert.match(res.json.errors[0].msg, /at most 90 days/);
  }
  const ok = await getA(`/api/v1/functions/${ids['detail-fn']}?from=${iso(t1 - 90 * DAY_MS)}&to=${iso(t1)}`);
  assert.equal(ok.status, 200, ok.text);
});

for (const [param, bad] of [
  ['from', 'yesterday'],
  ['from', '2026-13-01T00:00:00Z'],
  ['from', '2026-01-02T00:00:00'],
  ['from', '1767312000'],
  ['to', 'not-a-date'],
  ['to', '2026-02-30T00:00:00Z'],
]) {
  test(`GET /functions/{id}?${param}=${bad} is 400 with loc ["query","${param}"]`, async () => {
    await seed();
    const res = await getA(`/api/v1/functions/${ids['detail-fn']}?${param}=${encodeURIComponent(bad)}`);
    assertValidationError(res, ['query', param], undefined, `${param}=${bad}`);
  });
}

test('GET /functions/{id}: recommendations for seeded heavy modules (moment, aws-sdk)', async (t) => {
  await seed();
  if (!existsSync(RULES_FILE)) {
    t.skip(`no rule table at ${RULES_FILE}: recommendations cannot be checked`);
    return;
  }
  const rules = JSON.parse(readFileSync(RULES_FILE, 'utf8'));
  const ruleList = Array.isArray(rules) ? rules : rules.rules || [];
  const res = await getA(`/api/v1/functions/${ids['heavy-fn']}`);
  assert.equal(res.status, 200, res.text);
  const recs = res.json.recommendations;
  assert.ok(Array.isArray(recs), res.text);
  for (const r of recs) {
    for (const k of ['module', 'rule_id', 'issue', 'suggestion', 'evidence', 'potential_savings_ms'])
      assert.ok(k in r, `recommendation without ${k}: ${JSON.stringify(r)}`);
    for (const k of ['module', 'rule_id', 'issue', 'suggestion', 'evidence'])
      assert.equal(typeof r[k], 'string', `${k} of ${JSON.stringify(r)}`);
    assert.equal(typeof r.potential_savings_ms, 'number');
  }
  for (const mod of ['moment', 'aws-sdk']) {
    const r = recs.find((x) => x.module === mod);
    assert.ok(r, `no recommendation for ${mod}: ${JSON.stringify(recs.map((x) => [x.module, x.rule_id]))}`);
    assert.ok(r.potential_savings_ms > 0, `${mod}: potential_savings_ms ${r.potential_savings_ms}`);
    const p50 = res.json.module_breakdown[mod].p50_ms;
    assert.ok(r.potential_savings_ms <= p50 + 0.5, `${mod}: savings ${r.potential_savings_ms} above its p50 ${p50}`);
    const rule = ruleList.find((x) => x.id === r.rule_id);
    if (rule && typeof rule.savings_share === 'number') {
      assert.ok(
        Math.abs(r.potential_savings_ms - p50 * rule.savings_share) <= 1,
        `${mod}: savings ${r.potential_savings_ms} != p50 ${p50} x ${rule.savings_share}`,
      );
    }
  }
  assert.ok(!recs.some((x) => x.module === 'tiny-module'), 'no recommendation for a 2 ms module');
  const savings = recs.map((x) => x.potential_savings_ms);
  for (let i = 1; i < savings.length; i++) assert.ok(savings[i - 1] >= savings[i], `not ranked by savings: ${savings}`);
});

// ---------------------------------------------------------------------------------------------
// Tenant isolation

let projectB = null;
async function tenantB() {
  if (!projectB) {
    const slug = 'tenant-b-' + randomBytes(3).toString('hex');
    projectB = { slug, key: await createProject(ctx.db.url, 'Tenant B', slug) };
  }
  return projectB;
}

test("tenancy: another project's function id, an unknown id and a malformed id answer the same 404", async () => {
  await seed();
  const { key } = await tenantB();
  const cases = [
    `/api/v1/functions/${ids['detail-fn']}`,
    `/api/v1/functions/${ids['detail-fn']}?from=${new Date(Date.now() - 30 * 86400000).toISOString()}`,
    `/api/v1/functions/${ids['detail-fn'].toUpperCase()}`,
    '/api/v1/functions/00000000-0000-4000-8000-000000000000',
    '/api/v1/functions/not-a-uuid',
    `/api/v1/functions/${ids['detail-fn']}x`,
    "/api/v1/functions/1'%20OR%20'1'='1",
  ];
  const bodies = [];
  for (const p of cases) {
    const res = await ctx.get(p, auth(key));
    assertErrorBody(res, 404, 'NOT_FOUND', p);
    bodies.push(res.text.replace(/"timestamp":"[^"]*"/, '"timestamp":"T"'));
  }
  for (let i = 1; i < bodies.length; i++) assert.equal(bodies[i], bodies[0], `404 body for ${cases[i]} differs from ${cases[0]}`);
  // the owner sees it
  const own = await getA(`/api/v1/functions/${ids['detail-fn']}`);
  assert.equal(own.status, 200);
});

test("tenancy: project B's list shows none of project A's functions", async () => {
  await seed();
  const { key } = await tenantB();
  await ingestAll([rec('b-only-fn', 5 * MIN, { cold_start: true, init_duration_ms: 10 })], key);
  const res = await ctx.get('/api/v1/functions?limit=200', auth(key));
  assert.equal(res.status, 200, res.text);
  const aIds = new Set(Object.values(ids));
  for (const f of res.json.functions) assert.ok(!aIds.has(f.id), `B sees A's function ${f.function_name}`);
  assert.ok(res.json.functions.some((f) => f.function_name === 'b-only-fn'));
  for (const pfx of ['stats-fn', 'page-fn-', 'detail']) {
    const r = await ctx.get(`/api/v1/functions?name_prefix=${pfx}`, auth(key));
    assert.deepEqual(r.json.functions, [], `B sees A's functions with prefix ${pfx}`);
  }
});

test("tenancy: project B cannot revoke (or see) project A's keys", async () => {
  await seed();
  const { key } = await tenantB();
  const aKeys = (await getA('/api/v1/api-keys')).json.api_keys;
  const aKey = aKeys.find((k) => k.key_prefix === ctx.key.slice(0, 8));
  assert.ok(aKey, 'A lists its own key');
  for (const q of ['', '?force=true']) {
    const res = await ctx.request('DELETE', `/api/v1/api-keys/${aKey.id}${q}`, auth(key));
    assertErrorBody(res, 404, 'NOT_FOUND', `B revokes A's key${q}`);
  }
  const unknown = await ctx.request('DELETE', '/api/v1/api-keys/00000000-0000-4000-8000-000000000000', auth(key));
  assertErrorBody(unknown, 404, 'NOT_FOUND', 'unknown key id');
  assert.equal(
    unknown.text.replace(/"timestamp":"[^"]*"/, ''),
    (await ctx.request('DELETE', `/api/v1/api-keys/${aKey.id}`, auth(key))).text.replace(/"timestamp":"[^"]*"/, ''),
  );
  const malformed = await ctx.request('DELETE', '/api/v1/api-keys/nope', auth(key));
  assertErrorBody(malformed, 404, 'NOT_FOUND', 'malformed key id');
  assert.equal(await ctx.sql(`SELECT is_active FROM api_keys WHERE id = ${lit(aKey.id)}`), 't', "A's key is still active");
  const bList = await ctx.get('/api/v1/api-keys', auth(key));
  assert.equal(bList.status, 200);
  assert.ok(!bList.json.api_keys.some((k) => k.id === aKey.id), "B's key list shows A's key");
  assert.equal((await getA('/api/v1/functions?limit=1')).status, 200, "A's key still works");
});

test("tenancy: ingest by project B never touches project A's function rows", async () => {
  await seed();
  const { key } = await tenantB();
  const q = `SELECT id, project_id, runtime, region, memory_allocated_mb, first_seen_at, last_seen_at,
    (SELECT count(*) FROM invocations i WHERE i.function_id = f.id) AS n FROM functions f WHERE id = ${lit(ids['stats-fn'])}`;
  const before = await ctx.rows(q);
  await ingestAll(
    [
      rec('stats-fn', 1 * MIN, {
        cold_start: true,
        init_duration_ms: 99,
        runtime_version: 'python3.12',
        region: 'ap-south-1',
        memory_allocated_mb: 128,
      }),
      rec('stats-fn', 2 * MIN, { cold_start: false, runtime_version: 'python3.12', region: 'ap-south-1', memory_allocated_mb: 128 }),
    ],
    key,
  );
  const single = await ctx.ingest(
    rec('stats-fn', 3 * MIN, { cold_start: false, runtime_version: 'python3.12', region: 'ap-south-1', memory_allocated_mb: 128 }),
    { key },
  );
  assert.equal(single.status, 200, single.text);
  assert.deepEqual(await ctx.rows(q), before, "A's function row or invocations changed");
  const bFns = await ctx.get('/api/v1/functions?name_prefix=stats-fn', auth(key));
  assert.equal(bFns.json.functions.length, 1);
  const bf = bFns.json.functions[0];
  assert.notEqual(bf.id, ids['stats-fn'], 'B got its own function row');
  assert.equal(bf.runtime, 'python3.12');
  assert.equal(bf.cold_start_stats.total_invocations_24h, 3);
  const aStats = (await getA('/api/v1/functions?name_prefix=stats-fn')).json.functions[0].cold_start_stats;
  assert.equal(aStats.total_invocations_24h, STATS_EXPECTED.total, "A's statistics include B's records");
  const det = await ctx.get(`/api/v1/functions/${bf.id}`, auth(key));
  assert.equal(det.json.invocations, 3);
  const cross = await getA(`/api/v1/functions/${bf.id}`);
  assertErrorBody(cross, 404, 'NOT_FOUND', "A reads B's function");
});

// ---------------------------------------------------------------------------------------------
// API keys

const KEY_FIELDS = ['created_at', 'id', 'is_active', 'key_prefix', 'last_used_at', 'name', 'scopes'];
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

/** Polls until `key` is refused with 401; resolves the milliseconds it took (or Infinity). */
async function msUntilRefused(key, limitMs = 6000) {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const res = await ctx.get('/api/v1/functions?limit=1', auth(key));
    if (res.status === 401) {
      assertErrorBody(res, 401, 'AUTHENTICATION_ERROR', 'revoked key');
      return Date.now() - t0;
    }
    assert.equal(res.status, 200, res.text);
    await sleep(100);
  }
  return Infinity;
}

test('GET /api-keys: prefix, name, created, last used, active; never a hash or a key', async () => {
  await seed();
  const res = await getA('/api/v1/api-keys');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.json), ['api_keys']);
  assert.ok(res.json.api_keys.length >= 1);
  for (const k of res.json.api_keys) {
    assert.deepEqual(Object.keys(k).sort(), KEY_FIELDS, JSON.stringify(k));
    assert.match(k.id, UUID_RE);
    assert.match(k.key_prefix, /^csa_[A-Za-z0-9]{4}$/);
    assert.equal(typeof k.is_active, 'boolean');
    assert.match(k.created_at, TS_RE);
    assert.ok(k.last_used_at === null || TS_RE.test(k.last_used_at), `last_used_at ${k.last_used_at}`);
  }
  const mine = res.json.api_keys.find((k) => k.key_prefix === ctx.key.slice(0, 8));
  assert.ok(mine?.is_active, 'the calling key is listed as active');
  assert.match(String(mine.last_used_at), TS_RE, 'the calling key has been used');
  const hashes = (await ctx.rows('SELECT key_hash FROM api_keys')).map((r) => r.key_hash);
  assert.ok(!res.text.includes(ctx.key), 'the key itself is in the listing');
  for (const h of hashes) assert.ok(!res.text.includes(h), 'a key hash is in the listing');
  assert.ok(!/hash/i.test(res.text), 'a hash field in the listing');
});

test('POST /api-keys: 201 with the key shown once; it works for ingest at once; only its SHA-256 is stored', async () => {
  await seed();
  const res = await ctx.request('POST', '/api/v1/api-keys', { body: { name: 'ci' }, ...auth(ctx.key) });
  assert.equal(res.status, 201, res.text);
  const k = res.json;
  assert.deepEqual(Object.keys(k).sort(), ['created_at', 'id', 'is_active', 'key', 'key_prefix', 'name', 'scopes']);
  assert.match(k.key, KEY_RE);
  assert.equal(k.key_prefix, k.key.slice(0, 8));
  assert.equal(k.name, 'ci');
  assert.deepEqual(k.scopes, ['ingest'], 'a key asked for without scopes is an ingest key');
  assert.equal(k.is_active, true);
  assert.match(k.id, UUID_RE);
  assert.match(k.created_at, TS_RE);
  assert.ok(res.headers.get('x-ratelimit-limit'), 'X-RateLimit-Limit on key creation');
  const stored = await ctx.rows(`SELECT key_hash, key_prefix, name, is_active FROM api_keys WHERE id = ${lit(k.id)}`);
  assert.deepEqual(stored, [{ key_hash: sha256(k.key), key_prefix: k.key_prefix, name: 'ci', is_active: true }]);
  const ing = await ctx.ingest(rec('new-key-fn', MIN, { cold_start: false }), { key: k.key });
  assert.equal(ing.status, 200, ing.text);
  assert.equal(
    await ctx.count(
      `SELECT count(*) FROM functions f JOIN api_keys a ON a.project_id = f.project_id WHERE a.id = ${lit(k.id)} AND f.function_name = 'new-key-fn'`,
    ),
    1,
  );
  const list = (await getA('/api/v1/api-keys')).json.api_keys;
  const listed = list.find((x) => x.id === k.id);
  assert.ok(listed, 'the new key is listed');
  assert.equal(listed.name, 'ci');
  assert.match(String(listed.last_used_at), TS_RE, 'used once, so last_used_at is set');
  assert.ok(!JSON.stringify(list).includes(k.key), 'the key is shown again');
});

test('POST /api-keys: no body makes an unnamed key; bad bodies are 400', async () => {
  await seed();
  const res = await ctx.request('POST', '/api/v1/api-keys', auth(ctx.key));
  assert.equal(res.status, 201, res.text);
  assert.equal(res.json.name, null);
  const unused = (await getA('/api/v1/api-keys')).json.api_keys.find((x) => x.id === res.json.id);
  assert.equal(unused.last_used_at, null, 'an unused key has no last_used_at');
  let bad = await ctx.request('POST', '/api/v1/api-keys', { body: { name: 5 }, ...auth(ctx.key) });
  assertValidationError(bad, ['body', 'name'], undefined, 'name: 5');
  bad = await ctx.request('POST', '/api/v1/api-keys', { body: { name: '' }, ...auth(ctx.key) });
  assertValidationError(bad, ['body', 'name'], undefined, 'name: ""');
  bad = await ctx.request('POST', '/api/v1/api-keys', {
    body: '[1]',
    ...auth(ctx.key),
    headers: { 'X-API-Key': ctx.key, 'Content-Type': 'application/json' },
  });
  assertValidationError(bad, ['body'], undefined, 'an array body');
  bad = await ctx.request('POST', '/api/v1/api-keys', {
    body: '{"name":',
    ...auth(ctx.key),
    headers: { 'X-API-Key': ctx.key, 'Content-Type': 'application/json' },
  });
  assertValidationError(bad, ['body'], undefined, 'malformed JSON');
});

test('DELETE /api-keys/{id}: revokes; with KEY_CACHE_TTL=1 the key is refused within ~2 s', async () => {
  await seed();
  const created = await ctx.request('POST', '/api/v1/api-keys', { body: { name: 'to-revoke', scopes: ['read'] }, ...auth(ctx.key) });
  assert.equal(created.status, 201, created.text);
  const k = created.json;
  assert.equal((await ctx.get('/api/v1/functions?limit=1', auth(k.key))).status, 200, 'the key works (and is cached)');
  const del = await ctx.request('DELETE', `/api/v1/api-keys/${k.id}`, auth(ctx.key));
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json, { id: k.id, key_prefix: k.key_prefix, is_active: false });
  const ms = await msUntilRefused(k.key);
  assert.ok(ms <= 2500, `revoked key still accepted after ${ms} ms (KEY_CACHE_TTL=1)`);
  assert.equal(await ctx.sql(`SELECT is_active FROM api_keys WHERE id = ${lit(k.id)}`), 'f');
  const listed = (await getA('/api/v1/api-keys')).json.api_keys.find((x) => x.id === k.id);
  assert.equal(listed.is_active, false);
  const ing = await ctx.get('/api/v1/functions?limit=1', auth(k.key));
  assertErrorBody(ing, 401, 'AUTHENTICATION_ERROR', 'a revoked key');
  assert.equal(await ctx.ingest(rec('revoked-fn', MIN, { cold_start: false }), { key: k.key }).then((r) => r.status), 401);
  assert.equal(await ctx.count("SELECT count(*) FROM functions WHERE function_name = 'revoked-fn'"), 0);
});

test('DELETE /api-keys/{id}: the last active admin key is 409 CONFLICT unless ?force=true', async () => {
  await seed();
  const slug = 'lone-' + randomBytes(3).toString('hex');
  const key = await createProject(ctx.db.url, 'Lone key', slug);
  const list = await ctx.get('/api/v1/api-keys', auth(key));
  assert.deepEqual(list.json.api_keys.map((k) => [k.name, k.scopes]).sort(), [
    ['admin', ['ingest', 'read', 'admin']],
    ['ingest', ['ingest']],
  ]);
  const id = list.json.api_keys.find((k) => k.name === 'admin').id;
  const ingestId = list.json.api_keys.find((k) => k.name === 'ingest').id;
  const rIngest = await ctx.request('DELETE', `/api/v1/api-keys/${ingestId}`, auth(key));
  assert.equal(rIngest.status, 200, `a key without admin is revocable: ${rIngest.text}`);
  for (const q of ['', '?force=false', '?force=1']) {
    const res = await ctx.request('DELETE', `/api/v1/api-keys/${id}${q}`, auth(key));
    assertErrorBody(res, 409, 'CONFLICT', `revoke the last key${q}`);
  }
  assert.equal((await ctx.get('/api/v1/functions', auth(key))).status, 200, 'still works after the refused revocation');
  // a second key makes the first revocable without force, and then the second is the last
  const second = await cliKey(['create-key', '--project', slug, '--name', 'second', '--scopes', 'ingest,read,admin'], ctx.db.url);
  const r1 = await ctx.request('DELETE', `/api/v1/api-keys/${id}`, auth(second));
  assert.equal(r1.status, 200, r1.text);
  const secondId = (await ctx.get('/api/v1/api-keys', auth(second))).json.api_keys.find((k) => k.key_prefix === second.slice(0, 8)).id;
  const r2 = await ctx.request('DELETE', `/api/v1/api-keys/${secondId}`, auth(second));
  assertErrorBody(r2, 409, 'CONFLICT', 'the second key is now the last');
  const forced = await ctx.request('DELETE', `/api/v1/api-keys/${secondId}?force=true`, auth(second));
  assert.equal(forced.status, 200, forced.text);
  assert.equal(forced.json.is_active, false);
  const ms = await msUntilRefused(second);
  assert.ok(ms <= 2500, `force-revoked key still accepted after ${ms} ms`);
});

// ---------------------------------------------------------------------------------------------
// POST /api/v1/projects

const projectReq = (body, headers = {}) => ctx.request('POST', '/api/v1/projects', { body, headers });
const bearer = (s) => ({ Authorization: `Bearer ${s}` });

test('POST /projects: a wrong or missing admin token is 401', async () => {
  await seed();
  const slug = 'nope-' + randomBytes(3).toString('hex');
  for (const headers of [
    {},
    bearer('x'.repeat(ADMIN_SECRET.length)),
    bearer(ADMIN_SECRET + 'x'),
    bearer(ADMIN_SECRET.slice(0, -1)),
    { Authorization: ADMIN_SECRET },
    { 'X-API-Key': ctx.key },
  ]) {
    const res = await projectReq({ name: 'Nope', slug }, headers);
    assertErrorBody(res, 401, 'AUTHENTICATION_ERROR', JSON.stringify(Object.keys(headers)));
  }
  assert.equal(await ctx.count(`SELECT count(*) FROM projects WHERE slug = ${lit(slug)}`), 0);
});

test('POST /projects: 201 with the admin token; the returned key works; a taken slug is 409', async () => {
  await seed();
  const slug = 'payments-' + randomBytes(3).toString('hex');
  const res = await projectReq({ name: 'Payments team', slug }, bearer(ADMIN_SECRET));
  assert.equal(res.status, 201, res.text);
  const p = res.json;
  assert.deepEqual(Object.keys(p).sort(), ['api_key', 'id', 'ingest_key', 'name', 'slug']);
  assert.match(p.id, UUID_RE);
  assert.equal(p.name, 'Payments team');
  assert.equal(p.slug, slug);
  assert.deepEqual(Object.keys(p.api_key).sort(), ['created_at', 'id', 'is_active', 'key', 'key_prefix', 'name', 'scopes']);
  assert.deepEqual(p.api_key.scopes, ['ingest', 'read', 'admin']);
  assert.deepEqual(p.ingest_key.scopes, ['ingest']);
  assert.match(p.ingest_key.key, KEY_RE);
  const ingestOnly = await ctx.get('/api/v1/functions', auth(p.ingest_key.key));
  assertErrorBody(ingestOnly, 403, 'FORBIDDEN', 'the ingest key cannot read');
  assert.match(p.api_key.key, KEY_RE);
  assert.equal(p.api_key.key_prefix, p.api_key.key.slice(0, 8));
  assert.equal(p.api_key.is_active, true);
  assert.deepEqual(await ctx.rows(`SELECT id::text, name FROM projects WHERE slug = ${lit(slug)}`), [{ id: p.id, name: 'Payments team' }]);
  const ing = await ctx.ingest(rec('onboarded-fn', MIN, { cold_start: true, init_duration_ms: 321 }), { key: p.api_key.key });
  assert.equal(ing.status, 200, ing.text);
  const list = await ctx.get('/api/v1/functions', auth(p.api_key.key));
  assert.deepEqual(
    list.json.functions.map((f) => f.function_name),
    ['onboarded-fn'],
  );
  const dup = await projectReq({ name: 'Other name', slug }, bearer(ADMIN_SECRET));
  assertErrorBody(dup, 409, 'CONFLICT', 'duplicate slug');
  assert.equal(await ctx.count(`SELECT count(*) FROM projects WHERE slug = ${lit(slug)}`), 1);
  // no half-made project: a refused duplicate leaves no stray key
  assert.equal(await ctx.count(`SELECT count(*) FROM api_keys WHERE project_id = ${lit(p.id)}`), 2);
});

for (const [what, body, loc] of [
  ['an upper-case slug', { name: 'X', slug: 'Payments' }, ['body', 'slug']],
  ['a slug with a space', { name: 'X', slug: 'a b' }, ['body', 'slug']],
  ['a slug with a slash', { name: 'X', slug: 'a/b' }, ['body', 'slug']],
  ['an empty slug', { name: 'X', slug: '' }, ['body', 'slug']],
  ['a 101-character slug', { name: 'X', slug: 'a'.repeat(101) }, ['body', 'slug']],
  ['a numeric slug', { name: 'X', slug: 12 }, ['body', 'slug']],
  ['no slug', { name: 'X' }, ['body', 'slug']],
  ['no name', { slug: 'no-name' }, ['body', 'name']],
  ['an empty name', { name: '', slug: 'empty-name' }, ['body', 'name']],
  ['an array body', [1, 2], ['body']],
]) {
  test(`POST /projects with ${what} is 400 at ${JSON.stringify(loc)}`, async () => {
    await seed();
    const res = await projectReq(body, bearer(ADMIN_SECRET));
    assertValidationError(res, loc, undefined, what);
  });
}

test('POST /projects is 403 when APP_SECRET_KEY is unset or shorter than 32 characters', async () => {
  await seed();
  const short = 's'.repeat(31);
  const servers = await Promise.all([
    startServer({ dbUrl: ctx.db.url, env: { APP_SECRET_KEY: undefined } }),
    startServer({ dbUrl: ctx.db.url, env: { APP_SECRET_KEY: '' } }),
    startServer({ dbUrl: ctx.db.url, env: { APP_SECRET_KEY: short } }),
  ]);
  try {
    for (const [i, s] of servers.entries()) {
      for (const headers of [{}, bearer(short), bearer('')]) {
        const slug = 'forbidden-' + i;
        const res = await http(s.base, 'POST', '/api/v1/projects', { body: { name: 'F', slug }, headers });
        assertErrorBody(res, 403, 'FORBIDDEN', `server ${i}, ${JSON.stringify(headers)}`);
      }
    }
    assert.equal(await ctx.count("SELECT count(*) FROM projects WHERE slug LIKE 'forbidden-%'"), 0);
  } finally {
    for (const s of servers) assert.deepEqual(await s.stop(), { code: 0, signal: null });
  }
});

// ---------------------------------------------------------------------------------------------
// Rate limits

/** Waits until just after a second boundary: the server's fixed windows start on whole seconds. */
async function alignToSecond() {
  const ms = Date.now() % 1000;
  await sleep(1000 - ms + 20);
}
const rl = (res) => ({
  limit: Number(res.headers.get('x-ratelimit-limit')),
  remaining: Number(res.headers.get('x-ratelimit-remaining')),
  reset: Number(res.headers.get('x-ratelimit-reset')),
});

test('rate limits: 5 queries per 2 s window per key, 429 with Retry-After; a batch is one ingest request', async () => {
  await seed();
  const slug = 'rl-' + randomBytes(3).toString('hex');
  const key1 = await createProject(ctx.db.url, 'Rate limited', slug);
  const key2 = await cliKey(['create-key', '--project', slug, '--name', 'other', '--scopes', 'read'], ctx.db.url);
  const s = await startServer({
    dbUrl: ctx.db.url,
    env: { RATE_LIMIT_QUERY: 5, RATE_LIMIT_INGEST: 5, RATE_LIMIT_WINDOW: 2, KEY_CACHE_TTL: 60 },
  });
  const q = (key) => http(s.base, 'GET', '/api/v1/functions?limit=1', { headers: { 'X-API-Key': key } });
  const post = (p, body, key) => http(s.base, 'POST', p, { body, headers: { 'X-API-Key': key } });
  try {
    // warm the key cache so the timed part is fast
    await http(s.base, 'GET', '/api/v1/functions/nope', { headers: { 'X-API-Key': key1 } });
    await http(s.base, 'GET', '/api/v1/functions/nope', { headers: { 'X-API-Key': key2 } });
    await sleep(2100);

    // --- queries: the 6th in a window is refused
    let blocked = null;
    for (let attempt = 0; attempt < 3 && !blocked; attempt++) {
      await alignToSecond();
      const t0 = Date.now();
      const got = [];
      for (let i = 0; i < 6; i++) got.push(await q(key1));
      if (Date.now() - t0 > 1800) {
        await sleep(2100); // the machine was too slow to stay inside one window: try again
        continue;
      }
      for (let i = 0; i < 5; i++) {
        assert.equal(got[i].status, 200, `query ${i + 1}: ${got[i].text}`);
        assert.deepEqual([rl(got[i]).limit, rl(got[i]).remaining], [5, 4 - i], `query ${i + 1} headers`);
        assert.ok(rl(got[i]).reset >= 1 && rl(got[i]).reset <= 2, `X-RateLimit-Reset ${rl(got[i]).reset}`);
      }
      blocked = got[5];
    }
    assert.ok(blocked, 'could not fit 6 requests into one 2 s window in 3 attempts');
    assertErrorBody(blocked, 429, 'RATE_LIMIT_ERROR', '6th query');
    const ra = Number(blocked.headers.get('retry-after'));
    assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 2, `Retry-After: ${blocked.headers.get('retry-after')}`);
    assert.deepEqual([rl(blocked).limit, rl(blocked).remaining], [5, 0]);
    assert.equal(rl(blocked).reset, ra);
    // per key: another key of the same project is not affected; nor is the ingest class
    const other = await q(key2);
    assert.equal(other.status, 200, other.text);
    assert.equal(rl(other).remaining, 4);
    const stillBlocked = await http(s.base, 'GET', '/api/v1/api-keys', { headers: { 'X-API-Key': key1 } });
    assertErrorBody(stillBlocked, 429, 'RATE_LIMIT_ERROR', 'GET /api-keys counts as a query too');
    const health = await http(s.base, 'GET', '/api/v1/health');
    assert.equal(health.status, 200, 'health is not rate limited');
    // after the window
    await sleep(ra * 1000 + 150);
    const again = await q(key1);
    assert.equal(again.status, 200, `after Retry-After: ${again.text}`);
    assert.equal(rl(again).remaining, 4);

    // --- ingest: 5 batches of 3 records are 5 requests; the 6th request is refused
    let refused = null;
    let fn = null;
    for (let attempt = 0; attempt < 3 && !refused; attempt++) {
      fn = `rl-ingest-${attempt}`;
      await sleep(2100);
      await alignToSecond();
      const t0 = Date.now();
      const got = [];
      for (let i = 0; i < 5; i++) {
        got.push(
          await post(
            '/api/v1/ingest/batch',
            { invocations: [0, 1, 2].map((j) => rec(fn, (i * 3 + j + 1) * MIN, { cold_start: false })) },
            key1,
          ),
        );
      }
      got.push(await post('/api/v1/ingest', rec(fn, 30 * MIN, { cold_start: false, invocation_id: 'refused-' + attempt }), key1));
      if (Date.now() - t0 > 1800) continue;
      for (let i = 0; i < 5; i++) {
        assert.equal(got[i].status, 200, `batch ${i + 1}: ${got[i].text}`);
        assert.equal(got[i].json.processed, 3);
        assert.deepEqual([rl(got[i]).limit, rl(got[i]).remaining], [5, 4 - i], `batch ${i + 1} headers`);
      }
      refused = got[5];
    }
    assert.ok(refused, 'could not fit 6 ingest requests into one 2 s window in 3 attempts');
    assertErrorBody(refused, 429, 'RATE_LIMIT_ERROR', '6th ingest request');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const stored = await ctx.count(
      `SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = ${lit(fn)}`,
    );
    assert.equal(stored, 15, 'the 15 batched records are stored and the refused one is not');
    const q2 = await q(key2);
    assert.equal(q2.status, 200, 'queries of another key still pass');
    await sleep(Number(refused.headers.get('retry-after')) * 1000 + 150);
    const after = await post('/api/v1/ingest', rec(fn, 31 * MIN, { cold_start: false }), key1);
    assert.equal(after.status, 200, `ingest after the window: ${after.text}`);
  } finally {
    assert.deepEqual(await s.stop(), { code: 0, signal: null });
  }
});

// ---------------------------------------------------------------------------------------------
// CORS

test('CORS: an allowed origin is echoed on GET (and on errors); others get no Access-Control-Allow-Origin', async () => {
  await seed();
  const ok = await getA('/api/v1/functions?limit=1', { headers: { Origin: ALLOWED_ORIGIN } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
  assert.match(ok.headers.get('vary') || '', /Origin/i);
  assert.match(ok.headers.get('access-control-expose-headers') || '', /X-RateLimit-Remaining/i);
  const err = await ctx.get('/api/v1/functions', { headers: { Origin: ALLOWED_ORIGIN } });
  assert.equal(err.status, 401);
  assert.equal(err.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN, 'a browser must be able to read the 401');
  for (const origin of ['http://evil.example', 'http://localhost:3001', 'http://localhost:3000.evil.example', 'null']) {
    const res = await getA('/api/v1/functions?limit=1', { headers: { Origin: origin } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), null, `origin ${origin} was allowed`);
  }
  const none = await getA('/api/v1/functions?limit=1');
  assert.equal(none.headers.get('access-control-allow-origin'), null, 'no Origin, no CORS headers');
});

test('CORS: preflight OPTIONS answers 204 with Allow-Methods/Allow-Headers, without a key', async () => {
  await seed();
  const pre = { Origin: ALLOWED_ORIGIN, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-api-key' };
  for (const p of [
    '/api/v1/functions',
    `/api/v1/functions/${ids['detail-fn']}`,
    '/api/v1/ingest',
    '/api/v1/ingest/batch',
    '/api/v1/api-keys',
    '/api/v1/api-keys/x',
    '/api/v1/projects',
  ]) {
    const res = await ctx.request('OPTIONS', p, { headers: pre });
    assert.equal(res.status, 204, `${p}: ${res.status} ${res.text}`);
    assert.equal(res.text, '');
    assert.equal(res.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN, p);
    const methods = (res.headers.get('access-control-allow-methods') || '').split(',').map((x) => x.trim());
    for (const m of ['GET', 'POST', 'DELETE']) assert.ok(methods.includes(m), `${p}: Allow-Methods ${methods}`);
    const hdrs = (res.headers.get('access-control-allow-headers') || '')
      .toLowerCase()
      .split(',')
      .map((x) => x.trim());
    for (const h of ['content-type', 'x-api-key', 'authorization']) assert.ok(hdrs.includes(h), `${p}: Allow-Headers ${hdrs}`);
    assert.equal(res.headers.get('access-control-max-age'), '600');
  }
  const evil = await ctx.request('OPTIONS', '/api/v1/functions', { headers: { ...pre, Origin: 'http://evil.example' } });
  assert.equal(evil.headers.get('access-control-allow-origin'), null);
  assert.equal(evil.headers.get('access-control-allow-methods'), null);
  const unknown = await ctx.request('OPTIONS', '/api/v1/nope', { headers: pre });
  assert.equal(unknown.status, 404, 'preflight on an unknown path');
});
