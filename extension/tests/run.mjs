// The extension's test suite: the real coldstart-extension binary and a real Node.js handler
// wrapped by the real SDK, inside lambda-emulator.mjs, shipping to fake-backend.mjs.
// Prints one line per case and a final "N passed, N failed"; exits 1 on any failure.
// Usage: node tests/run.mjs [path/to/coldstart-extension] [name filter]

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeBackend } from './fake-backend.mjs';
import { LambdaEmulator } from './lambda-emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = path.resolve(process.argv[2] || path.join(here, '../build/coldstart-extension'));
const filter = process.argv[3] || '';
// Lambda runs /opt/extensions/<name>; the name it registers under is its file name
const optDir = mkdtempSync(path.join(os.tmpdir(), 'csa-ext-'));
symlinkSync(binary, path.join(optDir, 'coldstart'));
const EXTENSION = path.join(optDir, 'coldstart');
const API_KEY = 'csa_test_key';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor(predicate, ms, what) {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}

const cleanups = [];

/** An environment with the extension, the SDK pointed at the extension, and a fake backend. */
async function setup({ freeze = true, env = {}, backendMode = 'ok', tls, extensionEnv = {} } = {}) {
  const backend = await new FakeBackend().listen(tls);
  backend.mode = backendMode;
  const port = await freePort();
  const telemetryPort = await freePort();
  const local = `http://127.0.0.1:${port}`;
  const emu = new LambdaEmulator({
    extension: EXTENSION,
    runtime: path.join(here, 'runtime.cjs'),
    taskRoot: path.join(here, 'fixture'),
    freeze,
    env: { COLDSTART_API_KEY: API_KEY, ...env },
    // the SDK does not detect the extension yet: point it at the local endpoint explicitly
    runtimeEnv: { COLDSTART_ENDPOINT: local },
    extensionEnv: {
      COLDSTART_ENDPOINT: backend.url,
      COLDSTART_EXTENSION_PORT: String(port),
      COLDSTART_TELEMETRY_PORT: String(telemetryPort),
      COLDSTART_EXTENSION_LOG_LEVEL: 'info',
      ...extensionEnv,
    },
  });
  cleanups.push(() => emu.destroy(), () => backend.close());
  return { emu, backend, local };
}

async function post(url, body, timeoutMs = 2000) {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': API_KEY }, body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

async function status(local) {
  return (await fetch(`${local}/coldstart/v1/status`)).json();
}

function record(requestId, extra = {}) {
  return {
    function_name: 'emulated-fn',
    invocation_id: `inv-${requestId}`,
    request_id: requestId,
    timestamp: new Date().toISOString(),
    cold_start: false,
    execution_duration_ms: 3,
    billed_duration_ms: 3,
    memory_used_mb: 1,
    runtime_version: 'nodejs20.x',
    architecture: 'x86_64',
    ...extra,
  };
}

const cases = [];
const test = (name, fn) => cases.push({ name, fn });

test('registers for INVOKE and SHUTDOWN, subscribes to platform telemetry, exits on SHUTDOWN', async () => {
  const { emu } = await setup();
  assert.equal(await emu.start(), 'success');
  assert.equal(emu.registrations.length, 1);
  const reg = emu.registrations[0];
  assert.equal(reg.headers['lambda-extension-name'], 'coldstart');
  assert.deepEqual(reg.events, ['INVOKE', 'SHUTDOWN']);
  assert.equal(emu.subscriptions.length, 1);
  const sub = emu.subscriptions[0];
  assert.equal(sub.headers['lambda-extension-identifier'], [...emu.extensions.keys()][0]);
  assert.deepEqual(sub.body.types, ['platform']);
  assert.equal(sub.body.schemaVersion, '2022-12-13');
  assert.equal(new URL(sub.body.destination.URI).hostname, 'sandbox.localdomain');
  assert.deepEqual(sub.body.buffering, { maxItems: 1000, maxBytes: 262144, timeoutMs: 25 });
  const ext = [...emu.extensions.values()][0];
  assert.equal(ext.nextCalls, 1, 'asked for its next event during init');
  const r = await emu.invoke({ n: 1 });
  assert.equal(r.status, 'success');
  assert.equal(ext.nextCalls, 2, 'asked for the next event again after INVOKE');
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0, exit.output);
  assert.ok(exit.exitMs < 2000, `exited in ${exit.exitMs} ms`);
  console.log(`    registered ${reg.atMs.toFixed(1)} ms after spawn; exit ${exit.exitMs.toFixed(0)} ms after SHUTDOWN`);
});

