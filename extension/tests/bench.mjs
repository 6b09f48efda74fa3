// Footprint of coldstart-extension per invocation: CPU, RSS, and the function's duration with and
// without it (the start-up is measured by startup_bench.c, see bench.sh). Eight function
// environments, one per way of running (see MODES), invoked in interleaved rounds and compared
// round by round with the one without the extension, in blocks of environments started afresh.
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
// BENCH_BLOCKS: the rounds are split into blocks, each with environments started afresh: two
// processes running the same code differ by a few per cent for as long as they live (code layout,
// the JIT's choices), which rounds within one set of processes cannot average out
const BLOCKS = Math.max(1, Number(process.env.BENCH_BLOCKS || 5));
// BENCH_WAIT_MS: the handler waits that long (a timer, as for a call to a database) before it
// answers; 0, the default, answers at once: the harshest case, where nothing the extension does
// can hide in the function's idle time
const WAIT_MS = Number(process.env.BENCH_WAIT_MS || 0);
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

// One function environment per mode: without the extension, twice (the second one shows how much
// two identical environments differ: what a difference must exceed to be the extension's); with it (the SDK on its stream); the
// same with the extension under the normal scheduling policy (COLDSTART_EXTENSION_SCHED_IDLE=0),
// to show what SCHED_IDLE buys; the same registered for INVOKE as well as SHUTDOWN
// (COLDSTART_EXTENSION_EVENTS), to show what that costs; with it through its HTTP endpoint (the SDK of an extension layer
// without the stream: its stream port refuses); and with it running but unused by the SDK
// (COLDSTART_EXTENSION=off: what the extension's presence alone costs the function); and, as the
// control for that, a telemetry subscriber that does nothing (tests/null_subscriber.c: what the
// platform's telemetry deliveries cost the function, whoever receives them).
// The environments are frozen between invocations (as Lambda does), so none of them runs
// while another is invoked, and the invocations are interleaved: each round invokes every
// environment once, in a shuffled order, so that the machine's load drifts through all modes alike
// and each mode is compared with "none" round by round.
const MODES = ['none', 'none-b', 'stream', 'stream-normal', 'stream-invoke', 'http', 'unused', 'null'];
const NULL_SUBSCRIBER = path.join(here, '../build/null_subscriber');

