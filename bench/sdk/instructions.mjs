// The cold request in instructions: what init + the first response execute, with and without the
// SDK, counted by valgrind (callgrind), so that a difference of 1 % shows on a shared, loaded machine
// whose timings (cold-request.mjs) scatter by ±10 %. One command: `node bench/sdk/instructions.mjs`
// (after `npm ci` here and `npm ci && npm run build` in sdk; needs valgrind). Writes
// bench/sdk/INSTRUCTIONS.md.
//
// Each condition is one fresh Node.js process under callgrind, V8 in its predictable mode (one
// thread, fixed heap growth, fixed hash and random seeds: two runs of a condition agree within
// 0.01 %). The process is a stand-in for AWS's runtime interface client 4 (instructions-runtime.mjs):
// it loads node:module as the client does, import()s the handler file as the client does, calls it
// once, and exits as soon as the handler's promise settles: init and the first response, not the
// SDK's work after the response. Conditions: no SDK; the SDK through its handler redirect with the
// --require preload (logs transport: no network); with BENCH_SDK_BEFORE (a built copy of the SDK,
// e.g. the main branch's before a change), that copy too. Handlers: AWS SDK v2 + moment + lodash +
// axios (app/v2.js, 628 modules), AWS SDK v3 + express (app/handler.js), the same bundled with
// esbuild (app/.bundled/handler.js, built by cold-request.mjs) and an ES module importing the v3
// clients and date-fns (app/esm.mjs); BENCH_HANDLERS narrows, BENCH_NODES (default 22,24) picks the
// Node.js versions, BENCH_PARALLEL (default 2) the processes run at once.
//
// What instructions leave out: the kernel's work (system calls: cold-request.mjs's CPU time has it),
// V8's background threads (folded into the main thread in predictable mode), and the cost per
// instruction (caches). A garbage collection is counted where the predictable schedule puts it: a
// little more allocation can move one scavenge (about 10 M instructions here) in or out of init; the
// report gives the number of scavenges so that such a step can be told from the rest.
// BENCH_SPAN=invocation counts the whole first invocation instead: the process ends once the SDK's
// work after the response is done (the record built and written, the collection of gc.ts), the
// work of the first invocation's billed time (BENCH_OUT names its report).
import { spawn, execSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, requireBuilt } from './setup.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, '..', '..', 'sdk');
const versions = (process.env.BENCH_NODES ?? '22,24').split(',');
const handlers = [
  { name: 'AWS SDK v2 + moment + lodash + axios', handler: 'app/v2.handler' },
  { name: 'AWS SDK v3 (S3, DynamoDB) + express', handler: 'app/handler.handler' },
  { name: 'the same, bundled with esbuild', handler: 'app/.bundled/handler.handler' },
  { name: 'ES module: AWS SDK v3 + date-fns', handler: 'app/esm.handler', file: 'app/esm.mjs' },
].filter((h) => !process.env.BENCH_HANDLERS || process.env.BENCH_HANDLERS.split(',').includes(h.handler));

try {
  execSync('valgrind --version', { stdio: 'ignore' });
} catch {
  console.error('valgrind is needed (apt-get install valgrind)');
  process.exit(1);
}
requireBuilt([
  join(here, 'node_modules', 'aws-sdk'),
  join(sdk, 'dist', 'index.cjs'),
  // the bundled handler: built by cold-request.mjs (esbuild)
  ...(handlers.some((h) => h.handler.startsWith('app/.bundled/')) ? [join(here, 'app', '.bundled', 'handler.js')] : []),
]);

/** Installs a built SDK folder as `<under>/node_modules/@coldstart/analyzer`, as npm would. */
function install(from, under) {
  const target = join(under, 'node_modules', '@coldstart', 'analyzer');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const entry of ['package.json', 'dist', 'esm', 'register.cjs', 'handler.mjs'])
    cpSync(join(from, entry), join(target, entry), { recursive: true });
  return target;
}
const current = install(sdk, here);
const before = process.env.BENCH_SDK_BEFORE ? install(process.env.BENCH_SDK_BEFORE, join(here, '.before')) : undefined;

const conditions = [{ name: 'no SDK' }, { name: 'SDK', copy: current }, ...(before ? [{ name: 'SDK before', copy: before }] : [])];

const runtime = join(here, 'instructions-runtime.mjs');
const work = mkdtempSync(join(tmpdir(), 'csa-instructions-'));
let serial = 0;

