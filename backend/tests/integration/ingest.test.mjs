// POST /api/v1/ingest: what a valid record stores, idempotency, generated ids, the function upsert.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, fullRecord, minimalRecord, lit, uid, rawRequest, parseRawResponse, sleep } from './harness.mjs';

const ctx = useServer();

async function invocationRow(invocationId) {
  const rows = await ctx.rows(
    `SELECT i.*, extract(epoch FROM i.timestamp)::float8 AS epoch, p.slug AS project_slug,
            f.function_name AS f_name, f.project_id AS f_project_id
       FROM invocations i JOIN functions f ON f.id = i.function_id JOIN projects p ON p.id = i.project_id
      WHERE i.invocation_id = ${lit(invocationId)}`,
  );
  return rows;
}

async function functionRow(name) {
  const rows = await ctx.rows(`SELECT * FROM functions WHERE function_name = ${lit(name)}`);
  assert.ok(rows.length <= 1, `more than one functions row for ${name}`);
  return rows[0];
}

/** Polls fn() until check(value) holds (the server may touch function rows at most once a second). */
async function eventually(fn, check, timeoutMs = 8000) {
  const t0 = Date.now();
  let v;
  for (;;) {
    v = await fn();
    if (check(v)) return v;
    if (Date.now() - t0 > timeoutMs) return v;
    await sleep(200);
  }
}

test('a full record is acknowledged and stored column by column', async () => {
  const rec = fullRecord({ function_name: 'payment-service-full', timestamp: '2026-01-02T10:30:00.250Z' });
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { status: 'ok', invocation_id: rec.invocation_id });
  assert.ok(res.headers.get('x-request-id'));

  const rows = await invocationRow(rec.invocation_id);
  assert.equal(rows.length, 1, 'exactly one row');
  const r = rows[0];
  assert.equal(r.project_slug, ctx.projectSlug);
  assert.equal(r.f_name, rec.function_name);
  assert.equal(r.f_project_id, r.project_id);
  assert.equal(r.request_id, rec.request_id);
  assert.equal(r.epoch, Date.parse('2026-01-02T10:30:00.250Z') / 1000);
  assert.equal(r.cold_start, true);
  assert.equal(r.init_duration_ms, 2850);
  assert.equal(r.execution_duration_ms, 145);
  assert.equal(r.billed_duration_ms, 3000);
  assert.equal(r.memory_used_mb, 180);
  assert.equal(r.memory_allocated_mb, 512);
  assert.deepEqual(r.module_timings, rec.module_timings);
  assert.equal(r.runtime_version, 'nodejs18.x');
  assert.equal(r.architecture, 'x86_64');
  assert.equal(r.init_type, 'on-demand');
  assert.equal(r.start_kind, 'cold');
  assert.equal(r.sdk_version, '0.1.0');
  assert.equal(r.sdk_overhead_ms, 1.25);
  assert.deepEqual(r.module_tree, rec.module_tree);
  assert.ok(r.created_at);
});

test('the function row is created with runtime, region, memory and last_seen_at', async () => {
  const f = await eventually(
    () => functionRow('payment-service-full'),
    (row) => row?.last_seen_at,
  );
  assert.ok(f, 'functions row exists');
  assert.equal(f.runtime, 'nodejs18.x');
  assert.equal(f.region, 'eu-west-1');
  assert.equal(f.memory_allocated_mb, 512);
  assert.ok(f.first_seen_at);
  assert.ok(f.last_seen_at);
  const proj = await ctx.sql(`SELECT id FROM projects WHERE slug = ${lit(ctx.projectSlug)}`);
  assert.equal(f.project_id, proj);
});

test('a later record of the same function updates runtime, region and memory, never duplicating the function', async () => {
  const name = 'upsert-fn';
  const first = fullRecord({ function_name: name, runtime_version: 'nodejs18.x', region: 'us-east-1', memory_allocated_mb: 256 });
  assert.equal((await ctx.ingest(first)).status, 200);
  const f1 = await eventually(
    () => functionRow(name),
    (row) => row && row.region === 'us-east-1',
  );
  assert.equal(f1.runtime, 'nodejs18.x');
  assert.equal(f1.memory_allocated_mb, 256);
  await sleep(1200); // the server may touch a function row at most once a second
  const second = fullRecord({ function_name: name, runtime_version: 'nodejs20.x', region: 'ap-south-1', memory_allocated_mb: 1024 });
  assert.equal((await ctx.ingest(second)).status, 200);
  const f2 = await eventually(
    () => functionRow(name),
    (row) => row && row.runtime === 'nodejs20.x' && row.region === 'ap-south-1' && row.memory_allocated_mb === 1024,
  );
  assert.equal(f2.runtime, 'nodejs20.x', 'runtime follows the latest record');
  assert.equal(f2.region, 'ap-south-1', 'region follows the latest record');
  assert.equal(f2.memory_allocated_mb, 1024, 'memory follows the latest record');
  assert.equal(f2.id, f1.id, 'same function row');
  assert.ok(Date.parse(f2.last_seen_at) >= Date.parse(f1.last_seen_at));
  assert.equal(await ctx.count(`SELECT count(*) FROM functions WHERE function_name = ${lit(name)}`), 1);
  assert.equal(await ctx.count(`SELECT count(DISTINCT function_id) FROM invocations WHERE function_id = ${lit(f1.id)}`), 1);
});

