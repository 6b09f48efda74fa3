// Ground truth for ES module LOADING (resolving, reading, compiling, detecting a CommonJS package's
// exports, parsing JSON): the fixture's packages (test/fixtures/loading/generate.mjs) cost little
// to evaluate and much to load. The SDK's figure for a package is its self time in module_timings,
// the handler loaded through the handler redirect with the preload, as in Lambda. The truth for a
// package is the time to import it alone in a fresh process (test/fixtures/loading/truth.mjs),
// minus the time to import an empty module, taken two ways:
//
// - with the SDK preloaded, less what it counted meanwhile as its own overhead and as linking (the
//   two parts it charges to no package): the SDK's figure must be within max(2 ms, 10 %) of it.
//   This is where the test checks attribution: the package's time, whatever else is loaded with it.
// - without the SDK: the package's cost in a function that does not use it. The SDK's hooks and
//   markers make Node.js itself slower per module (dispatching the hooks, compiling the marked
//   source: measured 20 to 60 us per module on Node.js 22 and 24, invisible to the SDK, so inside
//   the package's time): a barrel of 400 small files shows 10 to 25 % more than without the SDK.
//   Held to -15 % / +35 %, which that inflation fits in and a misattribution would not.
//
// Each figure is the median of ROUNDS fresh processes, all kinds interleaved so that a busy machine
// weighs on them alike (when a check fails, ROUNDS more rounds are added and the checks run again
// on all of them, once), and packages are compared by their share of the four packages' time (a
// process on a busy machine runs slower as a whole, by its own factor): a package's truth is its
// share of the four truths times the four packages' time in the record. The package times (with
// the handler file's) must be within 10 % of the module-load part of init as the runtime measured
// it (loading the handler through the redirect, less the SDK's reported overhead), linking
// included (module_tree.link_ms, a step of the whole graph that no package is charged with); the
// SDK itself is never in module_timings.
//
// The warm-up (the fixture's warm.mjs, imported before the handler and before each truth) holds a
// large module (warm-big, 0.43 MB): a process's first large compile pays for mapping and touching
// its memory (page faults), which later compiles reuse, so a package imported alone would carry a
// cost that in the handler falls on whichever large package loads first, and the truths would not
// add up (cjs-exports measured 15 to 25 % "low" on Node.js 24 for that reason; generate.mjs has
// the page-fault counts).
//
// Only where ES module loading can be timed per module (module.registerHooks: Node.js 22.15+,
// 23.5+); elsewhere the test checks that the SDK says what it did (esm_timing).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

/** Issue 23's tolerances (see measure()); make test uses wider ones. */
const STRICT = process.env.COLDSTART_STRICT_LOADING === '1';
import { esmHooksApi } from '../../src/runtime/hooks';
import { NODE, NODE_VERSION, SDK_ROOT, runFixture, startCollector, waitFor, type Collector } from '../harness/helpers';

const FIXTURE = join(SDK_ROOT, 'test', 'fixtures', 'loading');
const PACKAGES = ['barrel-fns', 'big-source', 'cjs-exports', 'json-data'];
/** keys of the warm-up (imported by the runner before the handler, outside the measured load) */
const WARMUP_KEYS = new Set(['warm-esm', 'warm-cjs', 'warm-big', './warm']);
/** 7 for issue 23's figures; 5 in make test, whose bounds are wide (about 20 s less per Node.js version) */
const ROUNDS = STRICT ? 7 : 5;
/**
 * Both kinds of process run with a young generation large enough that loading the fixture needs no
 * garbage collection: a collection's pause is charged to whichever module is loading when the heap
 * fills, which is not the same package alone and in the whole handler (there, nine scavenges of
 * 40 ms in all on Node.js 22 by default). What is tested is where loading goes, not where V8
 * happens to collect.
 */
const NODE_FLAGS = ['--min-semi-space-size=64', '--max-semi-space-size=64'];
const VERSION = NODE_VERSION;
const IN_THREAD = esmHooksApi(VERSION) === 'registerHooks';
/**
 * Node.js 18.19+, 20 and 22 before 22.15: module.register's hooks thread, started only with
 * COLDSTART_ESM_TIMING=on (in the handler's process and in the truths with the SDK). There the
 * comparison with the truths does not hold (see the last test), and runs only on demand:
 * COLDSTART_LOADING_TRUTH=1.
 */
const OFF_THREAD = esmHooksApi(VERSION) === 'register';
const TRUTH_OFF_THREAD = OFF_THREAD && process.env.COLDSTART_LOADING_TRUTH === '1';
const ESM_ENV: Record<string, string> = OFF_THREAD ? { COLDSTART_ESM_TIMING: 'on' } : {};
const EXPECTED_TIMING = OFF_THREAD ? 'hooks-thread' : 'on';