// The backends (one per environment) run in a process of their own: what the extension and the
// SDK ship does not pass through this process's event loop, which times the responses.
const backendProc = spawn('chrt', ['--idle', '0', process.execPath, path.join(here, 'fake-backend.mjs'), String(MODES.length), ...(TLS ? [TLS.keyFile, TLS.certFile] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
const backendLines = createInterface({ input: backendProc.stdout })[Symbol.asyncIterator]();
const backendUrls = JSON.parse((await backendLines.next()).value);

async function environment(mode, index) {
  const withExtension = !['none', 'none-b', 'null'].includes(mode);
  const port = await freePort();
  const streamPort = await freePort();
  const emu = new LambdaEmulator({
    extensions: withExtension ? [EXTENSION] : mode === 'null' ? [NULL_SUBSCRIBER] : [],
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
    extensionEnv: mode === 'null' ? { COLDSTART_TELEMETRY_PORT: String(await freePort()) } : {
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
  return { mode, emu, cgroup: emu.cgroup !== undefined, pid: emu.extensionProcs[0]?.child.pid, runtimePid: emu.runtime.child.pid };
}

/** Ends one block's environment: its RSS, its counters at SHUTDOWN, added to the mode's totals. */
async function finish(env, total) {
  const { pid } = env;
  const status = pid ? readFileSync(`/proc/${pid}/status`, 'utf8') : '';
  const [exit] = await env.emu.shutdown();
  const last = exit ? exit.output.split('\n').filter((l) => l.includes('"shutdown"')).pop() : undefined;
  total.extension ||= pid !== undefined;
  total.cpuMs += env.cpu1 - env.cpu0;
  total.runtimeCpuMs += env.runtimeCpu1 - env.runtimeCpu0;
  total.deliveries += env.deliveries1 - env.deliveries0;
  if (pid) {
    total.rssKb = Math.max(total.rssKb || 0, Number(status.match(/VmHWM:\s+(\d+)/)[1]));
    total.rssNowKb = Math.max(total.rssNowKb || 0, Number(status.match(/VmRSS:\s+(\d+)/)[1]));
  }
  if (last) {
    const stats = JSON.parse(last);
    total.stats ??= {};
    for (const [k, v] of Object.entries(stats)) if (typeof v === 'number') total.stats[k] = k === 'max_rss_kb' ? Math.max(total.stats[k] || 0, v) : (total.stats[k] || 0) + v;
  }
}

const shuffle = (xs) => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
};

// Per mode, over all blocks: per-round samples (with their block) and totals.
const results = Object.fromEntries(MODES.map((mode) => [mode, { mode, times: [], callerTimes: [], billedTimes: [], functionTimes: [], eventInTimes: [], responseOutTimes: [], afterResponseTimes: [], blocks: [], cpuMs: 0, runtimeCpuMs: 0, deliveries: 0, cgroup: true }]));
let round = 0;
for (let b = 0; b < BLOCKS; b++) {
  // fresh environments for every block, started in a shuffled order
  const envs = [];
  for (const mode of shuffle([...MODES])) envs.push(await environment(mode, MODES.indexOf(mode)));
  for (const env of envs) {
    env.cpu0 = env.pid ? cpuMs(env.pid) : 0;
    env.deliveries0 = env.emu.deliveries.length;
    env.runtimeCpu0 = cpuMs(env.runtimePid);
  }
  const rounds = Math.round((N * (b + 1)) / BLOCKS) - Math.round((N * b) / BLOCKS);
  for (let i = 0; i < rounds; i++, round++) {
    for (const env of shuffle([...envs])) {
      const r = await env.emu.invoke({ n: round, ...(WAIT_MS ? { sleepMs: WAIT_MS } : {}) });
      const x = results[env.mode];
      x.times[round] = r.runtimeMs;
      x.callerTimes[round] = r.responseMs;
      x.billedTimes[round] = r.billedMs;
      x.functionTimes[round] = r.functionMs;
      x.eventInTimes[round] = r.eventInMs;
      x.responseOutTimes[round] = r.responseOutMs;
      x.afterResponseTimes[round] = r.afterResponseMs;
      x.blocks[round] = b;
    }
    if (GAP_MS) await new Promise((r) => setTimeout(r, GAP_MS));
  }
  for (const env of envs) {
    env.cpu1 = env.pid ? cpuMs(env.pid) : 0;
    env.deliveries1 = env.emu.deliveries.length;
    env.runtimeCpu1 = cpuMs(env.runtimePid);
    results[env.mode].cgroup &&= env.cgroup;
  }
  for (const env of envs) await finish(env, results[env.mode]);
}
for (const x of Object.values(results)) {
  x.cpuPerInvokeUs = x.extension ? (x.cpuMs * 1000) / N : undefined;
  x.runtimeCpuPerInvokeUs = (x.runtimeCpuMs * 1000) / N;
}
await new Promise((r) => setTimeout(r, 200)); // the last shipments reach the backends
backendProc.stdin.write('stats\n');
const stored = JSON.parse((await backendLines.next()).value);
for (const [i, mode] of MODES.entries()) results[mode].stored = stored[i];
backendProc.stdin.end();
const { none: without, 'none-b': withoutB, stream: withExt, 'stream-normal': normalSched, 'stream-invoke': withInvoke, http: viaHttp, unused, null: nullSub } = results;

/**
 * Round-by-round differences from a base mode: their median and a 95 % interval of that median by
 * a two-level bootstrap (blocks drawn with replacement, then rounds within each block drawn), so
 * that the interval covers how much two sets of processes differ, not only the rounds' noise.
 */
function paired(x, base, key) {
  const byBlock = Array.from({ length: BLOCKS }, () => []);
  x[key].forEach((t, i) => byBlock[x.blocks[i]].push(t - base[key][i]));
  const medians = [];
  for (let r = 0; r < 2000; r++) {
    const sample = [];
    for (let b = 0; b < BLOCKS; b++) {
      const block = byBlock[Math.floor(Math.random() * BLOCKS)];
      for (let k = 0; k < block.length; k++) sample.push(block[Math.floor(Math.random() * block.length)]);
    }
    medians.push(q(sample, 0.5));
  }
  return { median: q(byBlock.flat(), 0.5), lo: q(medians, 0.025), hi: q(medians, 0.975) };
}
const diff = (x, key = 'times', base = without) => {
  const p = paired(x, base, key);
  return `${p.median >= 0 ? '+' : ''}${f(p.median, 3)} [${f(p.lo, 3)}, ${f(p.hi, 3)}]`;
};
const row = (label, fn) => `| ${label} | ${[without, withoutB, withExt, normalSched, withInvoke, viaHttp, unused, nullSub].map(fn).join(' | ')} |`;
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

### Per invocation (${N} warm invocations in ${BLOCKS} block${BLOCKS > 1 ? 's' : ''} of environments started afresh, each after 20 warm-up ones, real SDK in a real Node.js runtime, the modes interleaved${GAP_MS ? `, a pause of ${GAP_MS} ms after each round` : ''}${WAIT_MS ? `, the handler waiting ${WAIT_MS} ms on a timer before it answers` : ''})

| | without extension (SDK → backend) | control: without extension, a second environment (the same as the first) | with extension (warm records built by it from Lambda's reports, the cold start's sent on the SDK's stream; → backend) | the same, extension under the normal scheduling policy (COLDSTART_EXTENSION_SCHED_IDLE=0) | the same, extension registered for INVOKE too (COLDSTART_EXTENSION_EVENTS=INVOKE,SHUTDOWN) | with extension, SDK over its HTTP endpoint (a layer without the stream) | extension running, unused (SDK → backend) | control: a telemetry subscriber that does nothing, no extension (SDK → backend) |
|---|---|---|---|---|---|---|---|---|
${row('invocation duration: event handed to the runtime → its response, median (ms)', (x) => f(q(x.times, 0.5), 3))}
${row('**invocation duration minus "without", same round: median [95 % CI] (ms)**', (x) => (x === without ? '-' : `**${diff(x)}**`))}
${row('invocation duration minus the control\'s (a subscriber that does nothing), same round: median [95 % CI] (ms)', (x) => (x === without || x === withoutB || x === nullSub ? '-' : diff(x, 'times', nullSub)))}
${row('invocation duration, p90 (ms)', (x) => f(q(x.times, 0.9)))}
${row('invocation duration, p99 (ms)', (x) => f(q(x.times, 0.99)))}
${row("the function's own clock: its event read → its response ready (the runtime process's hrtime), median (ms)", (x) => f(q(x.functionTimes, 0.5), 3))}
${row('**the function\'s own clock minus "without", same round: median [95 % CI] (ms)**', (x) => (x === without ? '-' : `**${diff(x, 'functionTimes')}**`))}
${row("of the invocation duration, the event's way in: handed over → read by the runtime, median (ms) (minus \"without\" [95 % CI])", (x) => `${f(q(x.eventInTimes, 0.5), 3)}${x === without ? '' : ` (${diff(x, 'eventInTimes')})`}`)}
${row("of the invocation duration, the response's way out: ready → received by the emulator, median (ms) (minus \"without\" [95 % CI])", (x) => `${f(q(x.responseOutTimes, 0.5), 3)}${x === without ? '' : ` (${diff(x, 'responseOutTimes')})`}`)}
${row('invocation ended: event handed to the runtime → the runtime and every extension subscribed to INVOKE waiting for their next event (what Lambda bills), median (ms)', (x) => f(q(x.billedTimes, 0.5), 3))}
${row('invocation ended minus "without", same round: median [95 % CI] (ms)', (x) => (x === without ? '-' : diff(x, 'billedTimes')))}
${row("the function's own clock after its response: the post answered → its next-event request (the SDK's work queued behind the response), median (ms)", (x) => f(q(x.afterResponseTimes, 0.5), 3))}
${row('the same minus "without", same round: median [95 % CI] (ms)', (x) => (x === without ? '-' : diff(x, 'afterResponseTimes')))}
${row("caller's response time: invoke → response, median (ms)", (x) => f(q(x.callerTimes, 0.5), 3))}
${row('caller\'s response time minus "without", same round: median [95 % CI] (ms)', (x) => (x === without ? '-' : diff(x, 'callerTimes')))}
${row("of which the emulator's dispatch before the runtime has its event, median (ms)", (x) => f(q(x.callerTimes.map((t, i) => t - x.times[i]), 0.5), 3))}
${row('runtime process CPU per invocation (µs, user+sys, from /proc ticks: runtime client + handler + SDK)', (x) => f(x.runtimeCpuPerInvokeUs, 0))}
${row('telemetry deliveries per invocation', (x) => (x.extension ? f(x.deliveries / N) : '-'))}
${row('extension CPU per invocation (µs, user+sys, from /proc ticks)', (x) => (x.extension ? f(x.cpuPerInvokeUs, 0) : '-'))}
${row('extension peak RSS (KiB, VmHWM)', (x) => (x.extension ? x.rssKb : '-'))}
${row('extension RSS at the end of a block, the largest (KiB, VmRSS)', (x) => (x.extension ? x.rssNowKb : '-'))}
${row(`records stored by the (fake${HTTPS ? ', https' : ''}) backend`, (x) => x.stored)}

The runtime process's CPU is the same runtime client and handler in every column: the
differences between columns are the SDK's delivery (batched to the backend; nothing for a warm
invocation left to the extension; one awaited HTTP request to the extension's HTTP endpoint).

Extension counters at SHUTDOWN, added up over the blocks (max_rss_kb: the largest): \`${JSON.stringify(withExt.stats && { records_received: withExt.stats.records_received, records_joined: withExt.stats.records_joined, records_from_platform: withExt.stats.records_from_platform, records_shipped: withExt.stats.records_shipped, batches: withExt.stats.batches, records_lost: withExt.stats.records_lost, cpu_us: withExt.stats.cpu_us, max_rss_kb: withExt.stats.max_rss_kb })}\`

${HTTPS ? `The extension ships over https, verifying the backend against a CA file of ${TLS.certs} certificates (the system bundle plus the test's self-signed one): the peak RSS includes OpenSSL's context, the parsed bundle and the connection.\n\n` : ''}Each environment is frozen between its invocations (${Object.values(results).every((x) => x.cgroup) ? 'with the cgroup freezer, one write for all its processes, as Lambda freezes it' : 'with SIGSTOP and SIGCONT to each process: the cgroup freezer was not writable'}), so what the
extension has not finished when an invocation ends runs during the next one, as on Lambda. The
${N} rounds invoke the ${MODES.length} environments once each, in a shuffled order, in ${BLOCKS} block${BLOCKS > 1 ? 's' : ''}
with environments started afresh (two processes running the same code differ by a few per cent for
as long as they live); a "minus without" row is the median of the ${N} differences from the
"without" invocation of the same round, with a 95 % interval from a two-level bootstrap (blocks,
then rounds within them): an interval that contains 0 means no difference this measurement can
tell from noise, and the second environment without the extension shows how large such noise is.
The invocation duration is Lambda's: from the event handed to the runtime to its response. The
function's own clock is the runtime process's: from its event read to its response ready (the
handler, and the SDK's work inside it), which no wait in the emulator can lengthen. "invocation ended" runs on until the runtime (and an extension registered for INVOKE)
asks for the next event, which is what Lambda bills. The caller's response time adds the
emulator's own work before the runtime has its event (thawing it). The runtime client posts the
response synchronously, as AWS's does, so a warm record the SDK writes (from a setImmediate
callback: to its batch without the extension, to the HTTP endpoint of a layer without the stream)
follows the response and precedes the request for the next event; with the extension's stream it
writes nothing for a warm invocation. Lambda's RAPID thaws the
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
