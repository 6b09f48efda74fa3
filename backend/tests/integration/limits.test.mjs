// Routing and limits: 404, 405 + Allow, 415, 413, the whole-request deadline, the connection cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  useServer,
  startServer,
  minimalRecord,
  assertErrorBody,
  rawRequest,
  parseRawResponse,
  sleep,
  lit,
  acceptedConnections,
  trickle,
} from './harness.mjs';

// REQUEST_TIMEOUT=2 also closes idle keep-alive connections after ~2 s: use a new connection per
// request so that no POST races such a close.
const ctx = useServer({ env: { REQUEST_TIMEOUT: 2 }, freshConnections: true });

// (GET / is the web UI: ui.test.mjs)
for (const [method, path] of [
  ['GET', '/no-such-page'],
  ['GET', '/assets/no-such-file.js'],
  ['POST', '/'],
  ['GET', '/api/v1/nope'],
  ['POST', '/api/v1/ingestx'],
  ['GET', '/api/v2/health'],
  ['POST', '/api/v1/ingest/batch/extra'],
]) {
  test(`${method} ${path} is 404 NOT_FOUND`, async () => {
    const res = await ctx.request(method, path, { headers: { 'X-API-Key': ctx.key } });
    assertErrorBody(res, 404, 'NOT_FOUND', `${method} ${path}`);
  });
}

for (const [method, path, allowed] of [
  ['GET', '/api/v1/ingest', 'POST'],
  ['PUT', '/api/v1/ingest', 'POST'],
  ['DELETE', '/api/v1/ingest/batch', 'POST'],
  ['GET', '/api/v1/ingest/batch', 'POST'],
  ['POST', '/api/v1/health', 'GET'],
  ['DELETE', '/api/v1/health', 'GET'],
]) {
  test(`${method} ${path} is 405 METHOD_NOT_ALLOWED with Allow: ${allowed}`, async () => {
    const res = await ctx.request(method, path, { headers: { 'X-API-Key': ctx.key } });
    assertErrorBody(res, 405, 'METHOD_NOT_ALLOWED', `${method} ${path}`);
    const allow = res.headers.get('allow');
    assert.ok(allow, 'no Allow header');
    assert.ok(
      allow
        .split(',')
        .map((s) => s.trim())
        .includes(allowed),
      `Allow: ${allow}`,
    );
    assert.ok(
      !allow
        .split(',')
        .map((s) => s.trim())
        .includes(method),
      `Allow lists the refused method: ${allow}`,
    );
  });
}

for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
  test(`Content-Type ${ct} is 415 UNSUPPORTED_MEDIA_TYPE and stores nothing`, async () => {
    const rec = minimalRecord({ function_name: 'media-type' });
    const res = await ctx.ingest(JSON.stringify(rec), { headers: { 'Content-Type': ct } });
    assertErrorBody(res, 415, 'UNSUPPORTED_MEDIA_TYPE', ct);
    const resB = await ctx.batch(JSON.stringify({ invocations: [rec] }), { headers: { 'Content-Type': ct } });
    assertErrorBody(resB, 415, 'UNSUPPORTED_MEDIA_TYPE', ct + ' (batch)');
    assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(rec.invocation_id)}`), 0);
  });
}

const MiB = 1024 * 1024;
/** A valid record whose JSON is about `bytes` long (padding in an unknown field, which the server
 * ignores: module_tree has a cap of its own, 64 KiB). */
function paddedRecord(bytes, overrides = {}) {
  const rec = minimalRecord({ function_name: 'big-body', ...overrides, pad: '' });
  const base = JSON.stringify(rec).length;
  rec.pad = 'p'.repeat(Math.max(0, bytes - base));
  return rec;
}

test('a single record just under 1 MiB is accepted', async () => {
  const rec = paddedRecord(MiB - 4096);
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 200, res.text.slice(0, 300));
});

test('module_tree has a cap of its own: over 64 KiB is 400 too_long, stores nothing', async () => {
  const rec = minimalRecord({ function_name: 'big-tree', module_tree: { name: 'root', pad: 'p'.repeat(65 * 1024) } });
  const res = await ctx.ingest(rec);
  assert.equal(res.status, 400, res.text.slice(0, 300));
  assert.deepEqual(
    res.json.errors.map((e) => [e.loc.join('.'), e.type]),
    [['body.module_tree', 'too_long']],
  );
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(rec.invocation_id)}`), 0);
});