let app: string;
let collector: Collector;
beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'coldstart-loading-'));
  const { generate } = await import(join(FIXTURE, 'generate.mjs'));
  generate(app, SDK_ROOT);
  collector = await startCollector();
});
afterAll(async () => {
  await collector?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * ms to import `what` ("-": an empty module) alone in a fresh process, without the SDK or with it
 * preloaded (then less its overhead and linking meanwhile).
 */
function truth(what: string, withSdk: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    if (withSdk)
      Object.assign(env, {
        NODE_OPTIONS: '--require @coldstart/analyzer/register',
        LAMBDA_TASK_ROOT: app,
        COLDSTART_API_KEY: 'csa_truth',
        COLDSTART_ENDPOINT: 'http://127.0.0.1:9',
        ...ESM_ENV,
      });
    const child = spawn(NODE, [...NODE_FLAGS, join(FIXTURE, 'truth.mjs'), what], {
      cwd: app,
      detached: true,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(out.trim().split(' ')[0]);
      if (code !== 0 || !Number.isFinite(ms)) reject(new Error(`truth ${what}: exit ${code} ${err}`));
      else resolve(ms);
    });
  });
}

interface SdkRun {
  record: any;
  loadMs: number;
}

async function sdkRun(round: number): Promise<SdkRun> {
  const name = `loading-${Date.now()}-${round}`;
  const result = await runFixture({
    handler: 'index.handler',
    redirect: true,
    preload: 'require',
    cwd: app,
    endpoint: collector.url,
    nice: true,
    execArgv: NODE_FLAGS,
    env: { AWS_LAMBDA_FUNCTION_NAME: name, RUNNER_WARMUP: 'warm.mjs', COLDSTART_EXTENSION: 'off', ...ESM_ENV },
  });
  await waitFor(() => collector.records().some((r) => r.function_name === name));
  const record = collector.records().find((r) => r.function_name === name);
  if (record === undefined) throw new Error(`no record: ${result.stderr}`);
  return { record, loadMs: result.loaded.loadMs };
}

interface Outcome {
  problems: string[];
  runs: SdkRun[];
  table: Record<string, { sdk: number; truth: number; withoutSdk: number }>;
}

interface Samples {
  truths: Record<string, number[]>;
  runs: SdkRun[];
}

/** ROUNDS more rounds of every kind of process, added to `samples`; then the checks on them all. */
async function measure(samples: Samples = { truths: {}, runs: [] }): Promise<Outcome> {
  for (const what of ['-', ...PACKAGES]) {
    samples.truths[what] ??= [];
    samples.truths[`${what}+sdk`] ??= [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const what of ['-', ...PACKAGES]) {
      samples.truths[what]!.push(await truth(what, false));
      samples.truths[`${what}+sdk`]!.push(await truth(what, true));
    }
    samples.runs.push(await sdkRun(samples.runs.length));
  }
  return check(samples);
}

