// Init cost in dollars (issue 17) through real HTTP and a real PostgreSQL: the same figures in the
// function list, the detail (per function and per package), the deployments and the comparison of
// two deployments (the change in dollars, per package too), at the prices the
// server is configured with (PRICE_PER_GB_SECOND_X86_64 / _ARM64), not AWS's defaults. On-demand
// cold starts are the request path's cost; proactive inits are billed apart; provisioned inits
// and warm invocations cost nothing here. The expectations are computed in this file from the
// records sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, fullRecord, minimalRecord, isoAgo, lit, runCli } from './harness.mjs';

// Not AWS's prices, so that a default wired in anywhere shows.
const X86 = 0.00002;
const ARM = 0.00001;
const ctx = useServer({ env: { PRICE_PER_GB_SECOND_X86_64: String(X86), PRICE_PER_GB_SECOND_ARM64: '1e-5' } });
const key = () => ({ headers: { 'X-API-Key': ctx.key } });
const MONTH_S = 30 * 86400;

const FN = 'cost-fn';
// [what, record overrides, dollars on the request path, proactive dollars, heavy-pkg dollars]
const RECORDS = [
  ...[0, 1, 2, 3].map((k) => ({
    rec: {
      memory_allocated_mb: 1024,
      architecture: 'x86_64',
      init_duration_ms: 500,
      code_id: 'cost0001',
      timestamp: isoAgo(30 + k),
      module_timings: { 'heavy-pkg': 300, './src/app': 50 },
    },
    usd: 0.5 * 1 * X86,
    heavy: 0.3 * 1 * X86,
  })),
  ...[0, 1].map((k) => ({
    rec: {
      memory_allocated_mb: 2048,
      architecture: 'arm64',
      init_duration_ms: 250,
      code_id: 'cost0002',
      timestamp: isoAgo(10 + k),
      module_timings: { 'heavy-pkg': 100 },
    },
    usd: 0.25 * 2 * ARM,
    heavy: 0.1 * 2 * ARM,
  })),
  // proactive: billed, but no request waited: apart
  {
    rec: {
      memory_allocated_mb: 1024,
      architecture: 'x86_64',
      init_duration_ms: 1000,
      code_id: 'cost0002',
      start_kind: 'proactive',
      init_type: 'on-demand',
      timestamp: isoAgo(9),
    },
    proactive: 1 * 1 * X86,
  },
  // provisioned: paid by provisioned concurrency, not estimated
  {
    rec: {
      memory_allocated_mb: 1024,
      init_duration_ms: 3000,
      code_id: 'cost0002',
      start_kind: 'provisioned',
      init_type: 'provisioned-concurrency',
      timestamp: isoAgo(8),
    },
  },
  // three days ago: in the detail's 7 days, not in the list's 24 h
  {
    rec: { memory_allocated_mb: 512, architecture: 'x86_64', init_duration_ms: 800, code_id: 'cost0001', timestamp: isoAgo(3 * 1440) },
    usd: 0.8 * 0.5 * X86,
    old: true,
    heavy: 0,
  },
];

// The records as sent (fullRecord's defaults included: the older cold start carries its module
// timings), for the comparison's figures.
const SENT = RECORDS.map((r) => fullRecord({ function_name: FN, function_version: '$LATEST', ...r.rec }));

function sums(filter) {
  const rs = RECORDS.filter(filter);
  return {
    usd: rs.reduce((a, r) => a + (r.usd ?? 0), 0),
    proactive: rs.reduce((a, r) => a + (r.proactive ?? 0), 0),
    heavy: rs.reduce((a, r) => a + (r.heavy ?? 0), 0),
  };
}

function near(actual, want, what) {
  assert.equal(typeof actual, 'number', `${what}: ${JSON.stringify(actual)}`);
  assert.ok(Math.abs(actual - want) <= 1e-9 + 1e-6 * Math.abs(want), `${what}: got ${actual}, computed ${want}`);
}

/** The 30-day projection of usd spent over spanS seconds (at least an hour of it). */
const perMonth = (usd, spanS) => (usd / Math.max(3600, spanS)) * MONTH_S;

