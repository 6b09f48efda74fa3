// Hostile clients at the HTTP level: a flood of random keys with 10 MiB bodies, slow trickles, thousands of idle connections, oversized
// headers, duplicate or conflicting framing headers, pipelining, requests cut short, bodies
// declared larger than sent, non-UTF-8 targets, malformed request lines and unknown methods.
//
// Every case must end in a clean error (a status >= 400 with the spec's JSON error body: the
// server rewrites libevent's own HTML error pages) or a closed connection, must store nothing it
// did not acknowledge, and a normal client must keep being served: a probe sends health checks
// and ingests on fresh connections all through the file, and each case checks it once more.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import {
  useServer,
  startServer,
  minimalRecord,
  rawRequest,
  parseRawResponse,
  httpFresh,
  sleep,
  lit,
  acceptedConnections,
  trickle,
  http,
} from './harness.mjs';

const REQUEST_TIMEOUT = 2;
const ctx = useServer({ env: { REQUEST_TIMEOUT, MAX_CONNECTIONS: 200 }, freshConnections: true });

// ---------------------------------------------------------------------------------------------
// Helpers.

/** Splits raw HTTP/1.1 response text (latin1) into responses, using Content-Length. */
function splitResponses(data) {
  const out = [];
  let rest = data;
  while (rest.length > 0) {
    const parsed = parseRawResponse(rest);
    if (!parsed) break;
    const len = Number(parsed.headers['content-length'] ?? parsed.body.length);
    out.push({ ...parsed, body: parsed.body.slice(0, len) });
    rest = parsed.body.slice(len);
  }
  return out;
}

/** Asserts one raw response is an error in the spec's JSON format. */
function assertJsonError(resp, what) {
  const show = `${what}: ${resp.status} ${JSON.stringify(resp.headers)} ${resp.body.slice(0, 300)}`;
  assert.ok(resp.status >= 400 && resp.status < 600, `not an error status: ${show}`);
  assert.match(resp.headers['content-type'] || '', /application\/json/, `error is not JSON: ${show}`);
  let body = null;
  try {
    body = JSON.parse(resp.body);
  } catch {}
  assert.ok(body && typeof body === 'object', `error body is not a JSON object: ${show}`);
  assert.equal(typeof body.detail, 'string', show);
  assert.match(String(body.error_code), /^[A-Z_]+$/, show);
  assert.match(String(body.timestamp), /^\d{4}-\d\d-\d\dT/, show);
  return body;
}

/**
 * A raw exchange ends cleanly: either the server closed without a byte, or everything it sent
 * is well-formed responses of which none is 2xx unless `allowOk`, errors in the JSON format.
 * Returns the responses.
 */
function assertCleanEnd(raw, what, { allowOk = false, statuses } = {}) {
  assert.ok(raw.closed, `${what}: the server kept the connection open (${raw.ms} ms): ${raw.data.slice(0, 200)}`);
  if (raw.data.length === 0) return [];
  const responses = splitResponses(raw.data);
  assert.ok(
    responses.length > 0,
    `${what}: the server sent bytes that are not an HTTP response: ${JSON.stringify(raw.data.slice(0, 200))}`,
  );
  for (const r of responses) {
    if (r.status < 400) {
      assert.ok(allowOk, `${what}: answered ${r.status}: ${r.body.slice(0, 200)}`);
      continue;
    }
    assertJsonError(r, what);
    if (statuses) assert.ok(statuses.includes(r.status), `${what}: status ${r.status}, expected one of ${statuses}`);
  }
  return responses;
}