test('a single body over 1 MiB is 413 PAYLOAD_TOO_LARGE', async () => {
  const rec = paddedRecord(MiB + 1024);
  const res = await ctx.ingest(rec);
  assertErrorBody(res, 413, 'PAYLOAD_TOO_LARGE', 'single > 1 MiB');
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(rec.invocation_id)}`), 0);
  const health = await ctx.get('/api/v1/health');
  assert.equal(health.status, 200, 'server still healthy after a 413');
});

test('a declared Content-Length over the limit is refused with 413 before the body is sent', async () => {
  const raw = await rawRequest(
    ctx.server.port,
    `POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${ctx.key}\r\nContent-Type: application/json\r\nContent-Length: ${50 * MiB}\r\n\r\n{`,
    { timeoutMs: 10000 },
  );
  const parsed = parseRawResponse(raw.data);
  assert.ok(parsed, `no HTTP response within 10 s (closed=${raw.closed}): ${raw.data.slice(0, 200)}`);
  assert.equal(parsed.status, 413, raw.data.slice(0, 300));
  assert.match(parsed.headers['content-type'] || '', /application\/json/, `413 is not in the JSON error format: ${raw.data.slice(0, 300)}`);
  assert.ok(parsed.headers['x-request-id'], `413 without X-Request-Id: ${raw.data.slice(0, 300)}`);
  let body = null;
  try {
    body = JSON.parse(parsed.body);
  } catch {}
  assert.equal(body?.error_code, 'PAYLOAD_TOO_LARGE', raw.data.slice(0, 300));
});

test('a batch of about 5 MiB is accepted (the batch limit is 10 MiB, not 1 MiB)', async () => {
  const items = Array.from({ length: 500 }, () => paddedRecord(10 * 1024, { function_name: 'big-batch' }));
  const res = await ctx.batch({ invocations: items });
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.equal(res.json.processed, 500);
});

test('a batch body over 10 MiB is 413 PAYLOAD_TOO_LARGE', async () => {
  const items = Array.from({ length: 100 }, () => paddedRecord(110 * 1024, { function_name: 'too-big-batch' }));
  const res = await ctx.batch({ invocations: items });
  assertErrorBody(res, 413, 'PAYLOAD_TOO_LARGE', 'batch > 10 MiB');
  assert.equal(
    await ctx.count(`SELECT count(*) FROM functions f JOIN invocations i ON i.function_id = f.id WHERE f.function_name = 'too-big-batch'`),
    0,
  );
});

async function healthWhile(promise) {
  const results = [];
  let settled = false;
  promise.finally(() => (settled = true));
  await sleep(300);
  while (!settled && results.length < 5) {
    const t0 = Date.now();
    const r = await ctx.get('/api/v1/health', { timeoutMs: 5000 });
    results.push({ status: r.status, ms: Date.now() - t0 });
    await sleep(200);
  }
  return results;
}

test('a client trickling its headers is cut off by REQUEST_TIMEOUT=2 while others are served', async () => {
  const slow = trickle(
    ctx.server.port,
    'POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n',
    'X-Slow-Header: abcdefghijklmnopqrstuvwxyz\r\n',
    200,
    20000,
  );
  const served = await healthWhile(slow);
  const r = await slow;
  assert.ok(r.closedByServer, `the trickling connection was still open after ${r.ms} ms`);
  assert.ok(r.ms >= 1500, `cut off after ${r.ms} ms: before the 2 s deadline?`);
  assert.ok(r.ms < 12000, `cut off only after ${r.ms} ms with REQUEST_TIMEOUT=2`);
  assert.ok(served.length > 0, 'no health request was made while the slow client was connected');
  for (const s of served) assert.equal(s.status, 200);
});

test('a client trickling its body is cut off by REQUEST_TIMEOUT=2 and nothing is stored', async () => {
  const rec = minimalRecord({ function_name: 'trickled-body' });
  const body = JSON.stringify(rec);
  const head = `POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${ctx.key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const slow = trickle(ctx.server.port, head, body.split(''), 150, 20000);
  const served = await healthWhile(slow);
  const r = await slow;
  assert.ok(r.closedByServer, `the trickling connection was still open after ${r.ms} ms`);
  assert.ok(r.ms >= 1500 && r.ms < 12000, `cut off after ${r.ms} ms with REQUEST_TIMEOUT=2`);
  assert.ok(body.length * 150 > 12000, 'the body takes longer to trickle than the deadline');
  for (const s of served) assert.equal(s.status, 200);
  if (r.data) {
    const parsed = parseRawResponse(r.data);
    if (parsed) assert.notEqual(parsed.status, 200, 'a trickled request must not be acknowledged');
  }
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(rec.invocation_id)}`), 0);
});

test('an idle connection that never sends a byte is closed by the deadline', async () => {
  const r = await rawRequest(ctx.server.port, [], { timeoutMs: 15000 });
  assert.ok(r.closed, 'idle connection still open after 15 s');
  assert.ok(r.ms < 12000, `closed only after ${r.ms} ms`);
});

test('MAX_CONNECTIONS caps the connections the server holds, and it serves again once they go', async () => {
  const server = await startServer({ dbUrl: ctx.db.url, env: { MAX_CONNECTIONS: 8, REQUEST_TIMEOUT: 30 } });
  const socks = [];
  try {
    for (let i = 0; i < 40; i++) {
      const s = net.connect(server.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    await sleep(2000);
    const held = acceptedConnections(server.pid, server.port);
    assert.ok(held <= 8, `the server holds ${held} client connections with MAX_CONNECTIONS=8`);
  } finally {
    for (const s of socks) s.destroy();
  }
  let ok = null;
  for (let i = 0; i < 40 && !ok; i++) {
    try {
      const r = await server.request('GET', '/api/v1/health', { timeoutMs: 3000 });
      if (r.status === 200) ok = r;
    } catch {}
    if (!ok) await sleep(250);
  }
  assert.ok(ok, 'the server did not serve again after the idle connections closed');
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.describe());
});

test('the server is healthy after all of the above', async () => {
  const r = await ctx.get('/api/v1/health');
  assert.equal(r.status, 200);
});