/** One process under callgrind: total instructions and scavenges of init + first response. */
function count(version, h, condition) {
  const out = join(work, `${++serial}.callgrind`);
  const file = join(here, h.file ?? `${h.handler.slice(0, h.handler.lastIndexOf('.'))}.js`);
  const args = condition.copy
    ? ['-r', join(condition.copy, 'register.cjs'), runtime, join(condition.copy, 'handler.mjs')]
    : [runtime, file];
  const env = {
    PATH: process.env.PATH,
    NODE_NO_WARNINGS: '1',
    LAMBDA_TASK_ROOT: here,
    AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${version}.x`,
    ...(process.env.BENCH_SPAN ? { BENCH_SPAN: process.env.BENCH_SPAN } : {}),
    _HANDLER: condition.copy ? 'node_modules/@coldstart/analyzer/handler.handler' : h.handler,
    ...(condition.copy ? { COLDSTART_HANDLER: h.handler, COLDSTART_TRANSPORT: 'logs' } : {}),
  };
  const v8 = ['--predictable', '--predictable-gc-schedule', '--hash-seed=1', '--random-seed=1', '--trace-gc'];
  return new Promise((resolvePromise) => {
    const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, nodeBinary(version), ...v8, ...args], {
      cwd: here,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', () => {
      const summary = existsSync(out) ? /^summary: (\d+)/m.exec(readFileSync(out, 'utf8')) : null;
      rmSync(out, { force: true });
      if (summary === null || !stdout.includes('"responded":true')) {
        console.error(`${condition.name} ${version} ${h.handler}: failed\n${stdout.slice(-400)}\n${stderr.slice(-800)}`);
        resolvePromise(undefined);
        return;
      }
      resolvePromise({
        instructions: Number(summary[1]),
        scavenges: (stdout.match(/Scavenge/g) ?? []).length,
        marks: (stdout.match(/Mark-Compact/g) ?? []).length,
      });
    });
  });
}

const jobs = [];
for (const version of versions) for (const h of handlers) for (const c of conditions) jobs.push({ version, h, c });
const results = new Map();
const parallel = Math.max(1, Math.min(Number(process.env.BENCH_PARALLEL ?? 2), cpus().length));
let next = 0;
await Promise.all(
  Array.from({ length: parallel }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const result = await count(job.version, job.h, job.c);
      results.set(`${job.version} ${job.h.handler} ${job.c.name}`, result);
      process.stdout.write(`  ${job.c.name}, Node.js ${job.version}, ${job.h.handler}: ${result?.instructions ?? 'failed'}\n`);
    }
  }),
);
rmSync(work, { recursive: true, force: true });

const M = (n) => (n / 1e6).toFixed(1);
const sign = (n) => (n >= 0 ? '+' : '');
let report = `# @coldstart/analyzer: the cold request in instructions (${process.env.BENCH_SPAN === 'invocation' ? 'init + the whole first invocation' : 'init + first response'})

Produced by \`node bench/sdk/instructions.mjs\` (valgrind callgrind, V8's predictable mode; see the
script's header for what instructions leave out).

Machine: ${cpus().length} CPUs, ${process.arch}; date ${new Date().toISOString()}; load average at the end: ${loadavg()
  .map((x) => x.toFixed(2))
  .join(' ')} (instructions do not depend on it).
The SDK through its handler redirect with the \`--require\` preload, logs transport; ${
  process.env.BENCH_SPAN === 'invocation'
    ? "BENCH_SPAN=invocation: the process ends on its own after the first invocation, the SDK's work after the response included."
    : 'the process ends as the first response is ready.'
}
`;
for (const version of versions) {
  for (const h of handlers) {
    const base = results.get(`${version} ${h.handler} no SDK`);
    report += `\n## Node.js ${version}: ${h.name}\n\n| condition | instructions (M) | vs no SDK | scavenges | mark-compacts |\n|---|---|---|---|---|\n`;
    for (const c of conditions) {
      const r = results.get(`${version} ${h.handler} ${c.name}`);
      if (r === undefined) {
        report += `| ${c.name} | failed | | | |\n`;
        continue;
      }
      const diff =
        base && c.name !== 'no SDK'
          ? `${sign(r.instructions - base.instructions)}${M(r.instructions - base.instructions)} M (${sign(r.instructions - base.instructions)}${(((r.instructions - base.instructions) / base.instructions) * 100).toFixed(2)} %)`
          : '';
      report += `| ${c.name} | ${M(r.instructions)} | ${diff} | ${r.scavenges} | ${r.marks} |\n`;
    }
  }
}
writeFileSync(resolve(here, process.env.BENCH_OUT ?? 'INSTRUCTIONS.md'), report);
console.log(report);