test('cold and warm invocations: SDK records joined with the platform figures, shipped once', async () => {
  const { emu, backend } = await setup();
  await emu.start();
  const a = await emu.invoke({ n: 1 });
  const b = await emu.invoke({ n: 2 });
  await sleep(2100); // frozen; the SDK sends warm records in batches at most 2 s old
  const c = await emu.invoke({ n: 3 });
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0, exit.output);
  const byRequest = new Map(backend.records().map((r) => [r.request_id, r]));
  for (const inv of [a, b, c]) {
    const rec = byRequest.get(inv.requestId);
    if (inv === c && !rec) {
      // The SDK queues warm records and sends them in the background; the environment froze
      // before that POST went out and SHUTDOWN killed the runtime. See README (SDK changes).
      console.log('    note: the last warm record never left the SDK (queued when the runtime was frozen, then killed)');
      continue;
    }
    assert.ok(rec, `record for ${inv.requestId} shipped; got ${[...byRequest.keys()]} (a=${a.requestId} b=${b.requestId} c=${c.requestId})\n${exit.output}`);
    const m = inv.report.metrics;
    assert.equal(rec.platform.joined, true);
    assert.equal(rec.billed_duration_ms, m.billedDurationMs);
    assert.equal(rec.memory_used_mb, m.maxMemoryUsedMB);
    assert.equal(rec.memory_allocated_mb, m.memorySizeMB);
    assert.equal(rec.platform.duration_ms, m.durationMs);
    assert.equal(rec.platform.status, 'success');
  }
  const cold = byRequest.get(a.requestId);
  assert.equal(cold.cold_start, true);
  assert.equal(cold.init_duration_ms, Math.round(a.report.metrics.initDurationMs));
  assert.equal(cold.platform.init_duration_ms, a.report.metrics.initDurationMs);
  assert.equal(cold.platform.init_type, 'on-demand');
  assert.equal(cold.platform.init_phase, 'init');
  assert.equal(cold.init_type, 'on-demand');
  assert.ok(cold.module_timings, 'SDK fields kept');
  assert.equal(byRequest.get(b.requestId).init_duration_ms, undefined);
  assert.ok([...backend.storeCounts.values()].every((n) => n === 1), 'each invocation_id accepted once');
  assert.ok(backend.attempts.every((t) => t.key === API_KEY && t.path === '/api/v1/ingest/batch'));
});

test('the local endpoint answers at once while the backend is slow, then down', async () => {
  const { emu, backend, local } = await setup({ freeze: false });
  backend.delayMs = 3000;
  await emu.start();
  const cold = await emu.invoke({ n: 1 });
  assert.ok(cold.responseMs < 1000, `cold response ${cold.responseMs} ms`);
  await post(`${local}/coldstart/v1/nothing`, {}); // warm-up: the first fetch() loads undici
  const times = [];
  for (let i = 0; i < 20; i++) {
    const r = await post(`${local}/api/v1/ingest`, record(`slow-${i}`));
    assert.equal(r.status, 202);
    times.push(r.ms);
  }
  await waitFor(() => backend.attempts.length > 0, 3000, 'a batch in flight to the slow backend');
  backend.mode = 'reset';
  backend.delayMs = 0;
  for (let i = 0; i < 20; i++) times.push((await post(`${local}/api/v1/ingest/batch`, { invocations: [record(`down-${i}`)] })).ms);
  const warm = await emu.invoke({ n: 2 });
  times.sort((x, y) => x - y);
  // the backend holds each request 3 s: an answer under 1 s cannot have waited for it (the
  // median shows the usual figure; the machine running the tests may be loaded)
  assert.ok(times[times.length - 1] < 1000, `slowest local answer ${times[times.length - 1].toFixed(1)} ms`);
  assert.ok(times[20] < 50, `median local answer ${times[20].toFixed(1)} ms`);
  assert.ok(warm.responseMs < 200, `warm response ${warm.responseMs} ms`);
  console.log(`    local answers: median ${times[20].toFixed(2)} ms, max ${times[39].toFixed(2)} ms (backend slow/down)`);
});

