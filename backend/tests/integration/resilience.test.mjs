// Under load and in trouble: many concurrent ingests, SIGTERM with requests in flight, PostgreSQL
// unreachable at start, and PostgreSQL lost and back while running (through a TCP proxy in this
// process, so the shared PostgreSQL is never stopped).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  useServer,
  startServer,
  minimalRecord,
  assertErrorBody,
  mapLimit,
  uid,
  lit,
  sleep,
  freePort,
  http,
  ADMIN_URL,
} from './harness.mjs';

const ctx = useServer();

test('2000 concurrent ingests with distinct ids: all 200 and exactly 2000 rows', async () => {
  const records = Array.from({ length: 2000 }, (_, i) => minimalRecord({ function_name: `load-${i % 4}`, invocation_id: uid('load') }));
  const statuses = await mapLimit(records, 128, async (rec) => {
    try {
      return (await ctx.ingest(rec, { timeoutMs: 60000 })).status;
    } catch (e) {
      return 'error: ' + (e.cause?.code || e.message);
    }
  });
  const tally = {};
  for (const s of statuses) tally[s] = (tally[s] || 0) + 1;
  assert.deepEqual(tally, { 200: 2000 });
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id LIKE 'load-%'`), 2000);
  assert.equal(await ctx.count(`SELECT count(*) FROM functions WHERE function_name LIKE 'load-%'`), 4);
});

test('SIGTERM with requests in flight: exit 0 and every acknowledged record is committed', async () => {
  const server = await startServer({ dbUrl: ctx.db.url });
  const acked = [];
  const other = {};
  let stop = false;
  const loop = async (n) => {
    let i = 0;
    while (!stop) {
      const single = i % 5 !== 4;
      const recs = single
        ? [minimalRecord({ function_name: 'drain', invocation_id: `drain-${n}-${i}` })]
        : Array.from({ length: 20 }, (_, j) => minimalRecord({ function_name: 'drain', invocation_id: `drain-${n}-${i}-${j}` }));
      i++;
      try {
        const res = single
          ? await http(server.base, 'POST', '/api/v1/ingest', { body: recs[0], headers: { 'X-API-Key': ctx.key }, timeoutMs: 30000 })
          : await http(server.base, 'POST', '/api/v1/ingest/batch', {
              body: { invocations: recs },
              headers: { 'X-API-Key': ctx.key },
              timeoutMs: 30000,
            });
        if (res.status === 200) acked.push(...recs.map((r) => r.invocation_id));
        else other[res.status] = (other[res.status] || 0) + 1;
      } catch (e) {
        const code = e.cause?.code || e.name;
        other[code] = (other[code] || 0) + 1;
        if (server.exit) return; // the server is gone: stop this client
        await sleep(20);
      }
    }
  };
  const loops = Array.from({ length: 32 }, (_, n) => loop(n));
  // wait until load is flowing, then pull the plug
  const t0 = Date.now();
  while (acked.length < 500 && Date.now() - t0 < 20000) await sleep(50);
  assert.ok(acked.length > 0, 'no request was acknowledged before SIGTERM');
  const exitPromise = server.stop(45000);
  const exit = await exitPromise;
  stop = true;
  await Promise.all(loops);
  assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM. ${server.describe()}`);
  // every acknowledged id is in the database
  const ids = [...new Set(acked)];
  const stored = new Set();
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    const out = await ctx.sql(`SELECT invocation_id FROM invocations WHERE invocation_id IN (${chunk.map(lit).join(',')})`);
    for (const id of out.split('\n')) if (id) stored.add(id);
  }
  const missing = ids.filter((id) => !stored.has(id));
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${missing.length} of ${ids.length} acknowledged records are missing (other outcomes: ${JSON.stringify(other)})`,
  );
  for (const status of Object.keys(other)) {
    assert.ok(!/^(400|401|404|413|500)$/.test(status), `unexpected status ${status} during shutdown: ${JSON.stringify(other)}`);
  }
});

test('PostgreSQL unreachable at start: the server starts, health is 503 unhealthy, ingest 503 with Retry-After', async () => {
  const u = new URL(ADMIN_URL);
  u.port = String(await freePort()); // nothing listens there
  u.pathname = '/coldstart';
  const server = await startServer({ dbUrl: u.toString(), ready: 'any', readyTimeoutMs: 20000 });
  try {
    const h = await server.request('GET', '/api/v1/health', { timeoutMs: 20000 });
    assert.equal(h.status, 503, h.text);
    assert.equal(h.json?.status, 'unhealthy', h.text);
    assert.ok(h.headers.get('x-request-id'));
    const rec = minimalRecord({ function_name: 'db-down' });
    const i = await server.request('POST', '/api/v1/ingest', { body: rec, headers: { 'X-API-Key': ctx.key }, timeoutMs: 30000 });
    assertErrorBody(i, 503, 'SERVICE_UNAVAILABLE', 'ingest with the database down');
    assert.ok(i.headers.get('retry-after'), 'no Retry-After header');
    assert.match(i.headers.get('retry-after'), /^\d+$/);
    const b = await server.request('POST', '/api/v1/ingest/batch', {
      body: { invocations: [rec] },
      headers: { 'X-API-Key': ctx.key },
      timeoutMs: 30000,
    });
    assertErrorBody(b, 503, 'SERVICE_UNAVAILABLE', 'batch with the database down');
    assert.ok(b.headers.get('retry-after'), 'no Retry-After header on batch');
    // routing and validation do not need the database
    const nf = await server.request('GET', '/api/v1/nothing-here');
    assert.equal(nf.status, 404);
  } finally {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.describe());
  }
});

/** A TCP proxy to PostgreSQL that can be cut (every connection dropped, port closed) and restored. */
// biome-ignore lint/suspicious/noShadowRestrictedNames: a TCP proxy; the global Proxy is not used in this file
class Proxy {
  constructor(targetHost, targetPort) {
    this.target = { host: targetHost, port: targetPort };
    this.sockets = new Set();
    this.server = null;
    this.port = null;
  }
  async listen(port = 0) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
  }
  async cut() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

let proxy;
after(async () => {
  if (proxy?.server?.listening) await proxy.cut();
});

test('PostgreSQL lost while running: 503 with Retry-After, then the server recovers by itself', async () => {
  const target = new URL(ctx.db.url);
  proxy = new Proxy(target.hostname, Number(target.port || 5432));
  await proxy.listen();
  const viaProxy = new URL(ctx.db.url);
  viaProxy.port = String(proxy.port);
  const server = await startServer({ dbUrl: viaProxy.toString() });
  try {
    const before = minimalRecord({ function_name: 'outage' });
    const r1 = await server.request('POST', '/api/v1/ingest', { body: before, headers: { 'X-API-Key': ctx.key } });
    assert.equal(r1.status, 200, r1.text);

    await proxy.cut();
    // a few attempts: the first may take a while to notice the dead connections
    let during;
    for (let i = 0; i < 5; i++) {
      during = await server.request('POST', '/api/v1/ingest', {
        body: minimalRecord({ function_name: 'outage' }),
        headers: { 'X-API-Key': ctx.key },
        timeoutMs: 40000,
      });
      if (during.status === 503) break;
      await sleep(500);
    }
    assertErrorBody(during, 503, 'SERVICE_UNAVAILABLE', 'ingest while PostgreSQL is unreachable');
    assert.ok(during.headers.get('retry-after'), 'no Retry-After');
    const h = await server.request('GET', '/api/v1/health', { timeoutMs: 40000 });
    assert.equal(h.status, 503, h.text);
    assert.equal(h.json?.status, 'unhealthy');

    await proxy.listen(proxy.port); // PostgreSQL is back
    let recovered = null;
    const t0 = Date.now();
    while (!recovered && Date.now() - t0 < 40000) {
      const rec = minimalRecord({ function_name: 'outage' });
      try {
        const r = await server.request('POST', '/api/v1/ingest', { body: rec, headers: { 'X-API-Key': ctx.key }, timeoutMs: 20000 });
        if (r.status === 200) recovered = rec;
        else assert.equal(r.status, 503, `while recovering: ${r.text}`);
      } catch (e) {
        if (e.code === 'ERR_ASSERTION') throw e;
      }
      if (!recovered) await sleep(500);
    }
    assert.ok(recovered, `no ingest succeeded within 40 s of PostgreSQL coming back. ${server.describe()}`);
    assert.equal(
      await ctx.count(
        `SELECT count(*) FROM invocations WHERE invocation_id IN (${lit(before.invocation_id)}, ${lit(recovered.invocation_id)})`,
      ),
      2,
    );
    // health uses its own connections: it may need a request or two to notice, but must follow
    let h2;
    for (let i = 0; i < 30; i++) {
      h2 = await server.request('GET', '/api/v1/health', { timeoutMs: 20000 });
      if (h2.status === 200) break;
      await sleep(500);
    }
    assert.equal(h2.status, 200, `health still unhealthy 15 s after ingest recovered: ${h2.text}`);
  } finally {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.describe());
  }
});
