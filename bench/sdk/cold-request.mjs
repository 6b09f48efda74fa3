// The cold request as a user feels it: init plus the first response, with and without the SDK,
// side by side in one run. One command: `node bench/sdk/cold-request.mjs` (after `npm ci` here and
// `npm ci && npm run build` in sdk). Writes bench/sdk/COLD-REQUEST.md.
//
// Every environment is fresh: the project's Lambda emulator (extension/tests/lambda-emulator.mjs:
// the Runtime API, init, freezing the environment between invocations with SIGSTOP) runs AWS's own
// runtime interface client (npm aws-lambda-ric 4.0.2, its native client prebuilt: the code that
// loads handlers and posts responses in Lambda) on Node.js 22 and 24. Per environment: init (the
// runtime's start to its first request for an event), the first invocation's response as the
// caller sees it, a pause frozen, then a second invocation; whether the cold-start record had
// reached the backend before the second invocation and after it is counted.
//
// Handlers (app/): AWS SDK v3 S3 + DynamoDB clients and express (handler.js), the same bundled
// with esbuild, the whole AWS SDK v2 with moment, lodash and axios (v2.js), and an ES module
// importing the v3 clients and date-fns (esm.mjs). Conditions: no SDK; the SDK through its
// handler redirect with the --require preload, its backend answering 202 at once (loopback),
// refusing connections, or accepting and never answering; the logs transport; Datadog's handler
// redirect with cold start tracing (dd-trace + datadog-lambda-js) for comparison.
// Conditions are interleaved, each round in a new order, so that drift on a shared machine hits them alike;
// figures are medians over BENCH_COLD_RUNS environments (default 9). BENCH_NODES (default 22,24)
// and BENCH_HANDLERS (a comma-separated list of handler files, e.g. app/esm.handler; default all)
// narrow a run, as does BENCH_MODES (condition names separated by "|", e.g. "SDK, backend
// answers|SDK, logs transport"; "no SDK" always runs); BENCH_OUT names the report (default
// COLD-REQUEST.md, beside this file); BENCH_SDK_BEFORE adds another copy of the SDK (below).
// "paired" is the median over rounds of each round's SDK environment against the no-SDK one of the
// same round (neighbours in time on a shared machine),
// with a distribution-free 95 % interval of that median. "CPU init" is the runtime process's CPU
// time (every thread, from /proc/<pid>/task/*/schedstat, nanoseconds) from its start to its first
// request for an event: the work of init, which a busy shared machine stretches far less than wall
// time ("paired CPU init" compares it round by round like "paired"); "CPU 1st invocation" the same
// from there to its request for the next event (the SDK's work after the response included).
import { execSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, requireBuilt } from './setup.mjs';
import { LambdaEmulator } from '../../extension/tests/lambda-emulator.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, '..', '..', 'sdk');
const runs = Number(process.env.BENCH_COLD_RUNS ?? 9);
const versions = (process.env.BENCH_NODES ?? '22,24').split(',');
const ric = process.env.BENCH_RIC ?? join(here, 'node_modules', 'aws-lambda-ric', 'index.mjs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// On a shared machine: this process's scheduler autogroup (inherited by the environments it
// starts) gets a higher weight when allowed, so that other work disturbs the measurements less.
try {
  writeFileSync('/proc/self/autogroup', '-10');
} catch {}

requireBuilt([ric, join(here, 'node_modules', 'aws-sdk'), join(sdk, 'dist', 'index.cjs')]);

// The SDK as npm installs it from the registry: a real directory with the published files.
{
  const target = join(here, 'node_modules', '@coldstart', 'analyzer');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(sdk, 'package.json'), 'utf8'));
  for (const entry of ['package.json', ...manifest.files]) cpSync(join(sdk, entry), join(target, entry), { recursive: true });
}