test('backend down then back: retried with the same invocation_ids, stored once', async () => {
  const { emu, backend } = await setup({ freeze: false, backendMode: 'down' });
  await emu.start();
  const a = await emu.invoke({ n: 1 });
  await waitFor(() => backend.attempts.length >= 2, 3000, 'two failed attempts (503)');
  backend.mode = 'reset';
  await waitFor(() => backend.attempts.length >= 3, 3000, 'a failed attempt (reset)');
  backend.mode = 'ok';
  await waitFor(() => backend.stored.size >= 1, 6000, 'the record stored');
  const bodies = backend.attempts.map((t) => JSON.stringify(t.ids));
  assert.ok(bodies.every((b) => b === bodies[0]), `every retry carries the same ids: ${bodies}`);
  assert.deepEqual(backend.attempts[0].ids.length, 1);
  assert.equal(backend.records()[0].request_id, a.requestId);
  assert.equal(backend.storeCounts.get(backend.attempts[0].ids[0]), 1);
  const st = await status(`http://127.0.0.1:${emu.o.extensionEnv.COLDSTART_EXTENSION_PORT}`);
  assert.ok(st.retries >= 3 && st.records_shipped === 1, JSON.stringify(st));
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0);
});

test('SHUTDOWN ships every buffered record within the deadline', async () => {
  const { emu, backend, local } = await setup({ freeze: false });
  backend.delayMs = 100;
  await emu.start();
  const ids = [];
  for (let i = 0; i < 60; i++) {
    ids.push(`buffered-${i}`);
    await post(`${local}/api/v1/ingest`, record(`buffered-${i}`));
  }
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0, exit.output);
  assert.ok(exit.exitMs < 2000, `exit ${exit.exitMs} ms`);
  for (const id of ids) assert.ok(backend.stored.has(`inv-${id}`), `${id} delivered`);
  assert.equal(backend.stored.get('inv-buffered-0').platform.joined, false);
  assert.match(exit.output, /"records_lost":0/);
});

test('SHUTDOWN with the backend down: exits before the deadline, records counted as lost', async () => {
  const { emu, backend, local } = await setup({ freeze: false, backendMode: 'down' });
  await emu.start();
  for (let i = 0; i < 5; i++) await post(`${local}/api/v1/ingest`, record(`lost-${i}`));
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0, exit.output);
  assert.ok(exit.exitMs < 2000, `exit ${exit.exitMs} ms`);
  assert.match(exit.output, /"records_lost":5/);
  assert.equal(backend.stored.size, 0);
  assert.ok(backend.attempts.length >= 2, 'kept retrying until the deadline');
});

test('malformed telemetry is counted and ignored; valid events still join', async () => {
  const { emu, backend, local } = await setup({ freeze: false });
  await emu.start();
  await emu.drainTelemetry();
  const statuses = await Promise.all([
    'not json',
    '{"type":"platform.report"}',
    '[1, "x", {"type": 5}, {"type":"platform.report","record":{"requestId":7,"metrics":{}}}, {"type":"platform.report"}]',
    '[{"type":"platform.report","record":{"requestId":"' + 'x'.repeat(500) + '","metrics":{}}}]',
    '[' + '['.repeat(5000) + ']'.repeat(5000) + ']',
  ].map((body) => emu.injectTelemetry(body)));
  assert.ok(statuses.flat().every((s) => s === 200 || s === 400), `answers ${statuses}`);
  await emu.injectTelemetry(JSON.stringify([{ time: new Date().toISOString(), type: 'platform.report', record: { requestId: 'joined-1', status: 'timeout', metrics: { durationMs: 3000.5, billedDurationMs: 3001, memorySizeMB: 1024, maxMemoryUsedMB: 321 } } }]));
  await post(`${local}/api/v1/ingest`, record('joined-1'));
  await waitFor(() => backend.stored.has('inv-joined-1'), 2000, 'joined record shipped');
  const rec = backend.stored.get('inv-joined-1');
  assert.equal(rec.billed_duration_ms, 3001);
  assert.equal(rec.memory_used_mb, 321);
  assert.equal(rec.memory_allocated_mb, 1024);
  assert.equal(rec.platform.status, 'timeout');
  const st = await status(local);
  assert.ok(st.telemetry_malformed >= 8, JSON.stringify(st));
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0);
});

test('crash during invoke: the record still carries the platform figures', async () => {
  const { emu, backend } = await setup();
  await emu.start();
  const r = await emu.invoke({ crash: true });
  assert.equal(r.status, 'error');
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0, exit.output);
  const rec = backend.records().find((x) => x.request_id === r.requestId);
  assert.ok(rec, exit.output);
  assert.equal(rec.platform.status, 'error');
  assert.equal(rec.billed_duration_ms, r.report.metrics.billedDurationMs);
  assert.equal(rec.init_duration_ms, Math.round(r.report.metrics.initDurationMs));
});