test('set-up: cold starts of two architectures, a proactive and a provisioned init, warm invocations', async () => {
  const records = [...SENT];
  for (let k = 0; k < 5; k++) records.push(minimalRecord({ function_name: FN, code_id: 'cost0002', timestamp: isoAgo(5) }));
  const res = await ctx.batch({ invocations: records });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.failed, 0, res.text);
});

test('list: init cost of the last 24 h at the configured prices, its monthly rate, proactive apart', async () => {
  const res = await ctx.get(`/api/v1/functions?name_prefix=${FN}`, key());
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.prices_per_gb_second, { x86_64: X86, arm64: ARM });
  const [fn] = res.json.functions;
  const want = sums((r) => !r.old);
  const s = fn.cold_start_stats;
  near(s.init_cost_usd, want.usd, 'init_cost_usd');
  near(s.proactive_init_cost_usd, want.proactive, 'proactive_init_cost_usd');
  // the function is minutes old (and its first cold start of the 24 h 34 minutes): the rate of
  // those minutes, counted as at least an hour
  const firstCold = Math.min(...RECORDS.filter((r) => !r.old).map((r) => Date.parse(r.rec.timestamp)));
  const spanS = Math.min(86400, (Date.now() - Math.min(Date.parse(fn.first_seen_at), firstCold)) / 1000);
  assert.ok(spanS < 3600);
  near(s.init_cost_usd_per_month, perMonth(want.usd, spanS), 'init_cost_usd_per_month');
});

test('detail: per function and per package over the window', async () => {
  const [{ id }] = await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(FN)}`);
  const res = await ctx.get(`/api/v1/functions/${id}`, key());
  assert.equal(res.status, 200, res.text);
  const d = res.json;
  const want = sums(() => true);
  near(d.init_cost_usd, want.usd, 'init_cost_usd (7 days: the older cold start too)');
  near(d.proactive_init_cost_usd, want.proactive, 'proactive_init_cost_usd');
  assert.deepEqual(d.prices_per_gb_second, { x86_64: X86, arm64: ARM });
  // records sent later than they happened (the oldest three days ago): the rate since the first
  // cold start, not since first_seen_at
  const firstCold = Math.min(...RECORDS.map((r) => Date.parse(r.rec.timestamp)));
  assert.ok(firstCold < Date.parse(d.first_seen_at));
  const spanS = (Math.min(Date.parse(d.window.to), Date.now()) - Math.max(Date.parse(d.window.from), firstCold)) / 1000;
  assert.ok(spanS > 2.9 * 86400 && spanS < 3.1 * 86400, String(spanS));
  near(d.init_cost_usd_per_month, perMonth(want.usd, spanS), 'init_cost_usd_per_month');
  // a package's share: its self time at its cold start's memory and architecture
  near(d.module_breakdown['heavy-pkg'].init_cost_usd, want.heavy, 'heavy-pkg init_cost_usd');
  near(d.module_breakdown['heavy-pkg'].init_cost_usd_per_month, perMonth(want.heavy, spanS), 'heavy-pkg per month');
  near(d.module_breakdown['./src/app'].init_cost_usd, 4 * 0.05 * X86, './src/app init_cost_usd');

  // a window holding only the old cold start
  const from = new Date(Date.now() - 4 * 86400000).toISOString();
  const to = new Date(Date.now() - 2 * 86400000).toISOString();
  const old = await ctx.get(`/api/v1/functions/${id}?from=${from}&to=${to}`, key());
  assert.equal(old.status, 200, old.text);
  near(old.json.init_cost_usd, 0.8 * 0.5 * X86, 'the old window');
  near(old.json.proactive_init_cost_usd, 0, 'no proactive init then');
});

test("deployments: each one's cost over its life, its monthly rate, proactive apart", async () => {
  const [{ id }] = await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(FN)}`);
  const res = await ctx.get(`/api/v1/functions/${id}/deployments`, key());
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.prices_per_gb_second, { x86_64: X86, arm64: ARM });
  assert.match(res.json.init_cost_counts, /proactive/);
  const by = Object.fromEntries(res.json.deployments.map((d) => [d.deployment, d]));
  for (const [dep, filter] of [
    ['cost0001', (r) => r.rec.code_id === 'cost0001'],
    ['cost0002', (r) => r.rec.code_id === 'cost0002'],
  ]) {
    const d = by[dep];
    assert.ok(d, `deployment ${dep} listed: ${JSON.stringify(Object.keys(by))}`);
    const want = sums(filter);
    near(d.init_cost_usd, want.usd, `${dep} init_cost_usd`);
    near(d.proactive_init_cost_usd, want.proactive, `${dep} proactive_init_cost_usd`);
    const lifeS = (Date.parse(d.last_seen_at) - Date.parse(d.first_seen_at)) / 1000;
    near(d.init_cost_usd_per_month, perMonth(want.usd, lifeS), `${dep} init_cost_usd_per_month`);
  }
  // cost0001 ran three days: its rate is spread over them
  assert.ok(by.cost0001.init_cost_usd_per_month < by.cost0001.init_cost_usd * 30, JSON.stringify(by.cost0001));
});

