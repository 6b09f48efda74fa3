// End to end for deployments (issue 17): one function deployed three times through the real SDK
// (sdk/, built), each cold start a fresh Node.js process run by examples/invoke.mjs, sending to the
// real coldstartd and the real PostgreSQL:
//   1. examples/orders-v2 as function "orders";
//   2. examples/orders-v3 (the rewrite with the fixes) deployed over it: an improvement;
//   3. a copy of orders-v3 generated here whose @aws-sdk/client-dynamodb is a newer version
//      (3.1170.0: at load it computes for a while, about 0.25 s of CPU on an idle machine, and
//      blocks BLOCK_MS as synchronous I/O at import would, then loads the same client), deployed
//      over that: a regression naming the package with both versions, as in aws-sdk-js-v3 #6144.
//      The CPU part grows with the machine's load as much as the rest of init does, the blocking
//      part sets a floor on the change the comparison must find.
// The deployments, the cost figures and `coldstartd report` must agree with the comparisons.
// Why the heavier copy is of orders-v3, not orders-v2: orders-v2's init is mostly loading the AWS
// SDK v2 (0.35 s of CPU alone, seconds on a loaded machine), noise that hides any regression of a
// sane size in 20 cold starts; orders-v3's init is a third of it.
// The verdict needs CSA_COMPARE_MIN_SAMPLES (20) cold starts per side, so each deployment gets
// 20 environments (60 processes, the floor of this test's time: about 15 s on an idle 2-core
// machine). After the first environment of each deployment (which orders them), all three run
// side by side in five streams, so that load on the machine falls on every side alike.
// Needs `cd sdk && npm ci && npm run build` and `cd examples && npm ci` (scripts/test.sh does both).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO, runCli, useServer } from './harness.mjs';

const ctx = useServer({ projectName: 'Deployments End to End', slug: 'e2e-deploy' });
const FN = 'orders';
const PER_DEPLOYMENT = 20; // CSA_COMPARE_MIN_SAMPLES: fewer gives "not enough data"
const BLOCK_MS = 300;
const WORK_ITERATIONS = 5e7; // about 0.25 s of CPU
const CLIENT = '@aws-sdk/client-dynamodb';
const key = () => ({ headers: { 'X-API-Key': ctx.key } });
let tmp;
let heavyDir;

/** Runs `n` cold starts of the function folder `dir` as function "orders"; resolves when done. */
function invoke(dir, n) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, 'examples/invoke.mjs'), dir, '--cold', String(n), '--warm', '0', '--name', FN], {
      env: { ...process.env, COLDSTART_API_KEY: ctx.ingestKey, COLDSTART_ENDPOINT: ctx.base },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`invoke.mjs ${dir} exited ${code}: ${stderr}`));
    });
  });
}

/** Complete cold-start records of the function stored with a code_id. */
const coldStarts = () =>
  ctx.count(`SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id
    WHERE f.function_name = '${FN}' AND i.cold_start AND i.execution_duration_ms IS NOT NULL AND i.code_id IS NOT NULL`);

