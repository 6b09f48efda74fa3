// ES module LOADING cost of one handler, bundled and not, with and without the SDK, on Node.js 22
// and 24. One command: `node bench/sdk/esm-loading.mjs` (after `npm ci && npm run build` in sdk).
// Writes bench/sdk/ESM-LOADING.md.
//
// The handler is the SDK's loading ground truth (sdk/test/fixtures/loading/generate.mjs): an ES
// module importing a barrel of 400 one-function files (shaped like date-fns), a 1.5 MB module, a
// CommonJS package whose exports Node must detect, and six JSON modules. Unbundled, Node resolves,
// reads and compiles about 410 files before any body runs; bundled with esbuild (ESM, minified,
// tree-shaken) it loads one file. Conditions, each in fresh processes (BENCH_RUNS, default 15),
// interleaved round-robin so that drift on a shared machine hits them alike, medians reported:
//   unbundled / bundled, without the SDK / with the SDK preloaded (--require register, the
//   handler imported by the benchmark as the runtime would).
// Reported per condition: the handler's import time (loading + evaluation), and with the SDK what
// it says: the barrel's self time, the part of it that is loading, linking and its own overhead.
// BENCH_SDK_OTHER=<folder of another built copy of the SDK (dist/, register.cjs)> adds the
// condition "unbundled, other SDK build preloaded", interleaved with the rest: two builds side by
// side in one run (a busy machine drifts too much between runs). BENCH_UNBUNDLED_ONLY=1 leaves
// the bundle out.
// Node.js 20 (module.register's hooks thread, timed only with COLDSTART_ESM_TIMING=on):
// BENCH_NODES=20 (the Node.js running this script, if it is a 20; BENCH_NODES picks among 20, 22,
// 24) with BENCH_ESM_TIMING=on (set in the SDK's processes) and BENCH_OUT=<file> (instead of
// ESM-LOADING.md); bench/sdk/ESM-LOADING-NODE20.md is
//   BENCH_NODES=20 BENCH_ESM_TIMING=on BENCH_UNBUNDLED_ONLY=1 BENCH_SDK_OTHER=<an earlier build>
//   BENCH_OUT=bench/sdk/ESM-LOADING-NODE20.md node bench/sdk/esm-loading.mjs
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, '..', '..', 'sdk');
const runs = Number(process.env.BENCH_RUNS ?? 15);
const hasSetsid = spawnSync('setsid', ['true']).status === 0;
if (!existsSync(join(sdk, 'dist', 'index.cjs'))) {
  console.error('run `npm ci && npm run build` in sdk first');
  process.exit(1);
}
// the binaries of sdk/test/multi-node.mjs (test/node-versions), or the SDK's node_modules
const nodes = (process.env.BENCH_NODES ?? '22 24')
  .split(/[ ,]+/)
  .filter(Boolean)
  .map((v) => ({
    v,
    bin: [
      join(sdk, 'test', 'node-versions', 'node_modules', `node${v}`, 'bin', 'node'),
      join(sdk, 'node_modules', `node${v}`, 'bin', 'node'),
      ...(process.versions.node.split('.')[0] === v ? [process.execPath] : []),
    ].find((b) => existsSync(b)),
  }))
  .filter((n) => n.bin !== undefined);
if (nodes.length === 0) {
  console.error(
    'no Node.js 22/24 binaries: run `node test/multi-node.mjs 22 24 -- test/unit/inject.test.ts` in sdk once (it installs them)',
  );
  process.exit(1);
}
const other = process.env.BENCH_SDK_OTHER;

const app = mkdtempSync(join(tmpdir(), 'coldstart-esm-bench-'));
const { generate } = await import(join(sdk, 'test', 'fixtures', 'loading', 'generate.mjs'));
generate(app, sdk);
const esbuild = createRequire(join(sdk, 'package.json'))('esbuild');
esbuild.buildSync({
  entryPoints: [join(app, 'index.mjs')],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  outfile: join(app, 'bundle.mjs'),
  logLevel: 'error',
});
// one measurement: import the handler, print the time and what the SDK recorded (if loaded)
writeFileSync(
  join(app, 'measure.mjs'),
  `try { (await import('node:fs')).writeFileSync('/proc/self/autogroup', '-10'); } catch {}
performance.now();
await import('./warm.mjs');
await new Promise((r) => setTimeout(r, 150));
const started = process.hrtime.bigint();
await import('./' + process.argv[2]);
const ms = Number(process.hrtime.bigint() - started) / 1e6;
await new Promise((r) => setImmediate(r));
const rt = globalThis[Symbol.for('coldstart.analyzer.runtime')];
let sdk;
if (rt) {
  const find = (node) => { for (const child of node.children?.values() ?? []) { if (child.key === 'barrel-fns') return child; const f = find(child); if (f) return f; } };
  const barrel = find(rt.recorder.root);
  sdk = { barrelMs: (rt.recorder.selfNs.get('barrel-fns') ?? 0) / 1e6, barrelLoadingMs: barrel ? barrel.loadingNs / 1e6 : 0,
    linkMs: rt.recorder.linkNs / 1e6, overheadMs: rt.recorder.overheadNs / 1e6, sdkKey: rt.recorder.selfNs.has('@coldstart/analyzer'), esm: rt.esmTiming };
}
process.stdout.write(JSON.stringify({ ms, sdk }) + '\\n');
`,
);