test('crash during init: the extension ends cleanly on SHUTDOWN (failure)', async () => {
  const { emu, backend } = await setup({ env: { FIXTURE_CRASH_INIT: '1' } });
  assert.equal(await emu.start(), 'error');
  assert.ok(emu.initError);
  const [exit] = await emu.shutdown('failure');
  assert.equal(exit.code, 0, exit.output);
  assert.ok(exit.exitMs < 2000);
  assert.equal(backend.stored.size, 0);
});

test('local endpoint: errors in the backend format, 404, status', async () => {
  const { emu, local } = await setup({ freeze: false });
  await emu.start();
  const bad = await post(`${local}/api/v1/ingest`, '{nope');
  assert.equal(bad.status, 422);
  const body = JSON.parse(bad.text);
  assert.equal(body.error_code, 'VALIDATION_ERROR');
  assert.ok(body.detail && body.timestamp);
  assert.equal((await post(`${local}/api/v1/ingest/batch`, { invocations: 3 })).status, 422);
  assert.equal((await post(`${local}/api/v1/other`, {})).status, 404);
  const st = await status(local);
  assert.equal(st.records_received, 0);
  await emu.shutdown();
});

/** A self-signed certificate for 127.0.0.1 (files in optDir), made with the openssl CLI. */
function certificate(name) {
  const key = path.join(optDir, `${name}.key`);
  const cert = path.join(optDir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(key), cert: readFileSync(cert), certFile: cert };
}

test('https backend: certificate verified, records delivered', async () => {
  const good = certificate('backend');
  const { emu, backend, local } = await setup({ freeze: false, tls: good, extensionEnv: { COLDSTART_CA_FILE: good.certFile } });
  await emu.start();
  for (let i = 0; i < 3; i++) await post(`${local}/api/v1/ingest`, record(`tls-${i}`));
  // unjoined records wait for two INVOKEs and the join wait: invoke to move them along
  await emu.invoke({ n: 1 });
  await emu.invoke({ n: 2 });
  await emu.shutdown();
  for (let i = 0; i < 3; i++) assert.ok(backend.stored.has(`inv-tls-${i}`), `tls-${i} delivered over TLS`);
});

test('https backend: reconnects after the server drops the TLS connection', async () => {
  const good = certificate('backend2');
  const { emu, backend, local } = await setup({ freeze: false, tls: good, extensionEnv: { COLDSTART_CA_FILE: good.certFile, COLDSTART_EXTENSION_JOIN_WAIT_MS: '0' } });
  await emu.start();
  const a = await emu.invoke({ n: 1 });
  await waitFor(() => backend.stored.size >= 1, 3000, 'first record over TLS');
  backend.server.closeAllConnections();
  await emu.invoke({ n: 2 });
  await waitFor(() => backend.stored.size >= 2, 3000, 'second record over a new TLS connection');
  assert.ok(backend.stored.get(a.requestId) || backend.records().some((r) => r.request_id === a.requestId));
  await emu.shutdown();
});

test('https backend with an untrusted certificate: nothing is sent, records count as lost', async () => {
  const good = certificate('backend3');
  const other = certificate('other');
  const { emu, backend, local } = await setup({ freeze: false, tls: good, extensionEnv: { COLDSTART_CA_FILE: other.certFile } });
  await emu.start();
  await post(`${local}/api/v1/ingest`, record('untrusted'));
  const [exit] = await emu.shutdown();
  assert.equal(exit.code, 0, exit.output);
  assert.equal(backend.attempts.length, 0, 'no HTTP request reached the server');
  assert.ok(backend.tlsErrors >= 1, 'the handshake was refused');
  assert.match(exit.output, /"records_lost":1/);
});

let passed = 0;
let failed = 0;
for (const c of cases) {
  if (filter && !c.name.includes(filter)) continue;
  const t0 = Date.now();
  try {
    await c.fn();
    passed++;
    console.log(`ok   ${c.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${c.name} (${Date.now() - t0} ms)\n     ${String(e && e.stack).split('\n').join('\n     ')}`);
  } finally {
    while (cleanups.length) cleanups.pop()();
  }
}
rmSync(optDir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
