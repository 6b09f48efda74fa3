// The deployment identity (function_version, code_id) through ingest, and the deployments and
// compare reads over real HTTP and a real PostgreSQL (issue 17). The end-to-end case through the
// real SDK and examples/orders-* is in e2e-deployments.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createProjectKeys,
  useServer,
  fullRecord,
  minimalRecord,
  lit,
  uid,
  isoAgo,
  assertValidationError,
  assertErrorBody,
} from './harness.mjs';

const ctx = useServer();

/** A cold-start record of deployment `code_id` with init `init` ms and the given module timings/versions. */
function cold(fn, code_id, init, timings, versions, minutesAgo, extra = {}) {
  return fullRecord({
    function_name: fn,
    code_id,
    function_version: '$LATEST',
    init_duration_ms: init,
    timestamp: isoAgo(minutesAgo),
    module_timings: timings,
    module_tree: {
      name: '(init)',
      children: Object.entries(versions).map(([name, version]) => ({ name, version, self: 1, inclusive: 1 })),
    },
    ...extra,
  });
}

async function functionId(name) {
  const rows = await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(name)}`);
  return rows[0].id;
}

test('function_version and code_id are stored; an early copy gets its code_id from the completion', async () => {
  const rec = fullRecord({ function_name: 'identity-fn', function_version: '12', code_id: 'c0ffee00c0ffee00c0ffee00c0ffee00' });
  assert.equal((await ctx.ingest(rec)).status, 200);
  const [row] = await ctx.rows(`SELECT function_version, code_id FROM invocations WHERE invocation_id = ${lit(rec.invocation_id)}`);
  assert.deepEqual(row, { function_version: '12', code_id: 'c0ffee00c0ffee00c0ffee00c0ffee00' });

  // the early copy (no code_id yet: the SDK computes it after the response) then the complete record
  const id = uid();
  const ts = isoAgo(3);
  const early = fullRecord({
    function_name: 'identity-fn',
    invocation_id: id,
    timestamp: ts,
    complete: false,
    function_version: '$LATEST',
  });
  delete early.execution_duration_ms;
  delete early.billed_duration_ms;
  delete early.memory_used_mb;
  assert.equal((await ctx.ingest(early)).status, 200);
  const deploymentsBefore = await ctx.rows(
    `SELECT deployment FROM function_deployments d JOIN functions f ON f.id = d.function_id WHERE f.function_name = 'identity-fn' ORDER BY 1`,
  );
  assert.deepEqual(
    deploymentsBefore.map((d) => d.deployment),
    ['c0ffee00c0ffee00c0ffee00c0ffee00'],
    'an early copy makes no deployment',
  );
  assert.equal(
    (await ctx.ingest({ ...early, complete: undefined, execution_duration_ms: 40, code_id: 'feed0000feed0000feed0000feed0000' })).status,
    200,
  );
  const [completed] = await ctx.rows(`SELECT code_id, execution_duration_ms FROM invocations WHERE invocation_id = ${lit(id)}`);
  assert.deepEqual(completed, { code_id: 'feed0000feed0000feed0000feed0000', execution_duration_ms: 40 });
  const deployments = await ctx.rows(
    `SELECT deployment, code_id, function_version FROM function_deployments d JOIN functions f ON f.id = d.function_id WHERE f.function_name = 'identity-fn' ORDER BY 1`,
  );
  assert.deepEqual(deployments, [
    { deployment: 'c0ffee00c0ffee00c0ffee00c0ffee00', code_id: 'c0ffee00c0ffee00c0ffee00c0ffee00', function_version: '12' },
    { deployment: 'feed0000feed0000feed0000feed0000', code_id: 'feed0000feed0000feed0000feed0000', function_version: '$LATEST' },
  ]);
  // without a code_id, the version is the deployment
  assert.equal((await ctx.ingest(minimalRecord({ function_name: 'identity-fn', function_version: '13' }))).status, 200);
  assert.equal(await ctx.count(`SELECT count(*) FROM function_deployments WHERE deployment = 'version:13'`), 1);
});

test('invalid function_version / code_id are 400 with their location', async () => {
  let res = await ctx.ingest(minimalRecord({ code_id: 'has space' }));
  assertValidationError(res, ['body', 'code_id'], 'string_pattern_mismatch');
  res = await ctx.ingest(minimalRecord({ function_version: 'x'.repeat(65) }));
  assertValidationError(res, ['body', 'function_version'], 'string_too_long');
  res = await ctx.batch({ invocations: [minimalRecord({ code_id: 5 })] });
  assert.equal(res.status, 200);
  assert.equal(res.json.failed, 1);
  assert.deepEqual(res.json.failures[0].errors[0].loc, ['body', 'invocations', 0, 'code_id']);
});

test('deployments: newest first with cold starts, init percentiles, runtime, memory and init cost', async () => {
  const fn = 'deploy-list-fn';
  const records = [];
  for (let i = 0; i < 30; i++) records.push(cold(fn, 'aaaa0001', 100 + (i % 10), { dep: 50 }, { dep: '1.0.0' }, 120 - i));
  for (let i = 0; i < 10; i++)
    records.push(cold(fn, 'aaaa0002', 200, { dep: 150 }, { dep: '2.0.0' }, 60 - i, { architecture: 'arm64', memory_allocated_mb: 1024 }));
  records.push(cold(fn, 'aaaa0002', 900, { dep: 1 }, {}, 30, { start_kind: 'provisioned', init_type: 'provisioned-concurrency' }));
  records.push(minimalRecord({ function_name: fn, code_id: 'aaaa0002', timestamp: isoAgo(5) }));
  assert.equal((await ctx.batch({ invocations: records })).status, 200);
  const id = await functionId(fn);
  const res = await ctx.get(`/api/v1/functions/${id}/deployments`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(res.status, 200, res.text);
  const [head, base] = res.json.deployments;
  assert.equal(res.json.deployments.length, 2);
  assert.equal(head.deployment, 'aaaa0002');
  assert.equal(base.deployment, 'aaaa0001');
  assert.equal(head.cold_starts, 11);
  assert.equal(head.on_demand_cold_starts, 10);
  assert.equal(head.provisioned_inits, 1);
  assert.equal(head.init_p50_ms, 200, 'the provisioned init is not in the percentiles');
  assert.equal(head.architecture, 'arm64');
  assert.equal(head.memory_mb, 1024);
  assert.equal(base.runtime, 'nodejs18.x');
  assert.equal(base.init_p50_ms, 104.5);
  // 10 x 0.2 s x 1 GB x arm64's price; the provisioned init is not charged
  assert.ok(Math.abs(head.init_cost_usd - 10 * 0.2 * 1 * 0.0000133334) < 1e-6, String(head.init_cost_usd));
  assert.ok(Math.abs(base.init_cost_usd - 30 * 0.1045 * 0.5 * 0.0000166667) < 1e-6, String(base.init_cost_usd));
  assert.ok(Date.parse(head.last_seen_at) > Date.parse(head.first_seen_at));
  assert.ok(Date.parse(head.first_seen_at) > Date.parse(base.first_seen_at));
});

test('compare: a heavier dependency is a regression naming the package and its versions', async () => {
  const fn = 'compare-fn';
  const records = [];
  for (let i = 0; i < 40; i++) {
    const jitter = (i * 7) % 13;
    records.push(
      cold(
        fn,
        'bbbb0001',
        300 + jitter,
        { '@aws-sdk/client-sso': 40 + jitter / 2, lodash: 20, './src/handler': 5 },
        { '@aws-sdk/client-sso': '3.575.0', lodash: '4.17.21' },
        200 - i,
      ),
    );
    records.push(
      cold(
        fn,
        'bbbb0002',
        330 + jitter,
        { '@aws-sdk/client-sso': 63 + jitter / 2, lodash: 20, './src/handler': 5, 'new-dep': 7 },
        { '@aws-sdk/client-sso': '3.577.0', lodash: '4.17.21', 'new-dep': '1.0.0' },
        100 - i,
      ),
    );
  }
  assert.equal((await ctx.batch({ invocations: records })).status, 200);
  const id = await functionId(fn);
  const res = await ctx.get(`/api/v1/functions/${id}/compare`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(res.status, 200, res.text);
  const body = res.json;
  assert.equal(body.base.deployment, 'bbbb0001', 'default base: the deployment before the latest');
  assert.equal(body.head.deployment, 'bbbb0002');
  assert.equal(body.verdict, 'regression');
  assert.ok(body.test.p_value < 0.01);
  assert.equal(body.test.median_change_ms, 30);
  assert.equal(body.head.cold_starts, 40);
  assert.ok(
    body.head.init_p50_ms.interval[0] <= body.head.init_p50_ms.value && body.head.init_p50_ms.value <= body.head.init_p50_ms.interval[1],
  );
  const top = body.packages[0];
  assert.equal(top.package, '@aws-sdk/client-sso');
  assert.equal(top.base_version, '3.575.0');
  assert.equal(top.head_version, '3.577.0');
  // package medians come from sketches: each within 1 % (docs/api-reference.md), so the change
  // within 1 % of both sides' medians
  assert.ok(Math.abs(top.change_ms - 23) <= 0.01 * (top.base_self_ms + top.head_self_ms) + 0.01, `change ${top.change_ms}`);
  assert.match(top.summary, /^@aws-sdk\/client-sso 3\.575\.0 -> 3\.577\.0: \+2[23]\.\d ms$/);
  assert.deepEqual(body.added, ['new-dep']);
  assert.deepEqual(body.removed, []);
  assert.equal(body.packages.find((p) => p.package === 'lodash').change_ms, 0);
  // what it costs: every cold start 30 ms longer (the same jitter on both sides) at 512 MB x86_64
  // and AWS's price; the head ran 39 minutes, counted as an hour: 40 cold starts an hour
  const usdPerMs = (0.5 * 0.0000166667) / 1000;
  const startsPerMonth = 40 * 24 * 30;
  const near = (got, want, what) => assert.ok(Math.abs(got - want) <= 1e-9 + 1e-6 * Math.abs(want), `${what}: ${got} vs ${want}`);
  near(body.init_cost.change_usd_per_cold_start, 30 * usdPerMs, 'change per cold start');
  near(body.init_cost.head_cold_starts_per_month, startsPerMonth, 'head cold starts per month');
  near(body.init_cost.change_usd_per_month, 30 * usdPerMs * startsPerMonth, 'change per month');
  const meanInit = (from) => [...Array(40).keys()].reduce((a, i) => a + from + ((i * 7) % 13), 0) / 40;
  near(body.init_cost.base_usd_per_cold_start, meanInit(300) * usdPerMs, 'base per cold start');
  near(body.init_cost.head_usd_per_cold_start, meanInit(330) * usdPerMs, 'head per cold start');
  // the package's 23 ms, priced; the new dependency's 7 ms; lodash's unchanged 20 ms costs nothing more
  near(top.change_usd_per_cold_start, 23 * usdPerMs, 'client-sso per cold start');
  near(top.change_usd_per_month, 23 * usdPerMs * startsPerMonth, 'client-sso per month');
  const added = body.packages.find((p) => p.package === 'new-dep');
  assert.equal(added.base_init_cost_usd, null);
  near(added.head_init_cost_usd, 7 * usdPerMs, 'new-dep per cold start');
  near(added.change_usd_per_month, 7 * usdPerMs * startsPerMonth, 'new-dep per month');
  near(body.packages.find((p) => p.package === 'lodash').change_usd_per_month, 0, 'lodash');

  // the other way round is an improvement; explicit base and head
  const back = await ctx.get(`/api/v1/functions/${id}/compare?base=bbbb0002&head=bbbb0001`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(back.status, 200, back.text);
  assert.equal(back.json.verdict, 'improvement');
  // the other way round, per cold start the same dollars saved; per month at the older one's rate
  near(back.json.init_cost.change_usd_per_cold_start, -30 * usdPerMs, 'improvement per cold start');
  near(back.json.init_cost.change_usd_per_month, -30 * usdPerMs * startsPerMonth, 'improvement per month');
  assert.deepEqual(back.json.removed, ['new-dep']);
});

test('compare: too few cold starts is "not enough data"; the same distribution is "no change"', async () => {
  const fn = 'compare-small-fn';
  const records = [];
  for (let i = 0; i < 10; i++) records.push(cold(fn, 'cccc0001', 100, { a: 1 }, {}, 100 - i));
  for (let i = 0; i < 10; i++) records.push(cold(fn, 'cccc0002', 500, { a: 1 }, {}, 50 - i));
  for (let i = 0; i < 30; i++) records.push(cold(fn, 'cccc0003', 500 + (i % 5), { a: 1 }, {}, 40 - i));
  for (let i = 0; i < 30; i++) records.push(cold(fn, 'cccc0004', 500 + ((i + 2) % 5), { a: 1 }, {}, 9 - i / 10));
  assert.equal((await ctx.batch({ invocations: records })).status, 200);
  const id = await functionId(fn);
  const key = { headers: { 'X-API-Key': ctx.key } };
  const few = await ctx.get(`/api/v1/functions/${id}/compare?base=cccc0001&head=cccc0002`, key);
  assert.equal(few.status, 200, few.text);
  assert.equal(few.json.verdict, 'not enough data');
  assert.equal(few.json.test.median_change_ms, 400);
  const same = await ctx.get(`/api/v1/functions/${id}/compare`, key);
  assert.equal(same.json.base.deployment, 'cccc0003');
  assert.equal(same.json.verdict, 'no change');
});

test('deployments and compare: scopes, tenancy, unknown ids and bad parameters', async () => {
  const id = await functionId('compare-fn');
  // ingest-only key: 403
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/deployments`, { headers: { 'X-API-Key': ctx.ingestKey } }), 403, 'FORBIDDEN');
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/compare`, { headers: { 'X-API-Key': ctx.ingestKey } }), 403, 'FORBIDDEN');
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/deployments`), 401, 'AUTHENTICATION_ERROR');
  const key = { headers: { 'X-API-Key': ctx.key } };
  assertErrorBody(await ctx.get(`/api/v1/functions/00000000-0000-4000-8000-000000000000/deployments`, key), 404, 'NOT_FOUND');
  assertErrorBody(await ctx.get(`/api/v1/functions/not-a-uuid/compare`, key), 404, 'NOT_FOUND');
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/compare?base=nope`, key), 404, 'NOT_FOUND');
  assertValidationError(
    await ctx.get(`/api/v1/functions/${id}/compare?head=${'x'.repeat(81)}`, key),
    ['query', 'head'],
    'string_pattern_mismatch',
  );
  const one = await functionId('identity-fn');
  assert.equal((await ctx.get(`/api/v1/functions/${one}/compare?head=version:13&base=version:13`, key)).status, 200);
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/deployments/extra`, key), 404, 'NOT_FOUND');
  assert.equal((await ctx.request('POST', `/api/v1/functions/${id}/deployments`, key)).status, 405);
  // another project's key sees nothing of this function
  const other = await createProjectKeys(ctx.db.url, 'Other', 'other-' + Date.now().toString(36));
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/deployments`, { headers: { 'X-API-Key': other.admin } }), 404, 'NOT_FOUND');
  assertErrorBody(await ctx.get(`/api/v1/functions/${id}/compare`, { headers: { 'X-API-Key': other.admin } }), 404, 'NOT_FOUND');
});