function check({ truths: samples, runs }: Samples): Outcome {
  const problems: string[] = [];
  const table: Outcome['table'] = {};
  const base = median(samples['-']!);
  const baseSdk = median(samples['-+sdk']!);
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  // Shares, not absolute times: a process on a busy machine runs slower as a whole, the truth's
  // processes and the handler's by different factors; each package's share of the four is what
  // its attribution decides. The truth of a package is its share of the four truths, times the
  // four packages' time in the handler's record. (The total itself is checked against the
  // runtime's own measurement below.)
  const truthSdk = Object.fromEntries(PACKAGES.map((p) => [p, median(samples[`${p}+sdk`]!) - baseSdk]));
  const truthBare = Object.fromEntries(PACKAGES.map((p) => [p, median(samples[p]!) - base]));
  const sdkTimes = Object.fromEntries(PACKAGES.map((p) => [p, median(runs.map((r) => r.record.module_timings[p] ?? 0))]));
  const total = (t: Record<string, number>): number => PACKAGES.reduce((a, p) => a + t[p]!, 0);
  const scaleSdk = total(sdkTimes) / total(truthSdk);
  const scaleBare = total(sdkTimes) / total(truthBare);
  for (const p of PACKAGES) {
    const expected = truthSdk[p]! * scaleSdk;
    const withoutSdk = truthBare[p]! * scaleBare;
    const got = sdkTimes[p]!;
    table[p] = { sdk: round1(got), truth: round1(expected), withoutSdk: round1(withoutSdk) };
    // Issue 23's target, max(2 ms, 10 %), is checked with COLDSTART_STRICT_LOADING=1 (`npm run
    // test:loading`): it holds on a quiet machine but not reliably at a load of 5 or more on 2
    // cores, where make test runs beside other work. make test checks that the loading lands in the
    // right package within max(5 ms, 30 %): a loading charged to the importer or to the SDK (the
    // defect this test guards) is off by 100 % or more. Measured at a load average of 5 to 20 on
    // 2 cores (eleven runs, Node.js 22 and 24): at most 24 % off (cjs-exports, either sign), most
    // within 10 %; the SDK's figure against the truth without the SDK between 0.77 and 1.24 times.
    const tolerance = STRICT ? Math.max(2, 0.1 * expected) : Math.max(5, 0.3 * expected);
    if (Math.abs(got - expected) > tolerance)
      problems.push(`${p}: ${got.toFixed(1)} ms, truth ${expected.toFixed(1)} ± ${tolerance.toFixed(1)}`);
    // Against the truth without the SDK, the strict lower bound is 0.75: on Node.js 24 importing
    // cjs-exports alone takes one of two times, about 41 or 53 ms, in every setup (quiet machine,
    // 30 fresh processes each, 2026-12-06: no hooks 14 of 30 in the fast mode, medians 40.9 / 52.5 ms;
    // pass-through registerHooks 14 of 30, 41.2 / 53.5; the SDK 25 of 30, 41.7 / 53.8). Within each
    // mode the SDK's figure is the bare one; the SDK's preload makes the fast mode more frequent,
    // which moves the median to 0.80x. That is Node.js's time, not an attribution error; the
    // attribution itself is checked against the truth with the SDK above.
    const [low, high] = STRICT ? [0.75, 1.35] : [0.65, 1.5];
    if (got < low * withoutSdk - 2 || got > high * withoutSdk + 2)
      problems.push(`${p}: ${got.toFixed(1)} ms, without the SDK ${withoutSdk.toFixed(1)} (${low}x to ${high}x)`);
  }
  const sums = runs.map((r) =>
    Object.entries(r.record.module_timings as Record<string, number>)
      .filter(([k]) => !WARMUP_KEYS.has(k))
      .reduce((a, [, v]) => a + v, 0),
  );
  const sum = median(sums);
  // the runtime's figure, less what the SDK reports as its own (injecting markers, its hooks and
  // bookkeeping: in the runtime's figure, in no package's); linking the graph (link_ms) stays in
  const loadMs = median(runs.map((r) => r.loadMs - r.record.sdk_overhead_ms));
  if (Math.abs(sum - loadMs) > (STRICT ? 0.1 : 0.15) * loadMs)
    problems.push(`sum of self times ${sum.toFixed(1)} vs module-load time measured by the runtime ${loadMs.toFixed(1)}`);
  return { problems, runs, table };
}

describe.runIf(IN_THREAD || TRUTH_OFF_THREAD)(`ES module loading ground truth (Node.js ${VERSION})`, () => {
  test('per package: loading charged to the package that owns the file', async () => {
    const samples: Samples = { truths: {}, runs: [] };
    let outcome = await measure(samples);
    if (outcome.problems.length > 0) {
      // more samples rather than new ones: the medians of twice as many processes
      console.warn(`loading: measuring ${ROUNDS} more rounds after: ${outcome.problems.join('; ')} ${JSON.stringify(outcome.table)}`);
      outcome = await measure(samples);
    }
    console.log(
      `loading (Node.js ${VERSION}): ${JSON.stringify(outcome.table)} link_ms ${median(outcome.runs.map((r) => r.record.module_tree.link_ms))}`,
    );
    expect(outcome.problems).toEqual([]);
    for (const { record } of outcome.runs) {
      expect(record.esm_timing).toBe(EXPECTED_TIMING);
      expect(record.module_tree.esm_timing).toBe(EXPECTED_TIMING);
      expect(record.module_tree.coverage).toBe('preload');
      // the SDK (its redirect imports the handler) is never a package's time
      expect(Object.keys(record.module_timings)).not.toContain('@coldstart/analyzer');
      expect(record.module_timings['./index']).toBeGreaterThanOrEqual(10);
    }
    // the handler file: its 10 ms busy-wait and its own loading (small, but a busy machine
    // stretches it), never its imports' loading (hundreds of ms). The median of the runs: one
    // process preempted for 70 ms in its busy-wait is the machine, not the attribution.
    const indexMs = median(outcome.runs.map((r) => r.record.module_timings['./index']));
    const packagesMs = median(outcome.runs.map((r) => PACKAGES.reduce((a, p) => a + (r.record.module_timings[p] ?? 0), 0)));
    expect(indexMs).toBeLessThan(10 + Math.max(4, 0.03 * packagesMs));
    // the tree tells loading from evaluation: these packages are loading, not evaluation
    const tree = outcome.runs[outcome.runs.length - 1]!.record.module_tree;
    for (const p of PACKAGES) {
      const node = tree.children.find((c: any) => c.name === p);
      expect(node, p).toBeDefined();
      expect(node.loading_ms + node.evaluation_ms).toBeCloseTo(node.self_ms, 2);
      if (p !== 'cjs-exports') expect(node.loading_ms, p).toBeGreaterThan(node.evaluation_ms * 4);
    }
    const index = tree.children.find((c: any) => c.name === './index');
    expect(index.evaluation_ms).toBeGreaterThanOrEqual(10);
    expect(index.loading_ms).toBeLessThan(index.evaluation_ms);
  }, 420_000);
});