/** A normal client: health 200 and one ingest 200 on fresh connections. Returns the ingested id. */
async function assertServed(what, timeoutMs = 10000) {
  const health = await httpFresh(ctx.base, 'GET', '/api/v1/health', { timeoutMs });
  assert.equal(health.status, 200, `${what}: health ${health.status} ${health.text.slice(0, 200)}`);
  const rec = minimalRecord({ function_name: 'hostile-normal' });
  const res = await httpFresh(ctx.base, 'POST', '/api/v1/ingest', { body: rec, headers: { 'X-API-Key': ctx.key }, timeoutMs });
  assert.equal(res.status, 200, `${what}: ingest ${res.status} ${res.text.slice(0, 200)}`);
  return rec.invocation_id;
}

/** Rows stored for an invocation id. */
const stored = (id) => ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(id)}`);

/** Request head for an ingest with the test key. */
function ingestHead(length, extra = '') {
  return (
    `POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${ctx.key}\r\n` +
    `Content-Type: application/json\r\n${length === null ? '' : `Content-Length: ${length}\r\n`}${extra}\r\n`
  );
}

// The probe: a normal client all through the file. Its failures are collected and checked last.
const probe = { running: true, ok: 0, failures: [], ids: [] };
let probeDone;
function startProbe() {
  probeDone = (async () => {
    while (probe.running) {
      try {
        probe.ids.push(await assertServed('probe', 20000));
        probe.ok++;
      } catch (e) {
        probe.failures.push(e.message);
      }
      await sleep(300);
    }
  })();
}
after(async () => {
  probe.running = false;
  await probeDone;
});

/** Open file descriptors of a process. */
const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** This process's soft limit on open files (RLIMIT_NOFILE), from /proc/self/limits. */
function openFileLimit() {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

// ---------------------------------------------------------------------------------------------
// Cases.

test('a normal client is served before anything hostile happens', async () => {
  await assertServed('baseline');
  startProbe();
});

// ---------------------------------------------------------------------------------------------
// The key flood (issue 19): random well-formed keys with 10 MiB bodies from many connections,
// while a valid client keeps sending. The key is checked from the headers before any of a large
// body is read; unknown keys cost one lookup each until their address passes AUTH_FAIL_LIMIT,
// then 429 without a lookup; a valid (cached) key is never blocked. Goal (issue 19): no errors
// and p99 under 50 ms for the valid client; asserted with margins for a loaded 2-core machine.

const FLOOD_MS = 4000;
const FLOOD_CONNECTIONS = 48;
const FLOOD_BODY = 10 * 1024 * 1024;
// The goal is 50 ms. On a 2-core machine the attackers themselves (a worker thread writing
// gigabytes into loopback sockets) and other load take most of the CPU: measured p99 173-433 ms
// at load average 7 (quiet machine: 34 to 44 ms); see RELIABILITY.md. The bounds catch a
// regression to seconds (requests queued behind key lookups or bodies: most of them slow, so the
// p95) and a request stalled for seconds (the slowest), without failing on a busy machine. Not the
// p99: of the 90-190 valid requests it is the slowest or the second slowest, and on a saturated
// 2-core machine one request now and then takes about a second inside the server (999 and
// 1,173 ms in two CI runs of 2026-12-07; up to 717 ms here). PostgreSQL's log showed no lock wait
// over 100 ms in the writer then, but every statement slowed by the shortage of CPU: the
// writer's INSERT 317 ms (one parse of it 681 ms), the rollup and day-sketch folds 0.4-0.9 s.
const FLOOD_P95_MAX_MS = 1000;
const FLOOD_MAX_MS = 5000;
const FLOOD_RSS_GROWTH_MAX = 128 * 1024 * 1024; // without the gate: connections x 10 MiB

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Resident memory of a process, in bytes (VmRSS of /proc/<pid>/status). */
function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * The attackers run in a worker thread of their own, so that their writes (gigabytes a second
 * into loopback sockets) never delay the valid client's event loop: the figures are the server's.
 * Each of `connections` loops: connect, a batch head with a random well-formed key and
 * Content-Length 10 MiB, then the body for as long as the server takes it. Posts the tally.
 */
const FLOOD_WORKER = `
const net = require('node:net');
const { randomBytes } = require('node:crypto');
const { workerData, parentPort } = require('node:worker_threads');
const { port, connections, bodyBytes, ms } = workerData;
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomKey = () => 'csa_' + Array.from(randomBytes(32), (b) => ALNUM[b % ALNUM.length]).join('');
const chunk = Buffer.alloc(256 * 1024, 'x');
function once() {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let sent = 0, data = '', done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const m = /^HTTP\\/1\\.1 (\\d{3})/.exec(data);
      resolve({ status: m ? Number(m[1]) : 0, sent });
    };
    const timer = setTimeout(finish, 3000);
    sock.on('error', finish);
    sock.on('close', finish);
    sock.on('data', (d) => { data += d.toString('latin1'); if (data.includes('\\r\\n\\r\\n')) finish(); });
    const pump = () => {
      while (!done && sent < bodyBytes) {
        const n = Math.min(chunk.length, bodyBytes - sent);
        sent += n;
        if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return sock.once('drain', pump);
      }
    };
    sock.on('connect', () => {
      sock.write('POST /api/v1/ingest/batch HTTP/1.1\\r\\nHost: x\\r\\nX-API-Key: ' + randomKey() +
        '\\r\\nContent-Type: application/json\\r\\nContent-Length: ' + bodyBytes + '\\r\\n\\r\\n');
      pump();
    });
  });
}
const deadline = Date.now() + ms;
const tally = { attempts: 0, bytes: 0, statuses: {} };
async function attacker() {
  while (Date.now() < deadline) {
    const r = await once();
    tally.attempts++;
    tally.bytes += r.sent;
    tally.statuses[r.status] = (tally.statuses[r.status] || 0) + 1;
  }
}
Promise.all(Array.from({ length: connections }, attacker)).then(() => parentPort.postMessage(tally));
`;

test('a flood of random keys with 10 MiB bodies: the valid client is served, memory stays bounded', async (t) => {
  // Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) before reuse,
  // so the flood's churn of small buffers would show as RSS growth; 16 MiB keeps the bound
  // meaningful in the sanitizer build too (other builds ignore the variable).
  const ASAN_OPTIONS = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':');
  const server = await startServer({ dbUrl: ctx.db.url, env: { REQUEST_TIMEOUT, ASAN_OPTIONS } });
  try {
    const valid = async () => {
      const t0 = performance.now();
      const res = await http(server.base, 'POST', '/api/v1/ingest', {
        body: minimalRecord({ function_name: 'flood-valid' }),
        headers: { 'X-API-Key': ctx.ingestKey },
        timeoutMs: 10000,
      }).catch((e) => ({ status: 0, text: e.message }));
      return { ms: performance.now() - t0, status: res.status, text: res.text };
    };
    for (let i = 0; i < 5; i++) assert.equal((await valid()).status, 200, 'warm-up'); // caches the key
    // the same client without the flood, for comparison (reported, not asserted)
    const quiet = [];
    const logsQuiet = server.stderrLines.length;
    for (const until = Date.now() + 1500; Date.now() < until; ) {
      quiet.push((await valid()).ms);
      await sleep(20);
    }
    quiet.sort((a, b) => a - b);
    const rssBefore = rssBytes(server.pid);
    let rssPeak = rssBefore;
    // where the CPU goes during the flood: the server, and this process (the attackers' worker
    // thread and the valid clients); reported, not asserted
    const serverCpu0 = cpuSeconds(server.pid);
    const logsBefore = server.stderrLines.length;
    const ownCpu0 = process.cpuUsage();
    const deadline = Date.now() + FLOOD_MS;
    const flood = new Promise((resolve, reject) => {
      const w = new Worker(FLOOD_WORKER, {
        eval: true,
        workerData: { port: server.port, connections: FLOOD_CONNECTIONS, bodyBytes: FLOOD_BODY, ms: FLOOD_MS },
      });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const latencies = [];
    const errors = [];
    const client = async () => {
      while (Date.now() < deadline) {
        const r = await valid();
        latencies.push(r.ms);
        if (r.status !== 200) errors.push(`${r.status} ${String(r.text).slice(0, 120)}`);
        await sleep(20);
      }
    };
    const sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, rssBytes(server.pid));
      } catch {}
    }, 50);
    const [{ attempts, bytes: bytesSent, statuses }] = await Promise.all([flood, client(), client()]);
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, rssBytes(server.pid));
    const serverCpu = cpuSeconds(server.pid) - serverCpu0;
    // the valid requests' time inside the server (complete request to response: validation, the
    // writer's queue, the INSERT and COMMIT), from its request log
    const insideOf = (from, to) =>
      server.logs
        .slice(from, to)
        .filter((l) => l.msg === 'request' && l.path === '/api/v1/ingest' && l.status === 200)
        .map((l) => l.duration_ms)
        .sort((a, b) => a - b);
    const inside = insideOf(logsBefore);
    const insideQuiet = insideOf(logsQuiet, logsBefore);
    const ownCpu = process.cpuUsage(ownCpu0);
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))];
    const figures = {
      quiet_p50_ms: +quiet[Math.floor(quiet.length / 2)].toFixed(1),
      quiet_p99_ms: +quiet[Math.min(quiet.length - 1, Math.floor(quiet.length * 0.99))].toFixed(1),
      valid_requests: latencies.length,
      valid_errors: errors.length,
      p50_ms: +pct(50).toFixed(1),
      p95_ms: +pct(95).toFixed(1),
      p99_ms: +pct(99).toFixed(1),
      max_ms: +latencies[latencies.length - 1].toFixed(1),
      flood_requests: attempts,
      flood_statuses: statuses,
      flood_mib_written: +(bytesSent / 1048576).toFixed(0),
      rss_before_mib: +(rssBefore / 1048576).toFixed(1),
      rss_peak_mib: +(rssPeak / 1048576).toFixed(1),
      server_cpu_s: +serverCpu.toFixed(2),
      quiet_inside_server_p50_ms: insideQuiet.length ? +insideQuiet[Math.floor(insideQuiet.length / 2)].toFixed(1) : null,
      inside_server_p50_ms: inside.length ? +inside[Math.floor(inside.length / 2)].toFixed(1) : null,
      inside_server_p99_ms: inside.length ? +inside[Math.min(inside.length - 1, Math.floor(inside.length * 0.99))].toFixed(1) : null,
      attackers_and_clients_cpu_s: +((ownCpu.user + ownCpu.system) / 1e6).toFixed(2),
    };
    t.diagnostic(JSON.stringify(figures));
    console.log('flood figures', JSON.stringify(figures));
    assert.deepEqual(errors, [], `the valid client failed ${errors.length} of ${latencies.length} times`);
    assert.ok(latencies.length >= 20, `the valid client got only ${latencies.length} answers in ${FLOOD_MS} ms`);
    assert.ok(figures.p95_ms < FLOOD_P95_MAX_MS, `valid client p95 ${figures.p95_ms} ms (p99 goal 50, bound ${FLOOD_P95_MAX_MS})`);
    assert.ok(figures.max_ms < FLOOD_MAX_MS, `a valid request took ${figures.max_ms} ms (bound ${FLOOD_MAX_MS})`);
    assert.ok(rssPeak - rssBefore < FLOOD_RSS_GROWTH_MAX, `server RSS grew from ${figures.rss_before_mib} to ${figures.rss_peak_mib} MiB`);
    assert.ok(attempts >= FLOOD_CONNECTIONS, `only ${attempts} flood requests were made`);
    assert.equal(statuses[200] ?? 0, 0, 'a flood request was accepted');
    assert.ok((statuses[429] ?? 0) > 0, `the address was never blocked: ${JSON.stringify(statuses)}`);
    // nothing of a refused body was read: far less than the flood's bodies
    assert.ok(bytesSent < attempts * FLOOD_BODY, 'every flood body was read in full');
    assert.equal((await valid()).status, 200, 'after the flood');
  } finally {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.describe());
  }
});

test('slow trickles of headers and of a body are cut off at REQUEST_TIMEOUT while others are served', async () => {
  const rec = minimalRecord({ function_name: 'hostile-trickle' });
  const body = JSON.stringify(rec);
  const [headers, bodyTrickle] = await Promise.all([
    trickle(ctx.server.port, 'POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n', ['X-Slow: abcdefghij\r\n'], 150, 20000),
    trickle(ctx.server.port, ingestHead(Buffer.byteLength(body)), body.split(''), 100, 20000),
    // a normal client meanwhile
    (async () => {
      await sleep(500);
      await assertServed('during the trickles');
    })(),
  ]);
  for (const [name, r] of [
    ['headers', headers],
    ['body', bodyTrickle],
  ]) {
    assert.ok(r.closedByServer, `trickled ${name}: still open after ${r.ms} ms`);
    assert.ok(r.ms >= REQUEST_TIMEOUT * 1000 - 500 && r.ms < 12000, `trickled ${name}: cut after ${r.ms} ms`);
    for (const resp of splitResponses(r.data)) assertJsonError(resp, `trickled ${name}`);
  }
  assert.ok(body.length * 100 > 12000, 'the body takes longer to trickle than the deadline');
  assert.equal(await stored(rec.invocation_id), 0, 'a trickled body was stored');
});

test('oversized request headers (> 16 KiB) get a JSON error or a close', async () => {
  for (const [what, head] of [
    ['one 20 KiB header', `GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`],
    [
      '400 headers of 100 bytes',
      `GET /api/v1/health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'b'.repeat(90)}\r\n`).join('')}\r\n`,
    ],
    ['a 20 KiB request target', `GET /api/v1/health?${'q'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`],
  ]) {
    const raw = await rawRequest(ctx.server.port, head, { timeoutMs: 10000 });
    assertCleanEnd(raw, what);
  }
  await assertServed('after oversized headers');
});

