// Footprint of coldstart-extension per invocation: CPU, RSS, and the function's response time with
// and without it (the start-up is measured by startup_bench.c, see bench.sh).
// Writes the figures as Markdown on stdout (bench.sh puts them in RESULTS.md).
// Usage: node tests/bench.mjs <binary> [invocations] [title] [https]
// With "https" the backend is https:// (self-signed certificate appended to the system CA bundle,
// so that the extension loads a bundle of the usual size), as with the layer's default endpoint.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeBackend } from './fake-backend.mjs';
import { cpuMs, freePort, LambdaEmulator } from './lambda-emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = path.resolve(process.argv[2]);
const N = Number(process.argv[3] || 300);
const VARIANT = process.argv[4] || '';
const HTTPS = process.argv[5] === 'https';
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
  return { key: readFileSync(key), cert: readFileSync(cert), caFile: bundle, certs: (readFileSync(bundle, 'utf8').match(/BEGIN CERTIFICATE/g) || []).length };
}
const TLS = HTTPS ? tlsMaterial() : undefined;

// invocations through the emulator: without the extension, with it (the SDK on its stream),
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
      ...(TLS ? { NODE_EXTRA_CA_CERTS: path.join(optDir, 'b.pem') } : {}), // the SDK sends direct without the extension and when it is unused
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

console.log(`## ${VARIANT || 'coldstart-extension'}

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`extension/bench.sh\` on ${os.cpus().length} × ${cpuModel}, Linux ${os.release()},
load average at the end ${load} (the machine is shared with other work, so
the wall-clock figures are upper bounds; CPU and RSS are not affected by the load).

Binary: ${path.relative(path.resolve(here, '../..'), binary)}, ${f(size / 1024, 0)} KiB (${f(stripped / 1024, 0)} KiB stripped, as in the layer).

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