/** Dollars of one millisecond of a record's init, at the configured prices. */
const usdPerMs = (r) => ((r.memory_allocated_mb / 1024) * (r.architecture === 'arm64' ? ARM : X86)) / 1000;
/** The on-demand cold starts of a deployment, as sent. */
const onDemand = (dep) => SENT.filter((r) => r.code_id === dep && r.cold_start && (r.start_kind ?? 'cold') === 'cold');
const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
/** A package's dollars per cold start: its self time priced, averaged over the cold starts with timings. */
const packageUsd = (dep, name) =>
  mean(
    onDemand(dep)
      .filter((r) => r.module_timings)
      .map((r) => (r.module_timings[name] ?? 0) * usdPerMs(r)),
  );

test("compare: what the change costs per cold start, per month at the head's rate, and per package", async () => {
  const [{ id }] = await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(FN)}`);
  const deployments = (await ctx.get(`/api/v1/functions/${id}/deployments`, key())).json.deployments;
  const headDeployment = deployments.find((d) => d.deployment === 'cost0002');
  const res = await ctx.get(`/api/v1/functions/${id}/compare`, key());
  assert.equal(res.status, 200, res.text);
  const c = res.json;
  assert.deepEqual([c.base.deployment, c.head.deployment], ['cost0001', 'cost0002']);
  // per cold start: each deployment's mean over its on-demand cold starts (memory and architecture
  // of each record; the proactive and the provisioned init are not on the request path)
  const base = mean(onDemand('cost0001').map((r) => r.init_duration_ms * usdPerMs(r)));
  const head = mean(onDemand('cost0002').map((r) => r.init_duration_ms * usdPerMs(r)));
  assert.equal(onDemand('cost0001').length, 5);
  assert.equal(onDemand('cost0002').length, 2);
  near(c.init_cost.base_usd_per_cold_start, base, 'base_usd_per_cold_start');
  near(c.init_cost.head_usd_per_cold_start, head, 'head_usd_per_cold_start');
  near(c.init_cost.change_usd_per_cold_start, head - base, 'change_usd_per_cold_start');
  // per month: the head's cold starts over its life (minutes: counted as an hour) over 30 days
  const lifeS = (Date.parse(headDeployment.last_seen_at) - Date.parse(headDeployment.first_seen_at)) / 1000;
  const startsPerMonth = (2 / Math.max(3600, lifeS)) * MONTH_S;
  near(c.init_cost.head_cold_starts_per_month, startsPerMonth, 'head_cold_starts_per_month');
  near(c.init_cost.change_usd_per_month, (head - base) * startsPerMonth, 'change_usd_per_month');
  // the head at its own rate is what the deployments list says it costs per month
  near(
    c.init_cost.head_usd_per_cold_start * c.init_cost.head_cold_starts_per_month,
    headDeployment.init_cost_usd_per_month,
    'head per month',
  );
  assert.ok(c.init_cost.change_usd_per_cold_start < 0, 'the arm64 deployment inits for less');
  assert.match(c.init_cost.method, /head's cold starts/);

  // per package: heavy-pkg 4 x 300 ms at 1 GB x86_64 over the base's 5 cold starts, 100 ms at 2 GB
  // arm64 on the head; aws-sdk (the older cold start's) removed; ./src/app removed
  const heavy = c.packages.find((p) => p.package === 'heavy-pkg');
  near(heavy.base_init_cost_usd, (4 * 0.3 * 1 * X86) / 5, 'heavy-pkg base');
  near(heavy.head_init_cost_usd, 0.1 * 2 * ARM, 'heavy-pkg head');
  near(heavy.change_usd_per_cold_start, 0.1 * 2 * ARM - (4 * 0.3 * 1 * X86) / 5, 'heavy-pkg change');
  assert.ok(c.packages.length >= 6, JSON.stringify(c.packages.map((p) => p.package)));
  for (const p of c.packages) {
    const b = packageUsd('cost0001', p.package);
    const h = packageUsd('cost0002', p.package);
    if (p.status === 'added') assert.equal(p.base_init_cost_usd, null, p.package);
    else near(p.base_init_cost_usd, b, `${p.package} base_init_cost_usd`);
    if (p.status === 'removed') assert.equal(p.head_init_cost_usd, null, p.package);
    else near(p.head_init_cost_usd, h, `${p.package} head_init_cost_usd`);
    near(p.change_usd_per_cold_start, h - b, `${p.package} change_usd_per_cold_start`);
    near(p.change_usd_per_month, (h - b) * startsPerMonth, `${p.package} change_usd_per_month`);
  }
  assert.equal(c.packages.find((p) => p.package === 'aws-sdk').status, 'removed');
  near(c.packages.find((p) => p.package === 'aws-sdk').change_usd_per_cold_start, (-0.85 * 0.5 * X86) / 5, 'aws-sdk removed');

  // coldstartd report says the same, to two significant digits
  const r = await runCli(['report', '--project', ctx.projectSlug, '--function', FN], {
    env: { DATABASE_URL: ctx.db.url, PRICE_PER_GB_SECOND_X86_64: String(X86), PRICE_PER_GB_SECOND_ARM64: String(ARM) },
  });
  assert.equal(r.code, 0, r.stderr);
  const m = r.stdout.match(/^ {2}init cost ([+-])\$([\d.]+) per cold start, ([+-])\$([\d.]+)\/month at (\d+) starts\/month$/m);
  assert.ok(m, r.stdout);
  const twoDigits = (sign, digits, want, what) => {
    const got = (sign === '-' ? -1 : 1) * Number(digits);
    assert.ok(Math.abs(got - want) <= 0.05 * Math.abs(want), `${what}: report ${got}, computed ${want}`);
  };
  twoDigits(m[1], m[2], head - base, 'report per cold start');
  twoDigits(m[3], m[4], (head - base) * startsPerMonth, 'report per month');
  assert.equal(Number(m[5]), Math.round(startsPerMonth));
  const line = r.stdout.split('\n').find((l) => l.startsWith('  heavy-pkg:'));
  assert.ok(line, r.stdout);
  const pm = line.match(/, ([+-])\$([\d.]+)\/month$/);
  assert.ok(pm, line);
  twoDigits(pm[1], pm[2], heavy.change_usd_per_cold_start * startsPerMonth, 'report heavy-pkg per month');
});

test("a record without memory counts its function's memory", async () => {
  const fn = 'cost-nomem-fn';
  // the function's memory comes from its records: 2048 MB
  assert.equal((await ctx.ingest(minimalRecord({ function_name: fn, memory_allocated_mb: 2048, timestamp: isoAgo(20) }))).status, 200);
  const rec = fullRecord({ function_name: fn, init_duration_ms: 1000, architecture: 'arm64', timestamp: isoAgo(10) });
  delete rec.memory_allocated_mb;
  assert.equal((await ctx.ingest(rec)).status, 200);
  const res = await ctx.get(`/api/v1/functions?name_prefix=${fn}`, key());
  near(res.json.functions[0].cold_start_stats.init_cost_usd, 1 * 2 * ARM, 'init_cost_usd');
});

test('a price that is not a number, or negative, stops coldstartd naming the setting', async () => {
  for (const [name, value] of [
    ['PRICE_PER_GB_SECOND_ARM64', 'cheap'],
    ['PRICE_PER_GB_SECOND_X86_64', '-0.1'],
    ['PRICE_PER_GB_SECOND_X86_64', 'inf'],
  ]) {
    const r = await runCli(['report'], { env: { DATABASE_URL: ctx.db.url, [name]: value }, timeoutMs: 20000 });
    assert.equal(r.code, 2, `${name}=${value}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${name}: expected a decimal number`), r.stderr);
  }
});