test('duplicate Content-Length headers are refused and nothing is stored', async () => {
  for (const [what, a, b] of [
    ['different values', 5, null],
    ['equal values', null, null],
  ]) {
    const rec = minimalRecord({ function_name: 'hostile-dup-cl' });
    const body = JSON.stringify(rec);
    const len = Buffer.byteLength(body);
    const raw = await rawRequest(ctx.server.port, ingestHead(a ?? len, `Content-Length: ${b ?? len}\r\nConnection: close\r\n`) + body, {
      timeoutMs: 10000,
    });
    const responses = assertCleanEnd(raw, `duplicate Content-Length (${what})`, { allowOk: what === 'equal values' });
    const ok = responses.some((r) => r.status === 200);
    // Equal duplicates may be merged (RFC 9112 6.3 allows it); the record is then stored once.
    assert.equal(await stored(rec.invocation_id), ok ? 1 : 0, `${what}: rows stored vs acknowledged`);
  }
  await assertServed('after duplicate Content-Length');
});

test('conflicting Content-Length headers are refused (400 and close), never framed by one of them', async () => {
  const smuggled = 'GET /api/v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  const raw = await rawRequest(
    ctx.server.port,
    `GET /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    { timeoutMs: 10000 },
  );
  const responses = assertCleanEnd(raw, 'conflicting Content-Length', { statuses: [400] });
  assert.equal(responses.length, 1, `answered ${responses.map((r) => r.status).join(', ')}: the rest was served as a request`);
});

test('Content-Length together with Transfer-Encoding: chunked is not a smuggling vector', async () => {
  const rec = minimalRecord({ function_name: 'hostile-cl-te' });
  const body = JSON.stringify(rec);
  const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
  // If the server framed by Content-Length (5 bytes), the rest would be read as a second request:
  // a GET of a path that does not exist. It must never be answered as a request of its own.
  const smuggled = 'GET /api/v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  const raw = await rawRequest(ctx.server.port, ingestHead(5, 'Transfer-Encoding: chunked\r\nConnection: close\r\n') + chunked + smuggled, {
    timeoutMs: 10000,
  });
  const responses = assertCleanEnd(raw, 'Content-Length with Transfer-Encoding', { allowOk: true });
  assert.ok(responses.length <= 1, `more than one response (a smuggled request was answered): ${raw.data.slice(0, 600)}`);
  const ok = responses.some((r) => r.status === 200);
  assert.equal(await stored(rec.invocation_id), ok ? 1 : 0, 'rows stored vs acknowledged');
  await assertServed('after CL + TE');
});

test('pipelined requests are all answered, in order', async () => {
  const recs = [minimalRecord({ function_name: 'hostile-pipe' }), minimalRecord({ function_name: 'hostile-pipe' })];
  const ingest = (r) => {
    const b = JSON.stringify(r);
    return ingestHead(Buffer.byteLength(b)) + b;
  };
  const reqs = [
    'GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n',
    ingest(recs[0]),
    'GET /api/v1/nope HTTP/1.1\r\nHost: x\r\n\r\n',
    ingest(recs[1]),
    'GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ];
  const raw = await rawRequest(ctx.server.port, reqs.join(''), { timeoutMs: 15000 });
  const responses = splitResponses(raw.data);
  assert.deepEqual(
    responses.map((r) => r.status),
    [200, 200, 404, 200, 200],
    `pipelined statuses: ${raw.data.slice(0, 1500)}`,
  );
  assert.equal(JSON.parse(responses[0].body).status, 'healthy');
  assert.equal(JSON.parse(responses[1].body).invocation_id, recs[0].invocation_id, 'answers out of order');
  assertJsonError(responses[2], 'pipelined 404');
  assert.equal(JSON.parse(responses[3].body).invocation_id, recs[1].invocation_id, 'answers out of order');
  for (const r of recs) assert.equal(await stored(r.invocation_id), 1);
  // the same, sent a byte at a time in two bursts: framing must not depend on packet boundaries
  const rec3 = minimalRecord({ function_name: 'hostile-pipe' });
  const all = ingest(rec3) + 'GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
  const raw2 = await rawRequest(ctx.server.port, [all.slice(0, 37), all.slice(37, 200), all.slice(200)], { timeoutMs: 15000 });
  assert.deepEqual(
    splitResponses(raw2.data).map((r) => r.status),
    [200, 200],
    raw2.data.slice(0, 800),
  );
  assert.equal(await stored(rec3.invocation_id), 1);
});

test('requests cut mid-body and bodies declared larger than sent store nothing', async () => {
  const cases = [];
  for (const mode of ['cut (client resets)', 'half-closed (client FIN)', 'left open']) {
    const rec = minimalRecord({ function_name: 'hostile-cut' });
    const body = JSON.stringify(rec);
    const len = Buffer.byteLength(body);
    // declared: the real length for a cut, much more than sent for the other two
    const declared = mode.startsWith('cut') ? len : len + 1000;
    const part = mode.startsWith('cut') ? body.slice(0, Math.floor(len / 2)) : body;
    cases.push(
      new Promise((resolve) => {
        const t0 = Date.now();
        const sock = net.connect(ctx.server.port, '127.0.0.1');
        let data = '';
        sock.setEncoding('latin1');
        sock.on('data', (d) => (data += d));
        sock.on('error', () => {});
        const cap = setTimeout(() => {
          sock.destroy();
          resolve({ mode, id: rec.invocation_id, data, closed: false, ms: Date.now() - t0 });
        }, 12000);
        sock.on('close', () => {
          clearTimeout(cap);
          resolve({ mode, id: rec.invocation_id, data, closed: true, ms: Date.now() - t0 });
        });
        sock.on('connect', () => {
          sock.write(ingestHead(declared) + part);
          if (mode.startsWith('cut')) setTimeout(() => sock.resetAndDestroy(), 100);
          else if (mode.startsWith('half')) setTimeout(() => sock.end(), 100);
        });
      }),
    );
  }
  const results = await Promise.all(cases);
  for (const r of results) {
    if (!r.mode.startsWith('cut')) {
      assertCleanEnd(r, r.mode);
      assert.ok(r.ms < 12000, `${r.mode}: still open after ${r.ms} ms`);
    }
    assert.equal(await stored(r.id), 0, `${r.mode}: a partial body was stored`);
  }
  await assertServed('after cut bodies');
});

test('non-UTF-8 bytes in the path and query get a JSON error', async () => {
  for (const [what, target, statuses] of [
    ['raw 0xff 0xfe in the path', Buffer.from([0x2f, 0x61, 0x70, 0x69, 0x2f, 0xff, 0xfe, 0x80]), [400, 404]],
    ['percent-encoded invalid UTF-8 in the path', '/api/v1/functions/%ff%fe%c0%af', [400, 401, 404]],
    ['overlong encoding of / in the path', '/api/v1/functions/..%c0%af..%c0%afetc', [400, 401, 404]],
    ['invalid UTF-8 in the query', '/api/v1/functions?name_prefix=%ff%fe', [400]],
    ['a NUL in the path', '/api/v1/functions/a%00b', [400, 401, 404]],
  ]) {
    const head = Buffer.concat([
      Buffer.from('GET '),
      Buffer.isBuffer(target) ? target : Buffer.from(target),
      Buffer.from(` HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ctx.key}\r\nConnection: close\r\n\r\n`),
    ]);
    const raw = await rawRequest(ctx.server.port, head, { timeoutMs: 10000 });
    const responses = assertCleanEnd(raw, what, { statuses });
    assert.equal(responses.length, 1, `${what}: expected one error response, got ${JSON.stringify(raw.data.slice(0, 300))}`);
  }
  await assertServed('after non-UTF-8 targets');
});

test('a NUL byte (%00) in a query parameter is refused with 400', async () => {
  const raw = await rawRequest(
    ctx.server.port,
    `GET /api/v1/functions?name_prefix=a%00b HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ctx.key}\r\nConnection: close\r\n\r\n`,
    { timeoutMs: 10000 },
  );
  assertCleanEnd(raw, 'a NUL in the query', { statuses: [400] });
});

test('malformed request lines get a 400 JSON error or a close', async () => {
  for (const [what, bytes] of [
    ['garbage', 'GARBAGE\r\n\r\n'],
    ['no target', 'GET\r\n\r\n'],
    ['unknown protocol version', 'GET /api/v1/health HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['not HTTP', 'GET /api/v1/health FTP/1.0\r\nHost: x\r\n\r\n'],
    ['extra words', 'GET /api/v1/health HTTP/1.1 extra\r\nHost: x\r\n\r\n'],
    ['empty lines only', '\r\n\r\n\r\n\r\n'],
    ['binary junk', Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 131 + 7) % 256))],
    ['header without a colon', 'GET /api/v1/health HTTP/1.1\r\nHost x\r\n\r\n'],
    ['a TLS ClientHello', Buffer.from('16030100a5010000a10303' + '00'.repeat(60), 'hex')],
    ['negative Content-Length', `POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}`],
    ['non-numeric Content-Length', `POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}`],
    ['bad chunk size', `POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`],
  ]) {
    const raw = await rawRequest(ctx.server.port, bytes, { timeoutMs: 10000 });
    assertCleanEnd(raw, what);
  }
  // obs-fold: RFC 9112 5.2 lets a server either refuse it (400) or replace it with a space, which
  // is what libevent does; either way exactly one answer.
  const folded = await rawRequest(
    ctx.server.port,
    'GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\nConnection: close\r\n\r\n',
    { timeoutMs: 10000 },
  );
  assert.equal(assertCleanEnd(folded, 'header folding', { allowOk: true }).length, 1, folded.data.slice(0, 300));
  await assertServed('after malformed request lines');
});

test('unknown and unsupported methods get a JSON error', async () => {
  for (const method of ['FOO', 'BREW', 'PROPFIND', 'TRACE', 'CONNECT', 'PATCH', 'get']) {
    const target = method === 'CONNECT' ? '127.0.0.1:80' : '/api/v1/health';
    const raw = await rawRequest(ctx.server.port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, {
      timeoutMs: 10000,
    });
    const responses = assertCleanEnd(raw, method, { statuses: [400, 404, 405, 501] });
    assert.equal(responses.length, 1, `${method}: no response: ${JSON.stringify(raw.data.slice(0, 200))}`);
  }
  await assertServed('after unknown methods');
});

test('thousands of idle connections: the cap holds, idles are cut, a normal client is served', async () => {
  // Count: 2000, or fewer if this process may not open that many files (leave room for the rest).
  const n = Math.min(2000, openFileLimit() - 200);
  assert.ok(n >= 500, `only ${n} sockets possible under this process's open-file limit: raise ulimit -n`);
  const server = await startServer({ dbUrl: ctx.db.url, env: { MAX_CONNECTIONS: 200, REQUEST_TIMEOUT } });
  const fdsBefore = fdCount(server.pid);
  const socks = [];
  let closedByServer = 0;
  try {
    for (let i = 0; i < n; i++) {
      const s = net.connect(server.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
      socks.push(s);
      if (i % 200 === 199) await sleep(20); // let the event loop breathe
    }
    await sleep(800);
    const held = acceptedConnections(server.pid, server.port);
    assert.ok(held <= 200, `the server holds ${held} client connections with MAX_CONNECTIONS=200`);
    // A normal client queues behind the idles; the deadline cuts them 200 at a time.
    const t0 = Date.now();
    let res = null;
    let lastErr = '';
    while (!res && Date.now() - t0 < 45000) {
      try {
        res = await httpFresh(server.base, 'GET', '/api/v1/health', { timeoutMs: 45000 - (Date.now() - t0) });
      } catch (e) {
        lastErr = e.message;
        await sleep(200);
      }
    }
    assert.ok(res, `no answer within 45 s while ${n} idle connections queued: ${lastErr}`);
    assert.equal(res.status, 200);
    // and the idles are all cut by the server, not by us
    const t1 = Date.now();
    while (closedByServer < n && Date.now() - t1 < 30000) await sleep(200);
    assert.equal(closedByServer, n, `${n - closedByServer} idle connections still open`);
  } finally {
    for (const s of socks) s.destroy();
  }
  await sleep(REQUEST_TIMEOUT * 1000 + 500);
  const fdsAfter = fdCount(server.pid);
  // a few more are fine (database connections opened lazily, e.g. by the hourly partition upkeep at
  // start); a leak of the idles' sockets would show as hundreds
  assert.ok(fdsAfter <= fdsBefore + 10, `server file descriptors: ${fdsBefore} before, ${fdsAfter} after ${n} idle connections (leak?)`);
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.describe());
});

test('the normal client was served all along, and every acknowledged probe ingest is stored once', async () => {
  probe.running = false;
  await probeDone;
  assert.deepEqual(probe.failures, [], `the probe failed ${probe.failures.length} times (${probe.ok} passed)`);
  assert.ok(probe.ok >= 5, `only ${probe.ok} probe rounds ran`);
  const n = await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${probe.ids.map(lit).join(',')})`);
  assert.equal(n, probe.ids.length);
});