// The hooks thread (Node.js 18.19+, 20, 22 before 22.15, COLDSTART_ESM_TIMING=on): loading is timed
// on the hooks thread's clock (esm_timing "hooks-thread"), and the per-package comparison with the
// truths above does not hold there. Node.js 20 pipelines the loading across the two threads: it
// asks the hooks thread to resolve all of a module's imports at once, answers and compiles in
// batches on the main thread while the hooks thread works on other modules, so a package's time in
// the whole handler is not its time alone (a 1.5 MB module's compile overlaps the barrel's hooks),
// and the main thread's share (compiling, detecting a CommonJS package's exports) has no event of
// its own. Measured with COLDSTART_LOADING_TRUTH=1 on 2026-12-06 (14 rounds, load average 6 to 8
// on 2 cores): the SDK's figure against the truth with the SDK, barrel-fns 1.16x, big-source 0.54x,
// cjs-exports 0.26x, json-data 0.50x (the barrel gets the main thread's time that was theirs;
// single runs from 0.1x to 1.5x for the three small ones). What holds, and is checked here in
// three runs (10 to 15 s): the
// loading lands in the packages (the barrel, by far the largest, nearly all loading), not in the
// handler file that imports them nor in the SDK; loading and evaluation add up to each node's self
// time; and the self times add up to the handler's load time measured by the runtime, nothing
// counted twice or lost (the SDK's own overhead of init is mostly the hooks thread's start-up,
// before the handler's load: not subtracted).
describe.runIf(OFF_THREAD)(`ES module loading from the hooks thread (Node.js ${VERSION}, COLDSTART_ESM_TIMING=on)`, () => {
  test('loading charged to the packages, not to the importer or the SDK; self times add up to the load time', async () => {
    const runs: SdkRun[] = [];
    for (let round = 0; round < 3; round++) runs.push(await sdkRun(round));
    const without = (r: SdkRun): Record<string, number> =>
      Object.fromEntries(Object.entries(r.record.module_timings as Record<string, number>).filter(([k]) => !WARMUP_KEYS.has(k)));
    const table = runs.map((r) => ({ loadMs: Math.round(r.loadMs), ...without(r) }));
    console.log(`loading from the hooks thread (Node.js ${VERSION}): ${JSON.stringify(table)}`);
    for (const { record } of runs) {
      expect(record.esm_timing).toBe('hooks-thread');
      expect(record.module_tree.esm_timing).toBe('hooks-thread');
      expect(Object.keys(record.module_timings)).not.toContain('@coldstart/analyzer');
      for (const p of PACKAGES) expect(record.module_timings[p], p).toBeGreaterThan(0);
    }
    // the barrel's 400 files are by far the most loading; the handler file keeps its 10 ms busy-wait
    // and little else (median of the runs: a preempted busy-wait is the machine, not attribution)
    const barrel = median(runs.map((r) => r.record.module_timings['barrel-fns']));
    const others = median(runs.map((r) => Math.max(...PACKAGES.filter((p) => p !== 'barrel-fns').map((p) => r.record.module_timings[p]))));
    expect(barrel).toBeGreaterThan(others);
    const indexMs = median(runs.map((r) => r.record.module_timings['./index']));
    expect(indexMs).toBeGreaterThanOrEqual(9.5);
    expect(indexMs).toBeLessThan(10 + Math.max(10, 0.03 * barrel));
    // nothing counted twice, little lost: the self times against the runtime's load time
    const ratio = median(runs.map((r) => Object.values(without(r)).reduce((a, v) => a + v, 0) / r.loadMs));
    expect(ratio).toBeLessThanOrEqual(1.01);
    expect(ratio).toBeGreaterThan(0.85);
    const tree = runs[runs.length - 1]!.record.module_tree;
    for (const p of PACKAGES) {
      const node = tree.children.find((c: any) => c.name === p);
      expect(node, p).toBeDefined();
      expect(node.loading_ms, p).toBeGreaterThan(0);
      expect(node.loading_ms + node.evaluation_ms).toBeCloseTo(node.self_ms, 2);
    }
    const barrelNode = tree.children.find((c: any) => c.name === 'barrel-fns');
    expect(barrelNode.loading_ms).toBeGreaterThan(barrelNode.evaluation_ms * 4);
    const index = tree.children.find((c: any) => c.name === './index');
    expect(index.evaluation_ms).toBeGreaterThanOrEqual(9.5);
  }, 120_000);
});
