// GET /metrics: Prometheus text on its own listener (METRICS_PORT), never on the API listener.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, http, minimalRecord, uid, useServer } from './harness.mjs';

const metricsPort = await freePort();
const ctx = useServer({ env: { METRICS_PORT: metricsPort, RATE_LIMIT_QUERY: 2 } });

function sample(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (want.every((l) => line.includes(l))) return Number(line.split(' ').pop());
  }
  return undefined;
}

test('counters follow what the server did', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await ctx.ingest(minimalRecord({ invocation_id: uid() }))).status, 200);
  const batch = await ctx.batch({ invocations: [minimalRecord({ invocation_id: uid() }), minimalRecord({ invocation_id: uid() })] });
  assert.equal(batch.status, 200);
  assert.equal((await ctx.get('/nowhere')).status, 404);
  for (let i = 0; i < 3; i++) await ctx.get('/api/v1/api-keys', { headers: { 'X-API-Key': ctx.key } });
  const res = await http(`http://127.0.0.1:${metricsPort}`, 'GET', '/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get?.('content-type') ?? res.headers['content-type'] ?? '', /text\/plain/);
  const m = res.text;
  assert.equal(sample(m, 'csa_http_requests_total', { route: '/api/v1/ingest', status: '200' }), 3);
  assert.equal(sample(m, 'csa_http_requests_total', { route: '/api/v1/ingest/batch', status: '200' }), 1);
  assert.equal(sample(m, 'csa_http_requests_total', { route: 'unmatched', status: '404' }), 1);
  assert.equal(sample(m, 'csa_http_requests_total', { route: '/api/v1/api-keys', method: 'GET', status: '429' }), 1);
  assert.equal(sample(m, 'csa_rate_limited_total', { class: 'query' }), 1);
  assert.equal(sample(m, 'csa_rows_written_total'), 5);
  assert.equal(sample(m, 'csa_http_request_duration_seconds_count', { route: '/api/v1/ingest' }), 3);
  assert.equal(sample(m, 'csa_http_request_duration_seconds_bucket', { route: '/api/v1/ingest', le: '+Inf' }), 3);
  assert.ok(sample(m, 'csa_writer_groups_total', { outcome: 'committed' }) >= 1);
  assert.equal(sample(m, 'csa_db_pool_connections', { state: 'size' }), 10);
});

test('the API listener does not serve /metrics', async () => {
  assert.equal((await ctx.get('/metrics')).status, 404);
});