before(() => {
  assert.ok(existsSync(path.join(REPO, 'sdk/dist/index.cjs')), 'sdk/dist missing: run npm run build in sdk/');
  assert.ok(existsSync(path.join(REPO, 'examples/node_modules/aws-sdk')), 'examples/node_modules missing: run npm ci in examples/');
  // tmp/orders-heavy: orders-v3's handler, unchanged; its own node_modules holds the newer client,
  // every other package resolves through tmp/node_modules -> examples/node_modules
  tmp = mkdtempSync(path.join(os.tmpdir(), 'csa-deploy-'));
  symlinkSync(path.join(REPO, 'examples/node_modules'), path.join(tmp, 'node_modules'), 'dir');
  heavyDir = path.join(tmp, 'orders-heavy');
  cpSync(path.join(REPO, 'examples/orders-v3'), heavyDir, { recursive: true });
  const client = path.join(heavyDir, 'node_modules', CLIENT);
  mkdirSync(client, { recursive: true });
  writeFileSync(path.join(client, 'package.json'), JSON.stringify({ name: CLIENT, version: '3.1170.0', main: 'index.js' }));
  writeFileSync(
    path.join(client, 'index.js'),
    `// ${CLIENT} 3.1170.0: the same client, with more work at load.
let x = 0;
for (let i = 0; i < ${WORK_ITERATIONS}; i++) x = (x + i * 7) % 1000003;
globalThis.heavierClientWork = x;
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${BLOCK_MS});
module.exports = require(${JSON.stringify(path.join(REPO, 'examples/node_modules', CLIENT))});
`,
  );
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('three deployments through the real SDK: orders-v2, orders-v3, orders-v3 with a heavier client', async () => {
  const v2 = path.join(REPO, 'examples/orders-v2');
  const v3 = path.join(REPO, 'examples/orders-v3');
  // the first environment of each, one after the other, fixes the order of the deployments
  await invoke(v2, 1);
  assert.equal(await coldStarts(), 1, 'the cold start is stored with its code_id before invoke.mjs ends');
  await invoke(v3, 1);
  assert.equal(await coldStarts(), 2);
  await invoke(heavyDir, 1);
  assert.equal(await coldStarts(), 3);
  // then the rest side by side
  const half = (PER_DEPLOYMENT - 1) / 2;
  await Promise.all([
    invoke(v2, Math.ceil(half)),
    invoke(v2, Math.floor(half)),
    invoke(v3, PER_DEPLOYMENT - 1),
    invoke(heavyDir, Math.ceil(half)),
    invoke(heavyDir, Math.floor(half)),
  ]);
  assert.equal(await coldStarts(), 3 * PER_DEPLOYMENT);
});

async function functionId() {
  const res = await ctx.get(`/api/v1/functions?name_prefix=${FN}`, key());
  assert.equal(res.status, 200, res.text);
  return res.json.functions[0].id;
}

test('deployments: three, newest first, 20 on-demand cold starts each, with their init cost', async () => {
  const id = await functionId();
  const res = await ctx.get(`/api/v1/functions/${id}/deployments`, key());
  assert.equal(res.status, 200, res.text);
  const list = res.json.deployments;
  assert.equal(list.length, 3, JSON.stringify(list));
  ctx.deployments = { heavy: list[0].deployment, v3: list[1].deployment, v2: list[2].deployment };
  for (const d of list) {
    assert.match(d.code_id, /^[0-9a-f]{32}$/);
    assert.equal(d.deployment, d.code_id, 'a code_id is the deployment');
    assert.equal(d.function_version, '$LATEST');
    assert.equal(d.on_demand_cold_starts, PER_DEPLOYMENT);
    assert.equal(d.memory_mb, 512);
    assert.ok(d.init_cost_usd > 0 && d.init_cost_usd_per_month > d.init_cost_usd, JSON.stringify(d));
  }
  // the cost of each is its cold starts' init x 0.5 GB x the architecture's price (defaults)
  const rows = await ctx.rows(`SELECT i.code_id, sum(i.init_duration_ms)::float8 AS ms, max(i.architecture) AS arch
    FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = '${FN}' AND i.cold_start GROUP BY 1`);
  for (const r of rows) {
    const price = r.arch === 'arm64' ? 0.0000133334 : 0.0000166667;
    const d = list.find((x) => x.code_id === r.code_id);
    assert.ok(Math.abs(d.init_cost_usd - (r.ms / 1000) * 0.5 * price) < 1e-8, `${r.code_id}: ${d.init_cost_usd}`);
  }
  // the same dollars in the list (24 h) and the detail (7 days): every cold start is minutes old
  const total = list.reduce((a, d) => a + d.init_cost_usd, 0);
  const fns = await ctx.get(`/api/v1/functions?name_prefix=${FN}`, key());
  assert.ok(Math.abs(fns.json.functions[0].cold_start_stats.init_cost_usd - total) < 1e-8);
  const detail = await ctx.get(`/api/v1/functions/${id}`, key());
  assert.ok(Math.abs(detail.json.init_cost_usd - total) < 1e-8);
  assert.ok(detail.json.module_breakdown[CLIENT].init_cost_usd > 0, JSON.stringify(detail.json.module_breakdown[CLIENT]));
});

test('compare: orders-v2 -> orders-v3 is an improvement, the v2 packages removed', async (t) => {
  assert.ok(ctx.deployments, 'the deployments test ran');
  const id = await functionId();
  const { v2, v3 } = ctx.deployments;
  const res = await ctx.get(`/api/v1/functions/${id}/compare?base=${v2}&head=${v3}`, key());
  assert.equal(res.status, 200, res.text);
  const c = res.json;
  t.diagnostic(`p50 ${c.base.init_p50_ms.value} -> ${c.head.init_p50_ms.value} ms, p = ${c.test.p_value}`);
  assert.equal(c.verdict, 'improvement', JSON.stringify({ test: c.test, base: c.base.init_p50_ms, head: c.head.init_p50_ms }));
  assert.ok(c.test.median_change_ms < 0);
  for (const pkg of ['aws-sdk', 'moment', 'lodash']) assert.ok(c.removed.includes(pkg), `${pkg} removed: ${c.removed}`);
  assert.ok(c.added.includes(CLIENT), `added: ${c.added}`);
  // the largest single change: the AWS SDK v2 gone
  assert.equal(c.packages[0].package, 'aws-sdk', JSON.stringify(c.packages.slice(0, 3)));
  assert.ok(c.packages[0].change_ms < 0);
  assert.match(c.packages[0].summary, /^aws-sdk 2\.\d+\.\d+: -\d+\.\d ms \(removed\)$/);
});

test('compare: the newer client is a regression (the latest against the one before), the package named with both versions', async (t) => {
  assert.ok(ctx.deployments, 'the deployments test ran');
  const id = await functionId();
  const { v3, heavy } = ctx.deployments;
  const res = await ctx.get(`/api/v1/functions/${id}/compare`, key());
  assert.equal(res.status, 200, res.text);
  const c = res.json;
  assert.equal(c.base.deployment, v3, 'default base: the deployment before the latest');
  assert.equal(c.head.deployment, heavy);
  const info = JSON.stringify({ test: c.test, base: c.base.init_p50_ms, head: c.head.init_p50_ms, top: c.packages.slice(0, 3) });
  t.diagnostic(`p50 ${c.base.init_p50_ms.value} -> ${c.head.init_p50_ms.value} ms, p = ${c.test.p_value}, ${c.packages[0].summary}`);
  assert.equal(c.verdict, 'regression', info);
  assert.ok(c.test.median_change_ms >= BLOCK_MS * 0.7, info);
  const [top] = c.packages;
  assert.equal(top.package, CLIENT, info);
  assert.equal(top.base_version, '3.1169.0');
  assert.equal(top.head_version, '3.1170.0');
  assert.ok(top.change_ms >= BLOCK_MS * 0.9, info);
  assert.match(top.summary, /^@aws-sdk\/client-dynamodb 3\.1169\.0 -> 3\.1170\.0: \+\d+\.\d ms$/);
  assert.deepEqual(c.added, []);
  assert.deepEqual(c.removed, []);
});

test('coldstartd report: the deployments, the latest comparison and the init cost', async () => {
  assert.ok(ctx.deployments, 'the deployments test ran');
  const r = await runCli(['report', '--project', 'e2e-deploy', '--function', FN], { env: { DATABASE_URL: ctx.db.url } });
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /^FUNCTION .* INIT \$\/MO$/m);
  assert.match(out, /^orders +60 +100\.0% .* \$\d+\.\d+$/m, out);
  assert.match(out, /^init cost: \$0\.\d+ in this window, ~\$\d+\.\d+ per month at this rate$/m, out);
  assert.match(out, /^DEPLOYMENTS \(newest first/m);
  const { v2, heavy, v3 } = ctx.deployments;
  const short = (d) => d.slice(0, 14);
  const rows = out.split('\n').filter((l) => [v2, heavy, v3].some((d) => l.startsWith(short(d))));
  assert.equal(rows.length, 3, out);
  assert.ok(rows[0].startsWith(short(heavy)) && rows[2].startsWith(short(v2)), 'newest first');
  for (const row of rows) assert.match(row, / \$LATEST .* 20 +(\d+ ms|\d+\.\d\d s) +(\d+ ms|\d+\.\d\d s) +\$0\.\d+$/, row);
  assert.match(
    out,
    new RegExp(
      `^LATEST CHANGE ${short(v3)} -> ${short(heavy)}: regression\n {2}init p50 \\+\\d+ ms \\(\\+\\d+\\.\\d %\\), Mann-Whitney p = `,
      'm',
    ),
    out,
  );
  assert.match(out, /^ {2}init cost \+\$0\.\d+ per cold start, \+\$\d+\.\d+\/month at \d+ starts\/month$/m, out);
  assert.match(out, /^ {2}@aws-sdk\/client-dynamodb 3\.1169\.0 -> 3\.1170\.0: \+\d+\.\d ms, \+\$\d+\.\d+\/month$/m, out);
  for (const line of out.split('\n')) assert.ok(line.length <= 80, `wider than 80 columns: ${line}`);

  const json = await runCli(['report', '--project', 'e2e-deploy', '--function', FN, '--json'], { env: { DATABASE_URL: ctx.db.url } });
  const body = JSON.parse(json.stdout);
  assert.equal(body.deployments.length, 3);
  assert.equal(body.latest_comparison.verdict, 'regression');
  assert.equal(body.latest_comparison.packages[0].package, CLIENT);
  assert.ok(body.function.init_cost_usd > 0);
});