const env = {
  PATH: process.env.PATH,
  LAMBDA_TASK_ROOT: app,
  COLDSTART_API_KEY: 'csa_bench',
  COLDSTART_ENDPOINT: 'http://127.0.0.1:9',
  ...(process.env.BENCH_ESM_TIMING ? { COLDSTART_ESM_TIMING: process.env.BENCH_ESM_TIMING } : {}),
};
const out = process.env.BENCH_OUT ?? join(here, 'ESM-LOADING.md');
function once(bin, file, withSdk) {
  const preload = withSdk === 'other' ? join(other, 'register.cjs') : '@coldstart/analyzer/register';
  const args = [...(withSdk ? ['--require', preload] : []), 'measure.mjs', file];
  const [command, argv] = hasSetsid ? ['setsid', [bin, ...args]] : [bin, args];
  const r = spawnSync(command, argv, { cwd: app, env, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${file}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f1 = (x) => x.toFixed(1);
const conditions = [
  ['unbundled, no SDK', 'index.mjs', false],
  ['unbundled, SDK preloaded', 'index.mjs', true],
  ...(other ? [['unbundled, other SDK build preloaded', 'index.mjs', 'other']] : []),
  ...(process.env.BENCH_UNBUNDLED_ONLY === '1'
    ? []
    : [
        ['bundled, no SDK', 'bundle.mjs', false],
        ['bundled, SDK preloaded', 'bundle.mjs', true],
      ]),
];
const lines = [];
const started = new Date().toISOString().slice(0, 16).replace('T', ' ');
for (const { bin } of nodes) {
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const samples = conditions.map(() => []);
  for (let i = 0; i < runs; i++) conditions.forEach(([, file, withSdk], c) => samples[c].push(once(bin, file, withSdk)));
  lines.push(
    `### Node.js ${version}`,
    '',
    '| condition | import, median ms | p25-p75 | vs no SDK | SDK: barrel-fns self ms (of which loading) | SDK: link ms | SDK overhead ms | esm_timing |',
    '|---|---|---|---|---|---|---|---|',
  );
  const base = median(samples[0].map((s) => s.ms));
  conditions.forEach(([name], c) => {
    const ms = samples[c].map((s) => s.ms).sort((a, b) => a - b);
    const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
    const sdkRuns = samples[c].map((s) => s.sdk).filter(Boolean);
    const cell = (pick) => (sdkRuns.length ? f1(median(sdkRuns.map(pick))) : '');
    const barrel = sdkRuns.length ? `${cell((s) => s.barrelMs)} (${cell((s) => s.barrelLoadingMs)})` : '';
    if (sdkRuns.some((s) => s.sdkKey)) throw new Error('@coldstart/analyzer appeared in module_timings');
    const file = conditions[c][1];
    const vs = file === 'index.mjs' && c > 0 ? `${median(ms) >= base ? '+' : ''}${f1((median(ms) / base - 1) * 100)} %` : '';
    lines.push(
      `| ${name} | ${f1(median(ms))} | ${f1(q(0.25))}-${f1(q(0.75))} | ${vs} | ${barrel} | ${cell((s) => s.linkMs)} | ${cell((s) => s.overheadMs)} | ${[...new Set(sdkRuns.map((s) => s.esm))].join(', ')} |`,
    );
  });
  lines.push('');
  console.log(lines.slice(-(conditions.length + 4)).join('\n'));
}
const load = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' ');
writeFileSync(
  out,
  [
    '# ES module loading, bundled and not (`node bench/sdk/esm-loading.mjs`)',
    '',
    `${started} UTC, ${runs} fresh processes per condition, interleaved; load average at the end ${load}.${other ? ` "Other SDK build": ${process.env.BENCH_SDK_OTHER_NAME ?? other}.` : ''}${process.env.BENCH_ESM_TIMING ? ` COLDSTART_ESM_TIMING=${process.env.BENCH_ESM_TIMING} in the SDK's processes.` : ''}`,
    'The handler: sdk/test/fixtures/loading (a barrel of 400 files, a 1.5 MB module, CommonJS export',
    'detection, JSON modules), bundled with esbuild (ESM, minified). "import" is the time to import the',
    'handler (loading, linking and evaluation) after a warm-up; the SDK columns are what it recorded.',
    'In a bundle there is one module: the barrel does not exist as files, so there is nothing to split.',
    '',
    ...lines,
  ].join('\n'),
);
rmSync(app, { recursive: true, force: true });
