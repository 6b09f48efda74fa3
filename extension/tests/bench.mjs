// Footprint of coldstart-extension per invocation: CPU, RSS, and the function's duration with and
// without it (the start-up is measured by startup_bench.c, see bench.sh). Five function
// environments, one per way of running (see MODES), invoked in interleaved rounds and compared
// round by round with the one without the extension.
// Writes the figures as Markdown on stdout (bench.sh puts them in RESULTS.md).
// Usage: node tests/bench.mjs <binary> [invocations] [title] [https]
// With "https" the backend is https:// (self-signed certificate appended to the system CA bundle,
// so that the extension loads a bundle of the usual size), as with the layer's default endpoint.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { cpuMs, freePort, LambdaEmulator } from './lambda-emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = path.resolve(process.argv[2]);
const N = Number(process.argv[3] || 500);
const VARIANT = process.argv[4] || '';
const HTTPS = process.argv[5] === 'https';
// BENCH_GAP_MS: a pause after each round, so that each environment is invoked about that often
// (longer than the telemetry buffering: every thaw then brings a telemetry delivery)
const GAP_MS = Number(process.env.BENCH_GAP_MS || 0);
const optDir = mkdtempSync(path.join(os.tmpdir(), 'csa-bench-'));
symlinkSync(binary, path.join(optDir, 'coldstart'));
const EXTENSION = path.join(optDir, 'coldstart');

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
/** For https: a self-signed certificate for 127.0.0.1 and a CA file = the system bundle + it. */
function tlsMaterial() {
  const key = path.join(optDir, 'b.key');
  const cert = path.join(optDir, 'b.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const system = ['/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/certs/ca-certificates.crt'].find((f) => existsSync(f));
  const bundle = path.join(optDir, 'bundle.pem');
  writeFileSync(bundle, (system ? readFileSync(system, 'utf8') : '') + readFileSync(cert, 'utf8'));
  return { keyFile: key, certFile: cert, caFile: bundle, certs: (readFileSync(bundle, 'utf8').match(/BEGIN CERTIFICATE/g) || []).length };
}
const TLS = HTTPS ? tlsMaterial() : undefined;

// One function environment per mode: without the extension; with it (the SDK on its stream); the
// same with the extension under the normal scheduling policy (COLDSTART_EXTENSION_SCHED_IDLE=0),
// to show what SCHED_IDLE buys; the same registered for INVOKE as well as SHUTDOWN
// (COLDSTART_EXTENSION_EVENTS), to show what that costs; with it through its HTTP endpoint (the SDK of an extension layer
// without the stream: its stream port refuses); and with it running but unused by the SDK
// (COLDSTART_EXTENSION=off: what the extension's presence alone costs the function).
// The environments are frozen between invocations (SIGSTOP, as Lambda does), so none of them runs
// while another is invoked, and the invocations are interleaved: each round invokes every
// environment once, in a shuffled order, so that the machine's load drifts through all modes alike
// and each mode is compared with "none" round by round.
const MODES = ['none', 'stream', 'stream-normal', 'stream-invoke', 'http', 'unused'];

// The backends (one per environment) run in a process of their own: what the extension and the
// SDK ship does not pass through this process's event loop, which times the responses.
const backendProc = spawn('chrt', ['--idle', '0', process.execPath, path.join(here, 'fake-backend.mjs'), String(MODES.length), ...(TLS ? [TLS.keyFile, TLS.certFile] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
const backendLines = createInterface({ input: backendProc.stdout })[Symbol.asyncIterator]();
const backendUrls = JSON.parse((await backendLines.next()).value);

async function environment(mode, index) {
  const withExtension = mode !== 'none';
  const port = await freePort();
  const streamPort = await freePort();
  const emu = new LambdaEmulator({
    extension: withExtension ? EXTENSION : undefined,
    extensions: withExtension ? undefined : [],
    runtime: path.join(here, 'runtime.cjs'),
    taskRoot: path.join(here, 'fixture'),
    freeze: true,
    freezer: 'cgroup', // as Lambda freezes an environment (signals where the freezer is not writable)
    env: { COLDSTART_API_KEY: 'bench' },
    runtimeEnv: {
      COLDSTART_ENDPOINT: backendUrls[index],
      ...(mode === 'unused' ? { COLDSTART_EXTENSION: 'off' } : {}),
      ...(withExtension
        ? { COLDSTART_EXTENSION_PATH: EXTENSION, COLDSTART_EXTENSION_PORT: String(port), COLDSTART_EXTENSION_STREAM_PORT: String(mode === 'http' ? await freePort() : streamPort) }
        : {}),
      ...(TLS ? { NODE_EXTRA_CA_CERTS: path.join(optDir, 'b.pem') } : {}), // the SDK sends direct without the extension and when it is unused
    },
    extensionEnv: {
      COLDSTART_ENDPOINT: backendUrls[index],
      COLDSTART_EXTENSION_PORT: String(port),
      COLDSTART_EXTENSION_STREAM_PORT: String(streamPort),
      COLDSTART_TELEMETRY_PORT: String(await freePort()),
      COLDSTART_EXTENSION_LOG_LEVEL: 'info',
      ...(mode === 'stream-normal' ? { COLDSTART_EXTENSION_SCHED_IDLE: '0' } : {}),
      ...(mode === 'stream-invoke' ? { COLDSTART_EXTENSION_EVENTS: 'INVOKE,SHUTDOWN' } : {}),
      ...(TLS ? { COLDSTART_CA_FILE: TLS.caFile } : {}),
    },
  });
  await emu.start();
  for (let i = 0; i < 20; i++) await emu.invoke({ n: i }); // warm-up
  return { mode, emu, cgroup: emu.cgroup !== undefined, pid: withExtension ? emu.extensionProcs[0].child.pid : undefined, runtimePid: emu.runtime.child.pid, times: [], callerTimes: [], billedTimes: [] };
}

async function finish(env) {
  const { pid } = env;
  const rss = pid ? readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1] : undefined;
  const rssNow = pid ? readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1] : undefined;
  const [exit] = await env.emu.shutdown();
  const last = exit ? exit.output.split('\n').filter((l) => l.includes('"shutdown"')).pop() : undefined;
  return {
    ...env,
    cpuPerInvokeUs: pid ? ((env.cpu1 - env.cpu0) * 1000) / N : undefined,
    runtimeCpuPerInvokeUs: ((env.runtimeCpu1 - env.runtimeCpu0) * 1000) / N,
    rssKb: Number(rss),
    rssNowKb: Number(rssNow),
    stats: last ? JSON.parse(last) : undefined,
  };
}

const envs = [];
for (const [i, mode] of MODES.entries()) envs.push(await environment(mode, i));
for (const env of envs) {
  env.cpu0 = env.pid ? cpuMs(env.pid) : 0;
  env.runtimeCpu0 = cpuMs(env.runtimePid);
}
for (let i = 0; i < N; i++) {
  const order = [...envs].sort(() => Math.random() - 0.5);
  for (const env of order) {
    const r = await env.emu.invoke({ n: i });
    env.times[i] = r.runtimeMs;
    env.callerTimes[i] = r.responseMs;
    env.billedTimes[i] = r.billedMs;
  }
  if (GAP_MS) await new Promise((r) => setTimeout(r, GAP_MS));
}
for (const env of envs) {
  env.cpu1 = env.pid ? cpuMs(env.pid) : 0;
  env.runtimeCpu1 = cpuMs(env.runtimePid);
}
const results = {};
for (const env of envs) results[env.mode] = await finish(env);
await new Promise((r) => setTimeout(r, 200)); // the last shipments reach the backends
backendProc.stdin.write('stats\n');
const stored = JSON.parse((await backendLines.next()).value);
for (const [i, mode] of MODES.entries()) results[mode].stored = stored[i];
backendProc.stdin.end();
const { none: without, stream: withExt, 'stream-normal': normalSched, 'stream-invoke': withInvoke, http: viaHttp, unused } = results;

/** Round-by-round difference from "none": its median and a bootstrap 95 % interval of that median. */
function paired(times, base) {
  const d = times.map((t, i) => t - base[i]);
  const medians = [];
  for (let b = 0; b < 2000; b++) medians.push(q(Array.from(d, () => d[Math.floor(Math.random() * d.length)]), 0.5));
  return { median: q(d, 0.5), lo: q(medians, 0.025), hi: q(medians, 0.975) };
}
const diff = (x, key = 'times') => {
  const p = paired(x[key], without[key]);
  return `${p.median >= 0 ? '+' : ''}${f(p.median, 3)} [${f(p.lo, 3)}, ${f(p.hi, 3)}]`;
};
const row = (label, fn) => `| ${label} | ${[without, withExt, normalSched, withInvoke, viaHttp, unused].map(fn).join(' | ')} |`;
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

console.log(`## ${VARIANT || 'coldstart-extension'}

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`extension/bench.sh\` on ${os.cpus().length} × ${cpuModel}, Linux ${os.release()},
load average at the end ${load} (the machine is shared with other work, so
the wall-clock figures are upper bounds; CPU and RSS are not affected by the load).

Binary: ${path.relative(path.resolve(here, '../..'), binary)}, ${f(size / 1024, 0)} KiB (${f(stripped / 1024, 0)} KiB stripped, as in the layer).

### Per invocation (${N} warm invocations after 20 warm-up ones, real SDK in a real Node.js runtime, the modes interleaved${GAP_MS ? `, a pause of ${GAP_MS} ms after each round` : ''})

| | without extension (SDK → backend) | with extension (SDK → stream → extension → backend) | the same, extension under the normal scheduling policy (COLDSTART_EXTENSION_SCHED_IDLE=0) | the same, extension registered for INVOKE too (COLDSTART_EXTENSION_EVENTS=INVOKE,SHUTDOWN) | with extension, SDK over its HTTP endpoint (a layer without the stream) | extension running, unused (SDK → backend) |
|---|---|---|---|---|---|---|
${row('invocation duration: event handed to the runtime → its response, median (ms)', (x) => f(q(x.times, 0.5), 3))}
${row('**invocation duration minus "without", same round: median [95 % CI] (ms)**', (x) => (x === without ? '-' : `**${diff(x)}**`))}
${row('invocation duration, p90 (ms)', (x) => f(q(x.times, 0.9)))}
${row('invocation duration, p99 (ms)', (x) => f(q(x.times, 0.99)))}
${row('invocation ended: event handed to the runtime → the runtime and every extension subscribed to INVOKE waiting for their next event (what Lambda bills), median (ms)', (x) => f(q(x.billedTimes, 0.5), 3))}
${row('invocation ended minus "without", same round: median [95 % CI] (ms)', (x) => (x === without ? '-' : diff(x, 'billedTimes')))}
${row("caller's response time: invoke → response, median (ms)", (x) => f(q(x.callerTimes, 0.5), 3))}
${row('caller\'s response time minus "without", same round: median [95 % CI] (ms)', (x) => (x === without ? '-' : diff(x, 'callerTimes')))}
${row("of which the emulator's dispatch before the runtime has its event, median (ms)", (x) => f(q(x.callerTimes.map((t, i) => t - x.times[i]), 0.5), 3))}
${row('runtime process CPU per invocation (µs, user+sys, from /proc ticks: runtime client + handler + SDK)', (x) => f(x.runtimeCpuPerInvokeUs, 0))}
${row('extension CPU per invocation (µs, user+sys, from /proc ticks)', (x) => (x.pid ? f(x.cpuPerInvokeUs, 0) : '-'))}
${row('extension peak RSS (KiB, VmHWM)', (x) => (x.pid ? x.rssKb : '-'))}
${row('extension RSS at the end (KiB, VmRSS)', (x) => (x.pid ? x.rssNowKb : '-'))}
${row(`records stored by the (fake${HTTPS ? ', https' : ''}) backend`, (x) => x.stored)}

The runtime process's CPU is the same runtime client and handler in every column: the
differences between columns are the SDK's delivery (batched to the backend; one line on the
stream; one awaited HTTP request to the extension).

Extension counters at SHUTDOWN: \`${JSON.stringify(withExt.stats && { records_received: withExt.stats.records_received, records_joined: withExt.stats.records_joined, records_shipped: withExt.stats.records_shipped, batches: withExt.stats.batches, records_lost: withExt.stats.records_lost, cpu_us: withExt.stats.cpu_us, max_rss_kb: withExt.stats.max_rss_kb })}\`

${HTTPS ? `The extension ships over https, verifying the backend against a CA file of ${TLS.certs} certificates (the system bundle plus the test's self-signed one): the peak RSS includes OpenSSL's context, the parsed bundle and the connection.\n\n` : ''}Each environment is frozen between its invocations (${envs.every((e) => e.cgroup) ? 'with the cgroup freezer, one write for all its processes, as Lambda freezes it' : 'with SIGSTOP and SIGCONT to each process: the cgroup freezer was not writable'}), so what the
extension has not finished when an invocation ends runs during the next one, as on Lambda. The
${N} rounds invoke the ${MODES.length} environments once each, in a shuffled order; a "minus
without" row is the median of the ${N} differences from the "without" invocation of the same round,
with a bootstrap 95 % interval: an interval that contains 0 means no difference this measurement can
tell from noise. The invocation duration is Lambda's: from the event handed to the runtime to its
response; "invocation ended" runs on until the runtime (and an extension registered for INVOKE)
asks for the next event, which is what Lambda bills. The caller's response time adds the
emulator's own work before the runtime has its event (thawing it). The runtime client posts the
response synchronously, as AWS's does, so the SDK's record (written from a setImmediate callback)
follows the response and precedes the request for the next event. Lambda's RAPID thaws the
environment at once and hands out the runtime's and the extensions' events in parallel; this
emulator is one thread and does the runtime's part first, the extensions' (their SIGCONT, INVOKE
events, the telemetry that came due while frozen) right after, while the handler runs. The
backend stand-ins run in a process of their own under SCHED_IDLE: they stand for a server
elsewhere, not for work inside the function's environment. Without the extension the SDK batches
warm records itself (up to 2 s), so "without" has no network on the response path either, and
what is still in its batch when the environment is shut down is lost (the "records stored" row):
without an extension registered for SHUTDOWN, Lambda, like the emulator, kills the runtime
without warning. The cold invocation's record is awaited by the SDK in every column (on the
stream: its connection and write, not an answer).
`);
