// GET /api/v1/health: shape, no key needed, request ids, one JSON log line per request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './harness.mjs';

const ctx = useServer();

test('health answers 200 healthy with version, UTC timestamp and database ok', async () => {
  const res = await ctx.get('/api/v1/health');
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assert.equal(res.json.status, 'healthy');
  assert.equal(res.json.version, '1.0.0');
  assert.equal(res.json.database, 'ok');
  assert.match(res.json.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const skew = Math.abs(Date.parse(res.json.timestamp) - Date.now());
  assert.ok(skew < 60000, `health timestamp is ${skew} ms away from now`);
});

test('health needs no API key and ignores a bad one', async () => {
  const res = await ctx.get('/api/v1/health', { headers: { 'X-API-Key': 'csa_not_a_real_key' } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'healthy');
});

test('every response carries a distinct X-Request-Id', async () => {
  const a = await ctx.get('/api/v1/health');
  const b = await ctx.get('/api/v1/health');
  const c = await ctx.get('/api/v1/does-not-exist');
  const ids = [a, b, c].map((r) => r.headers.get('x-request-id'));
  for (const id of ids) assert.ok(id && id.length >= 8, `X-Request-Id missing or short: ${id}`);
  assert.equal(new Set(ids).size, 3, `request ids repeat: ${ids}`);
});

test('stderr is one JSON object per line, and each request is logged with its fields', async () => {
  const res = await ctx.get('/api/v1/no-such-route-for-logging');
  assert.equal(res.status, 404);
  const rid = res.headers.get('x-request-id');
  const line = await ctx.server.waitForLog((l) => l.request_id === rid, 10000);
  assert.ok(line, `no log line with request_id ${rid}. ${ctx.server.describe()}`);
  assert.equal(line.method, 'GET');
  assert.equal(line.path, '/api/v1/no-such-route-for-logging');
  assert.equal(Number(line.status), 404);
  assert.equal(typeof line.duration_ms, 'number');
  assert.ok(line.duration_ms >= 0);
  const notJson = ctx.server.logs.filter((l) => l._raw !== undefined);
  assert.deepEqual(notJson, [], 'stderr lines that are not JSON objects');
});
