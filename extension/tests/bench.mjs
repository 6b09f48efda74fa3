// Footprint of coldstart-extension: start-up (main() to registered, and spawn to the register
// request), RSS, CPU per invocation, and the function's response time with and without it.
// Writes the figures as Markdown on stdout (bench.sh puts them in RESULTS.md).
// Usage: node tests/bench.mjs <binary> [invocations] [title] [https]
// With "https" the backend is https:// (self-signed certificate appended to the system CA bundle,
// so that the extension loads a bundle of the usual size), as with the layer's default endpoint.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeBackend } from './fake-backend.mjs';
import { cpuMs, LambdaEmulator } from './lambda-emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = path.resolve(process.argv[2]);
const N = Number(process.argv[3] || 300);
const VARIANT = process.argv[4] || '';
const HTTPS = process.argv[5] === 'https';
const STARTS = Number(process.env.BENCH_STARTS || 200);
const optDir = mkdtempSync(path.join(os.tmpdir(), 'csa-bench-'));
symlinkSync(binary, path.join(optDir, 'coldstart'));
const EXTENSION = path.join(optDir, 'coldstart');

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

// 1. start-up against a minimal, warmed-up Extensions/Telemetry API
async function startups() {
  let resolveRegister;
  const server = http.createServer((req, res) => {
    if (req.url.endsWith('/register')) {
      resolveRegister?.(performance.now());
      res.writeHead(200, { 'Lambda-Extension-Identifier': 'bench' });
      return res.end('{}');
    }
    if (req.url.includes('/telemetry')) return res.writeHead(200).end('OK');
    if (req.url.endsWith('/event/next')) {
      return setTimeout(() => res.writeHead(200).end(JSON.stringify({ eventType: 'SHUTDOWN', shutdownReason: 'spindown', deadlineMs: Date.now() + 2000 })), 20);
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const api = `127.0.0.1:${server.address().port}`;
  for (let i = 0; i < 30; i++) await fetch(`http://${api}/x/register`, { method: 'POST' }).then((r) => r.text());
  const rows = [];
  const wall = () => performance.timeOrigin + performance.now(); // ms, same clock as bash's EPOCHREALTIME
  for (let i = 0; i < STARTS; i++) {
    const registered = new Promise((r) => (resolveRegister = r));
    // bash takes the time just before exec(): from there to the register request is the process's
    // whole start-up (exec, the dynamic loader, libc, main() up to the request on the socket)
    const child = spawn('/bin/bash', ['-c', 'echo "exec_at $EPOCHREALTIME" >&2; exec "$0"', EXTENSION], { env: { AWS_LAMBDA_RUNTIME_API: api, COLDSTART_ENDPOINT: HTTPS ? 'https://127.0.0.1:9' : 'http://127.0.0.1:9', COLDSTART_EXTENSION_PORT: String(await freePort()), COLDSTART_EXTENSION_STREAM_PORT: String(await freePort()), COLDSTART_TELEMETRY_PORT: String(await freePort()), COLDSTART_EXTENSION_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await registered;
    const atApi = wall();
    await new Promise((r) => child.on('exit', r));
    const execAt = Number(/exec_at (\d+\.\d+)/.exec(err)[1]) * 1000;
    const line = JSON.parse(err.split('\n').find((l) => l.includes('"registered"')));
    const execToMain = line.main_unix_us / 1000 - execAt;
    rows.push({ execToMain, execToRegistered: execToMain + line.register_ms, execToRequest: atApi - execAt, registerMs: line.register_ms, readyMs: line.ready_ms, cpuUs: line.cpu_us, rssKb: line.max_rss_kb, faults: line.page_faults });
  }
  server.close();
  // the floor: the same exec() of a program whose main() only prints the time (bench.sh builds it)
  const floor = path.join(here, '../build/exec-floor');
  if (existsSync(floor)) {
    for (const row of rows) {
      const child = spawnSync('/bin/bash', ['-c', 'echo "exec_at $EPOCHREALTIME" >&2; exec "$0"', floor], { encoding: 'utf8' });
      row.floor = JSON.parse(child.stderr.split('\n').find((l) => l.startsWith('{'))).main_unix_us / 1000 - Number(/exec_at (\d+\.\d+)/.exec(child.stderr)[1]) * 1000;
    }
  }
  return rows;
}

/** For https: a self-signed certificate for 127.0.0.1 and a CA file = the system bundle + it. */
function tlsMaterial() {
  const key = path.join(optDir, 'b.key');
  const cert = path.join(optDir, 'b.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const system = ['/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/certs/ca-certificates.crt'].find((f) => existsSync(f));
  const bundle = path.join(optDir, 'bundle.pem');
  writeFileSync(bundle, (system ? readFileSync(system, 'utf8') : '') + readFileSync(cert, 'utf8'));
  return { key: readFileSync(key), cert: readFileSync(cert), caFile: bundle, certs: (readFileSync(bundle, 'utf8').match(/BEGIN CERTIFICATE/g) || []).length };
}
const TLS = HTTPS ? tlsMaterial() : undefined;

// 2. invocations through the emulator: without the extension, with it (the SDK on its stream),
// with it through its HTTP endpoint (the SDK of an extension layer without the stream: its stream
// port refuses), and with it running but unused by the SDK (COLDSTART_EXTENSION=off: what the
// extension's presence alone costs the function on this machine's two shared cores)
async function invocations(mode) {
  const withExtension = mode !== 'none';
  const backend = await new FakeBackend().listen(TLS);
  const port = await freePort();
  const streamPort = await freePort();
  const emu = new LambdaEmulator({
    extension: withExtension ? EXTENSION : undefined,
    extensions: withExtension ? undefined : [],
    runtime: path.join(here, 'runtime.cjs'),
    taskRoot: path.join(here, 'fixture'),
    freeze: false,
    env: { COLDSTART_API_KEY: 'bench' },
    runtimeEnv: {
      COLDSTART_ENDPOINT: backend.url,
      ...(mode === 'unused' ? { COLDSTART_EXTENSION: 'off' } : {}),
      ...(withExtension
        ? { COLDSTART_EXTENSION_PATH: EXTENSION, COLDSTART_EXTENSION_PORT: String(port), COLDSTART_EXTENSION_STREAM_PORT: String(mode === 'http' ? await freePort() : streamPort) }
        : {}),
      ...(TLS && !withExtension ? { NODE_EXTRA_CA_CERTS: path.join(optDir, 'b.pem') } : {}),
    },
    extensionEnv: { COLDSTART_ENDPOINT: backend.url, COLDSTART_EXTENSION_PORT: String(port), COLDSTART_EXTENSION_STREAM_PORT: String(streamPort), COLDSTART_TELEMETRY_PORT: String(await freePort()), COLDSTART_EXTENSION_LOG_LEVEL: 'info', ...(TLS ? { COLDSTART_CA_FILE: TLS.caFile } : {}) },
  });
  await emu.start();
  const pid = withExtension ? emu.extensionProcs[0].child.pid : undefined;
  const runtimePid = emu.runtime.child.pid;
  for (let i = 0; i < 20; i++) await emu.invoke({ n: i }); // warm-up
  const cpu0 = pid ? cpuMs(pid) : 0;
  const runtimeCpu0 = cpuMs(runtimePid);
  const times = [];
  for (let i = 0; i < N; i++) times.push((await emu.invoke({ n: i })).responseMs);
  const cpu1 = pid ? cpuMs(pid) : 0;
  const runtimeCpu1 = cpuMs(runtimePid);
  const rss = pid ? readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1] : undefined;
  const rssNow = pid ? readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1] : undefined;
  const [exit] = await emu.shutdown();
  backend.close();
  const last = exit ? exit.output.split('\n').filter((l) => l.includes('"shutdown"')).pop() : undefined;
  return {
    times,
    cpuPerInvokeUs: pid ? ((cpu1 - cpu0) * 1000) / N : undefined,
    runtimeCpuPerInvokeUs: ((runtimeCpu1 - runtimeCpu0) * 1000) / N,
    rssKb: Number(rss),
    rssNowKb: Number(rssNow),
    stats: last ? JSON.parse(last) : undefined,
    stored: backend.stored.size,
  };
}

// BENCH_RT=1: the start-ups run in a child under SCHED_FIFO (chrt -f 10, root only): the API
// server and the extension then do not wait for a CPU behind the other work of a shared machine,
// so the wall-clock figures measure the extension (each start is a few ms of CPU; nothing else runs
// at that priority for long).
if (process.env.BENCH_STARTUPS_ONLY === '1') {
  console.log(JSON.stringify(await startups()));
  process.exit(0);
}
const RT = process.env.BENCH_RT === '1';
const starts = RT
  ? JSON.parse(execFileSync('chrt', ['-f', '10', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { env: { ...process.env, BENCH_STARTUPS_ONLY: '1' }, maxBuffer: 64 << 20 }).toString())
  : await startups();
const without = await invocations('none');
const withExt = await invocations('stream');
const viaHttp = await invocations('http');
const unused = await invocations('unused');
const size = readFileSync(binary).length;
const stripped = (() => {
  try {
    execFileSync('strip', ['-o', path.join(optDir, 's'), binary]);
    return readFileSync(path.join(optDir, 's')).length;
  } catch {
    return NaN;
  }
})();
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1];

const col = (k) => starts.map((r) => r[k]);
console.log(`## ${VARIANT || 'coldstart-extension'}

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`extension/bench.sh\` on ${os.cpus().length} × ${cpuModel}, Linux ${os.release()},
load average at the end ${load} (the machine is shared: other builds and a fuzzer were running, so
the wall-clock figures are upper bounds; CPU and RSS are not affected by the load).

Binary: ${path.relative(path.resolve(here, '../..'), binary)}, ${f(size / 1024, 0)} KiB (${f(stripped / 1024, 0)} KiB stripped, as in the layer).

### Start-up (${STARTS} starts against a minimal Extensions API in Node.js${HTTPS ? ', endpoint https://' : ''}${RT ? ', under SCHED_FIFO' : ''})

| | median | p90 | max |
|---|---|---|---|
| **exec() to register answered (ms)** | **${f(q(col('execToRegistered'), 0.5))}** | ${f(q(col('execToRegistered'), 0.9))} | ${f(Math.max(...col('execToRegistered')))} |
| exec() to main() (ms): kernel, dynamic loader, libc | ${f(q(col('execToMain'), 0.5))} | ${f(q(col('execToMain'), 0.9))} | ${f(Math.max(...col('execToMain')))} |
| the same for a program that does nothing (ms): this machine's floor | ${f(q(col('floor'), 0.5))} | ${f(q(col('floor'), 0.9))} | ${f(Math.max(...col('floor')))} |
| main() to register answered (ms) | ${f(q(col('registerMs'), 0.5))} | ${f(q(col('registerMs'), 0.9))} | ${f(Math.max(...col('registerMs')))} |
| exec() to the register request seen by the API (ms) | ${f(q(col('execToRequest'), 0.5))} | ${f(q(col('execToRequest'), 0.9))} | ${f(Math.max(...col('execToRequest')))} |
| main() to subscribed and waiting for events (ms) | ${f(q(col('readyMs'), 0.5))} | ${f(q(col('readyMs'), 0.9))} | ${f(Math.max(...col('readyMs')))} |
| CPU from main() to ready (µs, user+sys) | ${f(q(col('cpuUs'), 0.5), 0)} | ${f(q(col('cpuUs'), 0.9), 0)} | ${f(Math.max(...col('cpuUs')), 0)} |
| **peak RSS at ready (KiB, VmHWM)** | **${f(q(col('rssKb'), 0.5), 0)}** | ${f(q(col('rssKb'), 0.9), 0)} | ${f(Math.max(...col('rssKb')), 0)} |
| minor page faults to ready (bash's before exec() included) | ${f(q(col('faults'), 0.5), 0)} | ${f(q(col('faults'), 0.9), 0)} | ${f(Math.max(...col('faults')), 0)} |

exec() is timed by bash just before it execs the extension (\`$EPOCHREALTIME\`), main() and the
register answer by the extension (its "registered" log line); "register answered" includes the
emulated API's answer time (a Node.js server on the same two cores), and "seen by the API" the
Node.js event loop's delay in noticing the request.${RT ? ' The start-ups ran under SCHED_FIFO (`chrt -f 10`, `BENCH_RT=1`), API server included: the wall-clock figures are not inflated by waiting for a CPU.' : ' Without `BENCH_RT=1` the wall-clock figures include any wait for a CPU on a loaded machine.'} ${HTTPS ? 'With an https endpoint nothing of TLS happens at start-up: the context and the CA bundle are loaded at the first shipment.' : ''}

### Per invocation (${N} warm invocations after 20 warm-up ones, real SDK in a real Node.js runtime)

| | without extension (SDK → backend) | with extension (SDK → stream → extension → backend) | with extension, SDK over its HTTP endpoint (a layer without the stream) | extension running, unused (SDK → backend) |
|---|---|---|---|---|
| function response time, median (ms) | ${f(q(without.times, 0.5))} | ${f(q(withExt.times, 0.5))} | ${f(q(viaHttp.times, 0.5))} | ${f(q(unused.times, 0.5))} |
| function response time, p90 (ms) | ${f(q(without.times, 0.9))} | ${f(q(withExt.times, 0.9))} | ${f(q(viaHttp.times, 0.9))} | ${f(q(unused.times, 0.9))} |
| function response time, p99 (ms) | ${f(q(without.times, 0.99))} | ${f(q(withExt.times, 0.99))} | ${f(q(viaHttp.times, 0.99))} | ${f(q(unused.times, 0.99))} |
| runtime process CPU per invocation (µs, user+sys, from /proc ticks: runtime client + handler + SDK) | ${f(without.runtimeCpuPerInvokeUs, 0)} | ${f(withExt.runtimeCpuPerInvokeUs, 0)} | ${f(viaHttp.runtimeCpuPerInvokeUs, 0)} | ${f(unused.runtimeCpuPerInvokeUs, 0)} |
| extension CPU per invocation (µs, user+sys, from /proc ticks) | - | ${f(withExt.cpuPerInvokeUs, 0)} | ${f(viaHttp.cpuPerInvokeUs, 0)} | ${f(unused.cpuPerInvokeUs, 0)} |
| extension peak RSS (KiB, VmHWM) | - | ${withExt.rssKb} | ${viaHttp.rssKb} | ${unused.rssKb} |
| extension RSS at the end (KiB, VmRSS) | - | ${withExt.rssNowKb} | ${viaHttp.rssNowKb} | ${unused.rssNowKb} |
| records stored by the (fake${HTTPS ? ', https' : ''}) backend | ${without.stored} | ${withExt.stored} | ${viaHttp.stored} | ${unused.stored} |

The runtime process's CPU is the same runtime client and handler in every column: the
differences between columns are the SDK's delivery (batched to the backend; one line on the
stream; one awaited HTTP request to the extension).

Extension counters at SHUTDOWN: \`${JSON.stringify(withExt.stats && { records_received: withExt.stats.records_received, records_joined: withExt.stats.records_joined, records_shipped: withExt.stats.records_shipped, batches: withExt.stats.batches, records_lost: withExt.stats.records_lost, cpu_us: withExt.stats.cpu_us, max_rss_kb: withExt.stats.max_rss_kb })}\`

${HTTPS ? `The extension ships over https, verifying the backend against a CA file of ${TLS.certs} certificates (the system bundle plus the test's self-signed one): the peak RSS includes OpenSSL's context, the parsed bundle and the connection.\n\n` : ''}The environment is not frozen between invocations here (freeze is on in the tests), so the
extension ships while the next invocation runs: the response-time columns include that contention.
Without the extension the SDK batches warm records itself (up to 2 s), which is why "without" also
has no network on the response path for warm invocations; the cold invocation's record is awaited
by the SDK in every column (on the stream: its connection and write, not an answer).
`);
