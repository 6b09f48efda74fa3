// Limits built for issue 19 that only a real server shows: the writer's queue bounded in bytes
// (WRITER_QUEUE_MAX_BYTES: 503 with Retry-After, nothing of the refused request stored), whose
// address the failed-authentication limit counts (X-Forwarded-For / X-Real-IP only from
// TRUSTED_PROXIES), and chunked request bodies (accepted within the limit, 413 beyond it, the key
// checked before the body is read).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  useServer,
  startServer,
  minimalRecord,
  rawRequest,
  parseRawResponse,
  psql,
  sleep,
  lit,
  assertErrorBody,
  http,
} from './harness.mjs';

const ctx = useServer({ env: { WRITER_QUEUE_MAX_BYTES: 1048576, MAX_BODY_SINGLE: 100000 } });

const stored = (ids) => ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${ids.map(lit).join(',')})`);

/** A batch of `n` records of about 4 KiB each (100 module timings); its invocation ids. */
function fatBatch(n, name) {
  const module_timings = {};
  for (let k = 0; k < 100; k++) module_timings[`node_modules/some-package-${k}/index.js`] = k;
  const invocations = Array.from({ length: n }, () =>
    minimalRecord({ function_name: name, cold_start: true, init_duration_ms: 900, module_timings }),
  );
  return { body: { invocations }, ids: invocations.map((r) => r.invocation_id) };
}

test('WRITER_QUEUE_MAX_BYTES: while the writer is stuck, batches past the byte bound get 503 + Retry-After and store nothing; the rest commit', async () => {
  // hold the writer: a transaction locks the invocations table until the test ends it
  const lock = psql(
    ctx.db.url,
    "SET application_name = 'csa_gate_lock'; BEGIN; LOCK TABLE invocations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;",
    { timeoutMs: 130000 },
  ).catch(() => 'ended');
  for (let i = 0; ; i++) {
    const held = await ctx.count(
      "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'invocations' AND l.mode = 'AccessExclusiveLock' AND l.granted",
    );
    if (held > 0) break;
    assert.ok(i < 200, 'the lock was never taken');
    await sleep(50);
  }
  // six batches of about 400 KB: the writer holds at most 1 MiB of them (the first ones taken are
  // stuck behind the lock), so at least three are refused at once
  const batches = Array.from({ length: 6 }, (_, i) => fatBatch(100, `queue-bytes-${i}`));
  const bytes = JSON.stringify(batches[0].body).length;
  assert.ok(bytes > 350000 && bytes < 600000, `a batch is ${bytes} bytes`);
  let answered = 0;
  const pending = batches.map((b) => ctx.batch(b.body, { key: ctx.ingestKey, timeoutMs: 120000, fresh: true }).finally(() => answered++));
  for (const until = Date.now() + 60000; answered < 3 && Date.now() < until; ) await sleep(50);
  await psql(ctx.db.url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'csa_gate_lock'");
  await lock;
  const answers = await Promise.all(pending);
  const statuses = answers.map((r) => r.status);
  assert.ok(
    statuses.every((s) => s === 200 || s === 503),
    `statuses ${statuses}`,
  );
  const refused = answers.filter((r) => r.status === 503);
  assert.ok(refused.length >= 3, `only ${refused.length} of 6 batches were refused with 1 MiB for 2.4 MB: ${statuses}`);
  assert.ok(statuses.filter((s) => s === 200).length >= 1, `none was accepted: ${statuses}`);
  for (const r of refused) {
    assertErrorBody(r, 503, 'SERVICE_UNAVAILABLE');
    assert.equal(r.headers.get('retry-after'), '1');
    assert.match(r.json.detail, /overloaded; nothing was stored/);
  }
  const rows = await ctx.rows(
    "SELECT f.function_name AS name, count(*)::int AS n FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name LIKE 'queue-bytes-%' GROUP BY 1",
  );
  const storedOf = Object.fromEntries(rows.map((r) => [r.name, r.n]));
  for (let i = 0; i < batches.length; i++) {
    const want = answers[i].status === 200 ? 100 : 0;
    assert.equal(storedOf[`queue-bytes-${i}`] ?? 0, want, `batch ${i} answered ${answers[i].status}`);
  }
  // with the writer free again, the same batch is accepted
  const again = await ctx.batch(batches[answers.findIndex((r) => r.status === 503)].body, { key: ctx.ingestKey, fresh: true });
  assert.equal(again.status, 200, again.text);
});

/** A new random well-formed key: unknown, so each one is looked up (a refused key is cached as such). */
const randomKey = () =>
  'csa_' +
  randomBytes(24)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, 'x')
    .slice(0, 32);

/** A request with an unknown key from the test's loopback address, claiming `headers`. */
const badKey = (server, headers) =>
  http(server.base, 'GET', '/api/v1/functions', { headers: { 'X-API-Key': randomKey(), ...headers }, fresh: true });

test('TRUSTED_PROXIES: X-Forwarded-For and X-Real-IP name the client for AUTH_FAIL_LIMIT only when the peer is a trusted proxy', async () => {
  const env = { AUTH_FAIL_LIMIT: 3, AUTH_FAIL_WINDOW: 60 };
  // behind a trusted proxy (the test's 127.0.0.1): each forwarded address has its own count
  const proxied = await startServer({ dbUrl: ctx.db.url, env: { ...env, TRUSTED_PROXIES: '127.0.0.1' } });
  const validKey = () =>
    http(proxied.base, 'GET', '/api/v1/functions', { headers: { 'X-API-Key': ctx.key, 'X-Forwarded-For': '10.0.0.1' } });
  try {
    assert.equal((await validKey()).status, 200); // now in the key cache
    for (let i = 0; i < 3; i++) assert.equal((await badKey(proxied, { 'X-Forwarded-For': '203.0.113.7, 10.0.0.1' })).status, 401);
    const blocked = await badKey(proxied, { 'X-Forwarded-For': '203.0.113.7, 10.0.0.1' });
    assertErrorBody(blocked, 429, 'RATE_LIMIT_ERROR', 'the address 10.0.0.1 after 3 failures');
    assert.match(blocked.json.detail, /failed authentications/);
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    // the last entry is the client's (the one the proxy appended); another address is not blocked
    assert.equal((await badKey(proxied, { 'X-Forwarded-For': '10.0.0.1, 10.0.0.2' })).status, 401);
    // X-Real-IP wins over X-Forwarded-For
    assert.equal((await badKey(proxied, { 'X-Real-IP': '10.0.0.3', 'X-Forwarded-For': '10.0.0.1' })).status, 401);
    // a key known valid is never blocked, whatever the address
    const ok = await validKey();
    assert.equal(ok.status, 200, ok.text);
  } finally {
    assert.deepEqual(await proxied.stop(), { code: 0, signal: null });
  }
  // without TRUSTED_PROXIES the headers are ignored: every failure counts against the peer
  const direct = await startServer({ dbUrl: ctx.db.url, env });
  try {
    for (let i = 0; i < 3; i++)
      assert.equal((await badKey(direct, { 'X-Forwarded-For': `10.0.1.${i}`, 'X-Real-IP': `10.0.2.${i}` })).status, 401);
    const blocked = await badKey(direct, { 'X-Forwarded-For': '10.0.1.99', 'X-Real-IP': '10.0.2.99' });
    assertErrorBody(blocked, 429, 'RATE_LIMIT_ERROR', 'a client cannot pick its own address');
  } finally {
    assert.deepEqual(await direct.stop(), { code: 0, signal: null });
  }
});

/** A chunked request body: `body` split into chunks of `size` bytes. */
function chunked(body, size) {
  let out = '';
  for (let i = 0; i < body.length; i += size) {
    const part = body.slice(i, i + size);
    out += `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`;
  }
  return out + '0\r\n\r\n';
}

const chunkedHead = (key, pathname = '/api/v1/ingest') =>
  `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${key}\r\nContent-Type: application/json\r\n` +
  'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n';

test('a chunked body within the limit is accepted and stored', async () => {
  const rec = minimalRecord({ function_name: 'chunked-ok', module_timings: { a: 1, b: 2 } });
  const raw = await rawRequest(ctx.server.port, [chunkedHead(ctx.ingestKey), chunked(JSON.stringify(rec), 17)]);
  const res = parseRawResponse(raw.data);
  assert.equal(res?.status, 200, raw.data.slice(0, 300));
  assert.equal(JSON.parse(res.body).invocation_id, rec.invocation_id);
  assert.equal(await stored([rec.invocation_id]), 1);
});

test('a chunked body past MAX_BODY_SINGLE is 413 in the JSON format and stores nothing', async () => {
  const rec = minimalRecord({ function_name: 'chunked-large', request_id: 'r'.repeat(200) });
  rec.module_timings = {};
  for (let k = 0; k < 2000; k++) rec.module_timings[`node_modules/package-number-${k}/lib/index.js`] = k; // ~90 KB
  const body = JSON.stringify(rec);
  assert.ok(body.length > 100000, `${body.length} bytes`);
  const raw = await rawRequest(ctx.server.port, [chunkedHead(ctx.ingestKey), chunked(body, 8192)]);
  const res = parseRawResponse(raw.data);
  assert.equal(res?.status, 413, raw.data.slice(0, 300));
  const json = JSON.parse(res.body.slice(0, Number(res.headers['content-length'])));
  assert.equal(json.error_code, 'PAYLOAD_TOO_LARGE');
  assert.match(json.detail, /exceeds the limit of 100000 bytes/);
  assert.equal(await stored([rec.invocation_id]), 0);
});

test('a chunked body with an unknown key is refused (401) before the body is read', async () => {
  // the head and the first chunk only: with a valid key the server would wait for the rest
  const first = '2000\r\n' + 'x'.repeat(0x2000) + '\r\n';
  const raw = await rawRequest(ctx.server.port, [chunkedHead('csa_' + 'y'.repeat(32)), first], { timeoutMs: 8000 });
  const res = parseRawResponse(raw.data);
  assert.equal(res?.status, 401, `got ${JSON.stringify(raw.data.slice(0, 300))} after ${raw.ms} ms`);
  assert.equal(JSON.parse(res.body.slice(0, Number(res.headers['content-length']))).error_code, 'AUTHENTICATION_ERROR');
  assert.ok(raw.closed && raw.ms < 8000, `the connection stayed open ${raw.ms} ms`);
  // the same with a valid key waits for the rest of the body (nothing answered yet)
  const waiting = await rawRequest(ctx.server.port, [chunkedHead(ctx.ingestKey), first], { timeoutMs: 1500 });
  assert.equal(waiting.data, '', `answered before the body was complete: ${waiting.data.slice(0, 200)}`);
  assert.equal(waiting.closed, false);
});
