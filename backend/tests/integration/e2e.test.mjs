// End to end: real Lambda-style handlers with real npm dependencies (examples/), instrumented by
// the real SDK (sdk/, built), run in fresh Node.js processes by examples/invoke.mjs, sending to
// the real coldstartd, stored in the real PostgreSQL, and analysed by the read API.
// Needs `cd sdk && npm ci && npm run build` and `cd examples && npm ci` (scripts/test.sh does both).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, useServer } from './harness.mjs';

const ctx = useServer({ projectName: 'End to End', slug: 'e2e' });
const COLD = 3;
const WARM = 2;

function invoke(fn) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'examples/invoke.mjs'), fn, '--cold', String(COLD), '--warm', String(WARM)], {
    env: { ...process.env, COLDSTART_API_KEY: ctx.key, COLDSTART_ENDPOINT: ctx.base },
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.equal(r.status, 0, `invoke.mjs ${fn} failed: ${r.stderr}`);
}

test('the examples and the built SDK are in place', () => {
  assert.ok(existsSync(path.join(REPO, 'sdk/dist/index.cjs')), 'sdk/dist missing: run npm run build in sdk/');
  assert.ok(existsSync(path.join(REPO, 'examples/node_modules/aws-sdk')), 'examples/node_modules missing: run npm ci in examples/');
});

test('an AWS SDK v2 handler: every cold and warm record is stored once, with its module breakdown', async () => {
  invoke('orders-v2');
  const records = await ctx.rows(`SELECT i.cold_start AS cold, i.start_kind AS kind, i.init_duration_ms AS init,
      i.module_timings AS modules, i.sdk_version AS sdk, i.runtime_version AS runtime, i.architecture AS arch,
      i.memory_allocated_mb AS mem, i.request_id AS request, i.module_tree IS NOT NULL AS tree
    FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = 'orders-v2'`);
  const cold = records.filter((r) => r.cold);
  const warm = records.filter((r) => !r.cold);
  assert.equal(cold.length, COLD, 'one cold-start record per environment');
  assert.equal(warm.length, COLD * WARM, 'every warm invocation (sampleRate 1)');
  for (const r of cold) {
    assert.equal(r.kind, 'cold');
    assert.ok(r.init > 0, `init_duration_ms ${r.init}`);
    assert.ok(r.tree, 'module_tree sent with the cold start');
    assert.match(r.sdk, /^\d+\.\d+\.\d+/);
    assert.equal(r.mem, 512);
    assert.match(r.runtime, /^nodejs\d+\.x$/);
    assert.ok(['x86_64', 'arm64'].includes(r.arch));
    // the three dependencies, with the AWS SDK v2 the heaviest of them
    for (const pkg of ['aws-sdk', 'moment', 'lodash']) assert.ok(r.modules[pkg] > 0, `${pkg} missing from ${JSON.stringify(r.modules)}`);
    assert.ok(r.modules['aws-sdk'] > r.modules.moment && r.modules['aws-sdk'] > r.modules.lodash, JSON.stringify(r.modules));
    // self times add up to no more than the init they are part of
    const sum = Object.values(r.modules).reduce((a, b) => a + b, 0);
    assert.ok(sum <= r.init + 1, `module self times ${sum} ms exceed init ${r.init} ms`);
  }
  for (const r of warm) {
    assert.equal(r.kind, 'warm');
    assert.equal(r.init, null);
  }
  assert.equal(new Set(records.map((r) => r.request)).size, records.length, 'request ids are distinct');
});

test('the read API analyses it: aws-sdk first, and the v2 rule recommends the modular v3 clients', async () => {
  const list = await ctx.get('/api/v1/functions?name_prefix=orders-v2', { headers: { 'X-API-Key': ctx.key } });
  assert.equal(list.status, 200, list.text);
  const fn = list.json.functions[0];
  assert.equal(fn.function_name, 'orders-v2');
  assert.equal(fn.cold_start_stats.cold_starts_24h, COLD);
  const detail = await ctx.get(`/api/v1/functions/${fn.id}`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(detail.status, 200, detail.text);
  assert.equal(detail.json.cold_starts, COLD);
  assert.equal(Object.keys(detail.json.module_breakdown)[0], 'aws-sdk', Object.keys(detail.json.module_breakdown).join(', '));
  assert.match(detail.json.module_breakdown['aws-sdk'].version ?? '', /^2\./, 'the version comes from the SDK module trees');
  const rec = detail.json.recommendations.find((r) => r.module === 'aws-sdk');
  assert.ok(rec, JSON.stringify(detail.json.recommendations));
  assert.ok(rec.potential_savings_ms > 0);
});

test('the rewrite with the fixes starts faster in module loading', async () => {
  invoke('orders-v3');
  const [[v2], [v3]] = await Promise.all(
    ['orders-v2', 'orders-v3'].map((n) =>
      ctx.rows(`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS median FROM (
          SELECT (SELECT sum(value::float8) FROM jsonb_each(i.module_timings)) AS s
          FROM invocations i JOIN functions f ON f.id = i.function_id
          WHERE f.function_name = '${n}' AND i.cold_start) x`),
    ),
  );
  assert.ok(v2.median > 0 && v3.median > 0, JSON.stringify({ v2, v3 }));
  assert.ok(v3.median < v2.median, `median module-load time v3 ${v3.median} ms vs v2 ${v2.median} ms`);
});