// The v3 handler bundled with esbuild (CommonJS, minified, everything in), as many functions ship.
const bundleDir = join(here, 'app', '.bundled');
rmSync(bundleDir, { recursive: true, force: true });
mkdirSync(bundleDir, { recursive: true });
createRequire(join(sdk, 'package.json'))('esbuild').buildSync({
  entryPoints: [join(here, 'app', 'handler.js')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  minify: true,
  target: 'node22',
  outfile: join(bundleDir, 'handler.js'),
  logLevel: 'error',
});

// BENCH_SDK_BEFORE: the folder of another built copy of the SDK (package.json, dist, ... as in sdk/),
// e.g. the main branch's before a change: installed as .before/node_modules/@coldstart/analyzer and
// run as more conditions, "SDK before, logs transport" and "SDK before, backend answers", beside
// the others in the same run. Where a copy is installed can itself move the first invocation's
// billed time (bench/sdk/COLD-REQUEST-BILLED.md): swap the copies to compare two builds.
const before = process.env.BENCH_SDK_BEFORE;
if (before) {
  const target = join(here, '.before', 'node_modules', '@coldstart', 'analyzer');
  rmSync(join(here, '.before'), { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const entry of ['package.json', 'dist', 'esm', 'register.cjs', 'handler.mjs'])
    cpSync(join(before, entry), join(target, entry), { recursive: true });
}

const sink = spawn(process.execPath, [join(here, 'cold-sink.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const [answeringPort, silentPort] = await new Promise((resolve) =>
  sink.stdout.once('data', (d) => resolve(d.toString().trim().split(' ').map(Number))),
);
const refusingPort = 9; // discard: nothing listens on loopback
const coldAtBackend = async (name) =>
  Number(await (await fetch(`http://127.0.0.1:${answeringPort}/cold?fn=${encodeURIComponent(name)}`)).text());

const handlers = [
  { name: 'AWS SDK v3 (S3, DynamoDB) + express', handler: 'app/handler.handler' },
  { name: 'the same, bundled with esbuild', handler: 'app/.bundled/handler.handler' },
  { name: 'AWS SDK v2 + moment + lodash + axios', handler: 'app/v2.handler' },
  { name: 'ES module: AWS SDK v3 + date-fns', handler: 'app/esm.handler' },
];
if (process.env.BENCH_HANDLERS) {
  const wanted = new Set(process.env.BENCH_HANDLERS.split(','));
  handlers.splice(0, handlers.length, ...handlers.filter((h) => wanted.has(h.handler)));
}
const sdkEnv = (handler) => ({
  COLDSTART_API_KEY: 'csa_benchbenchbenchbenchbenchbench',
  COLDSTART_HANDLER: handler,
  NODE_OPTIONS: '--require @coldstart/analyzer/register',
});
const REDIRECT = 'node_modules/@coldstart/analyzer/handler.handler';
const modes = [
  { name: 'no SDK', handler: (h) => h, env: () => ({}) },
  {
    name: 'SDK, backend answers',
    handler: () => REDIRECT,
    env: (h) => ({ ...sdkEnv(h), COLDSTART_ENDPOINT: `http://127.0.0.1:${answeringPort}` }),
    backend: true,
  },
  {
    name: 'SDK, backend refuses',
    handler: () => REDIRECT,
    env: (h) => ({ ...sdkEnv(h), COLDSTART_ENDPOINT: `http://127.0.0.1:${refusingPort}` }),
  },
  {
    name: 'SDK, backend silent',
    handler: () => REDIRECT,
    env: (h) => ({ ...sdkEnv(h), COLDSTART_ENDPOINT: `http://127.0.0.1:${silentPort}` }),
  },
  {
    name: 'SDK, logs transport',
    handler: () => REDIRECT,
    env: (h) => ({ ...sdkEnv(h), COLDSTART_TRANSPORT: 'logs', COLDSTART_API_KEY: undefined }),
    logs: true,
  },
  ...(before
    ? [
        {
          name: 'SDK before, logs transport',
          handler: () => `.before/${REDIRECT}`,
          env: (h) => ({
            ...sdkEnv(h),
            COLDSTART_TRANSPORT: 'logs',
            COLDSTART_API_KEY: undefined,
            NODE_OPTIONS: `--require ${join(here, '.before', 'node_modules', '@coldstart', 'analyzer', 'register.cjs')}`,
          }),
          logs: true,
        },
        {
          name: 'SDK before, backend answers',
          handler: () => `.before/${REDIRECT}`,
          env: (h) => ({
            ...sdkEnv(h),
            COLDSTART_ENDPOINT: `http://127.0.0.1:${answeringPort}`,
            NODE_OPTIONS: `--require ${join(here, '.before', 'node_modules', '@coldstart', 'analyzer', 'register.cjs')}`,
          }),
          backend: true,
        },
      ]
    : []),
  {
    name: 'Datadog, cold start tracing',
    handler: () => 'node_modules/datadog-lambda-js/dist/handler.handler',
    env: (h) => ({
      DD_LAMBDA_HANDLER: h,
      DD_API_KEY: 'x',
      DD_FLUSH_TO_LOG: 'true',
      DD_LOG_LEVEL: 'error',
      DD_COLD_START_TRACING: 'true',
      DD_TRACE_ENABLED: 'true',
    }),
  },
];

if (process.env.BENCH_MODES) {
  const wanted = new Set(['no SDK', ...process.env.BENCH_MODES.split('|')]);
  modes.splice(0, modes.length, ...modes.filter((m) => wanted.has(m.name)));
}

let serial = 0;
/** One fresh environment: init, two invocations, shutdown. */
/** CPU time (ms) of every live thread of a process; NaN when /proc cannot tell. */
function cpuMs(pid) {
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`))
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e6;
  } catch {
    return NaN;
  }
}

async function environment(binary, version, h, mode) {
  const functionName = `bench-${version}-${++serial}`;
  const env = { AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${version}.x`, NODE_NO_WARNINGS: '1', ...mode.env(h.handler) };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const emulator = new LambdaEmulator({
    taskRoot: here,
    handler: mode.handler(h.handler),
    runtime: ric,
    node: binary,
    functionName,
    memoryMB: 1024,
    timeoutMs: 10_000,
    env,
  });
  try {
    if ((await emulator.start()) !== 'success') return { failed: emulator.runtime?.output.slice(-500) };
    const cpuInitMs = cpuMs(emulator.runtime.child.pid);
    const first = await emulator.invoke({});
    const cpuFirstMs = cpuMs(emulator.runtime.child.pid); // the runtime waits (frozen) for its next event
    if (first.status !== 'success') return { failed: `${first.body} ${emulator.runtime.output.slice(-400)}` };
    await sleep(50); // frozen
    const logLines = () => (emulator.runtime.output.match(/\{"coldstart_record":\{[^\n]*"cold_start":true/g) ?? []).length;
    const before = mode.backend ? await coldAtBackend(functionName) : mode.logs ? logLines() : undefined;
    const second = await emulator.invoke({});
    await sleep(150);
    const after = mode.backend ? await coldAtBackend(functionName) : mode.logs ? logLines() : undefined;
    return {
      initMs: emulator.initDurationMs,
      firstMs: first.responseMs,
      firstBilledMs: first.billedMs,
      cpuInitMs,
      cpuFirstMs,
      secondMs: second.responseMs,
      before,
      after,
    };
  } catch (error) {
    return { failed: String(error?.message ?? error) };
  } finally {
    try {
      await emulator.shutdown();
    } catch {
      emulator.destroy();
    }
  }
}

const results = {}; // version -> handler -> mode -> samples
for (const version of versions)
  results[version] = Object.fromEntries(handlers.map((h) => [h.name, Object.fromEntries(modes.map((m) => [m.name, []]))]));
const binaries = Object.fromEntries(versions.map((v) => [v, nodeBinary(v)]));
// Each round runs the conditions in a new order (seeded: BENCH_SEED, default 1), so that whatever
// one environment leaves behind on the machine (page cache, the sink's work, a frequency step)
// does not always fall on the same neighbour.
let seed = Number(process.env.BENCH_SEED ?? 1) >>> 0 || 1;
const random = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const shuffled = (xs) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};
for (let i = 0; i < runs; i++) {
  for (const version of versions) {
    for (const h of handlers) {
      for (const mode of shuffled(modes)) results[version][h.name][mode.name].push(await environment(binaries[version], version, h, mode));
    }
  }
  process.stderr.write(`\r  run ${i + 1}/${runs}`);
}
process.stderr.write('\n');
sink.kill('SIGTERM');

// ---- report -----------------------------------------------------------------------------------
const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const pct = (x, base) =>
  Number.isFinite(x) && Number.isFinite(base) && base > 0 ? `${x >= base ? '+' : ''}${(((x - base) / base) * 100).toFixed(1)} %` : 'n/a';
/** Median of the rounds' relative differences (init + 1st, this condition against no SDK in the
 * same round) and its 95 % interval from order statistics (binomial, distribution-free). */
const paired = (bare, sdk, of = (s) => s.initMs + s.firstMs) => {
  const d = [];
  for (let i = 0; i < Math.min(bare.length, sdk.length); i++) {
    const [b, x] = [bare[i], sdk[i]];
    if (b.failed !== undefined || x.failed !== undefined || !Number.isFinite(of(b)) || !Number.isFinite(of(x))) continue;
    d.push((of(x) / of(b) - 1) * 100);
  }
  if (d.length < 3) return 'n/a';
  d.sort((a, b) => a - b);
  const n = d.length;
  const lo = Math.max(0, Math.floor(n / 2 - 0.98 * Math.sqrt(n)));
  const hi = Math.min(n - 1, Math.ceil(n / 2 + 0.98 * Math.sqrt(n)) - 1);
  const p = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
  return `${p(median(d))} % (${p(d[lo])} to ${p(d[hi])})`;
};
const sh = (command) => {
  try {
    return execSync(command, { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
};
const lines = [];
lines.push('# @coldstart/analyzer: the cold request (init + first response)');
lines.push('');
lines.push(`Produced by \`node bench/sdk/cold-request.mjs\` (BENCH_COLD_RUNS=${runs}, Node.js ${versions.join(' and ')}).`);
lines.push('');
lines.push(
  `Machine: ${sh('nproc')} CPUs, ${sh('uname -m')}, ${sh('uname -sr')}; date ${new Date().toISOString()}; load average at the end: ${sh("cut -d' ' -f1-3 /proc/loadavg")}.`,
);
lines.push(
  "Each figure is the median over fresh environments (the project's Lambda emulator running AWS's runtime interface client 4.0.2), all conditions interleaved round-robin in one run.",
);
lines.push(
  '"init + 1st" is what the caller of a cold start waits for beyond the platform\'s own work; "vs no SDK" compares it with the same handler without the SDK in the same run.',
);
lines.push(
  '"1st billed" runs from the event handed to the runtime to its request for the next one (what Lambda bills): the SDK\'s work after the response is in it, not in the response.',
);
lines.push(
  '"CPU init" is the runtime process\'s CPU time, all threads, from its start to its first request for an event: the work of init, which a shared machine stretches far less than wall time ("paired CPU init": round by round, like "paired"). "CPU 1st invocation": the same from there to its request for the next event (the SDK\'s work after the response included).',
);
lines.push(
  '"1st response > 10 ms" counts the environments whose first response took a pause of the size of a major garbage collection\'s (the ES module handler\'s own heap makes one due near the end of its init, with or without the SDK: a lottery that medians of a few environments cannot settle).',
);
lines.push(
  '"record" counts environments whose cold-start record had reached the backend (or stdout, logs transport) before the second invocation / after it; the environment is frozen (SIGSTOP) as soon as the runtime asks for its next event.',
);
lines.push('');
for (const version of versions) {
  for (const h of handlers) {
    lines.push(`## Node.js ${version}: ${h.name}`);
    lines.push('');
    lines.push(
      '| condition | init ms | 1st response ms | init + 1st ms | vs no SDK | paired (95 % interval) | CPU init ms | paired CPU init (95 % interval) | CPU 1st invocation ms | 1st response > 10 ms | 1st billed ms | 2nd response ms | record before 2nd / after |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    const samples = results[version][h.name];
    const bare = median(samples['no SDK'].map((s) => s.initMs + s.firstMs));
    for (const mode of modes) {
      const ok = samples[mode.name].filter((s) => s.failed === undefined);
      const failed = samples[mode.name].length - ok.length;
      const total = median(ok.map((s) => s.initMs + s.firstMs));
      const counted = ok.filter((s) => s.before !== undefined);
      const record = counted.length
        ? `${counted.filter((s) => s.before > 0).length}/${counted.length} / ${counted.filter((s) => s.after > 0).length}/${counted.length}`
        : '';
      lines.push(
        `| ${mode.name}${failed ? ` (${failed} failed)` : ''} | ${f(median(ok.map((s) => s.initMs)))} | ${f(median(ok.map((s) => s.firstMs)), 2)} | ${f(total)} | ${mode.name === 'no SDK' ? '' : pct(total, bare)} | ${mode.name === 'no SDK' ? '' : paired(samples['no SDK'], samples[mode.name])} | ${f(median(ok.map((s) => s.cpuInitMs)))} | ${mode.name === 'no SDK' ? '' : paired(samples['no SDK'], samples[mode.name], (s) => s.cpuInitMs)} | ${f(median(ok.map((s) => s.cpuFirstMs - s.cpuInitMs)))} | ${ok.filter((s) => s.firstMs > 10).length}/${ok.length} | ${f(median(ok.map((s) => s.firstBilledMs)), 2)} | ${f(median(ok.map((s) => s.secondMs)), 2)} | ${record} |`,
      );
    }
    const failures = modes.flatMap((m) =>
      samples[m.name]
        .filter((s) => s.failed !== undefined)
        .slice(0, 1)
        .map((s) => `- ${m.name}: ${String(s.failed).replace(/\s+/g, ' ').slice(0, 300)}`),
    );
    if (failures.length) lines.push('', 'First failure of each failing condition:', ...failures);
    lines.push('');
  }
}
const report = lines.join('\n');
writeFileSync(resolve(here, process.env.BENCH_OUT ?? 'COLD-REQUEST.md'), report + '\n');
console.log(report);
process.exit(0);