test('a minimal record stores NULL for every optional column', async () => {
  const rec = minimalRecord({ function_name: 'minimal-fn' });
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { status: 'ok', invocation_id: rec.invocation_id });
  const [r] = await invocationRow(rec.invocation_id);
  assert.ok(r, 'row stored');
  assert.equal(r.cold_start, false);
  assert.equal(r.execution_duration_ms, 12);
  for (const col of [
    'request_id',
    'init_duration_ms',
    'billed_duration_ms',
    'memory_used_mb',
    'memory_allocated_mb',
    'module_timings',
    'runtime_version',
    'architecture',
    'init_type',
    'start_kind',
    'module_tree',
    'sdk_version',
    'sdk_overhead_ms',
  ]) {
    assert.equal(r[col], null, `${col} should be NULL`);
  }
});

test('explicit nulls for optional fields count as absent', async () => {
  const rec = minimalRecord({
    function_name: 'null-optionals',
    request_id: null,
    init_duration_ms: null,
    module_timings: null,
    architecture: null,
    region: null,
  });
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 200, res.text);
  const [r] = await invocationRow(rec.invocation_id);
  assert.equal(r.init_duration_ms, null);
  assert.equal(r.architecture, null);
});

test('unknown fields are ignored', async () => {
  const rec = minimalRecord({ function_name: 'unknown-fields', favourite_colour: 'blue', nested: { a: [1, 2] } });
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 200, res.text);
  assert.equal((await invocationRow(rec.invocation_id)).length, 1);
});

test('without invocation_id the server generates one, returns it and stores it', async () => {
  const rec = minimalRecord({ function_name: 'generated-ids' });
  delete rec.invocation_id;
  const a = await ctx.ingest(rec);
  const b = await ctx.ingest(rec);
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.equal(a.json.status, 'ok');
  for (const r of [a, b]) {
    assert.equal(typeof r.json.invocation_id, 'string');
    assert.ok(r.json.invocation_id.length > 0 && r.json.invocation_id.length <= 255);
  }
  assert.notEqual(a.json.invocation_id, b.json.invocation_id, 'each generated id is new');
  assert.equal((await invocationRow(a.json.invocation_id)).length, 1);
  assert.equal((await invocationRow(b.json.invocation_id)).length, 1);
});

test('the same record sent twice is stored once and both sends get 200', async () => {
  const rec = fullRecord({ function_name: 'idempotent-fn' });
  const a = await ctx.ingest(rec);
  const b = await ctx.ingest(rec);
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.deepEqual(b.json, { status: 'ok', invocation_id: rec.invocation_id });
  assert.equal((await invocationRow(rec.invocation_id)).length, 1);
});

test('concurrent duplicates of one record still make one row', async () => {
  const rec = minimalRecord({ function_name: 'idempotent-concurrent' });
  const all = await Promise.all(Array.from({ length: 20 }, () => ctx.ingest(rec)));
  for (const r of all) assert.equal(r.status, 200, r.text);
  assert.equal((await invocationRow(rec.invocation_id)).length, 1);
});

test('the same invocation_id with another timestamp or another function is a different record', async () => {
  const id = uid('shared');
  const a = minimalRecord({ function_name: 'idem-a', invocation_id: id, timestamp: '2026-01-02T10:00:00Z' });
  const b = { ...a, timestamp: '2026-01-02T10:00:01Z' };
  const c = { ...a, function_name: 'idem-b' };
  for (const r of [a, b, c]) assert.equal((await ctx.ingest(r)).status, 200);
  assert.equal((await invocationRow(id)).length, 3);
});

test('timestamps with an offset are stored as the same instant', async () => {
  const rec = minimalRecord({ function_name: 'tz-fn', timestamp: '2026-01-02T12:30:00.5+02:00' });
  assert.equal((await ctx.ingest(rec)).status, 200);
  const [r] = await invocationRow(rec.invocation_id);
  assert.equal(r.epoch, Date.parse('2026-01-02T10:30:00.500Z') / 1000);
});

test('non-ASCII function names and module names are stored exactly', async () => {
  const name = 'función-日本-🚀';
  const timings = { 'ñ-module': 1.5, '@scope/π': 0, './src/данные': 7 };
  const rec = minimalRecord({ function_name: name, module_timings: timings });
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 200, res.text);
  const [r] = await invocationRow(rec.invocation_id);
  assert.equal(r.f_name, name);
  assert.deepEqual(r.module_timings, timings);
});

test('a body without Content-Type is accepted; application/json with charset too', async () => {
  const rec = minimalRecord({ function_name: 'no-content-type' });
  const body = Buffer.from(JSON.stringify(rec));
  const raw = await rawRequest(
    ctx.server.port,
    `POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${ctx.key}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n` +
      body.toString('latin1'),
  );
  const parsed = parseRawResponse(raw.data);
  assert.ok(parsed, `no HTTP response: ${raw.data.slice(0, 200)}`);
  assert.equal(parsed.status, 200, parsed.body);
  const rec2 = minimalRecord({ function_name: 'no-content-type' });
  const res = await ctx.ingest(JSON.stringify(rec2), { headers: { 'Content-Type': 'application/json; charset=utf-8' } });
  assert.equal(res.status, 200, res.text);
  assert.equal(
    await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${lit(rec.invocation_id)}, ${lit(rec2.invocation_id)})`),
    2,
  );
});

test('an ingest request is logged with request_id, method, path, status and duration', async () => {
  const res = await ctx.ingest(minimalRecord({ function_name: 'logged-fn' }));
  assert.equal(res.status, 200);
  const rid = res.headers.get('x-request-id');
  const line = await ctx.server.waitForLog((l) => l.request_id === rid && l.status !== undefined, 10000);
  assert.ok(line, `no request log line for ${rid}. ${ctx.server.describe()}`);
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/api/v1/ingest');
  assert.equal(Number(line.status), 200);
  assert.equal(typeof line.duration_ms, 'number');
});
