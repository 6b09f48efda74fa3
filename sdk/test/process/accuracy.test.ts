// Ground truth: fixture modules busy-wait for known durations. Each package's self time must be
// within max(1 ms, 5 %) of the truth, and the self times must add up (within 5 %) to the measured
// module-load time. Timing on a shared 2-core machine: the measured process runs at raised
// priority when allowed, and the whole measurement is retried once before failing.
//
// The truth is what the fixture's busy-waits really took (the handler returns it, `busy`; a wait
// can overshoot its nominal length if the process is descheduled as it ends), checked against the
// nominal length too. A package's self time is its waits plus loading its own files (resolving,
// reading, compiling: about 1 ms per file on this machine under Node.js 20, up to 2-3 ms under
// 18), which is real time spent in that package and counted as such. `cyc` (a circular require,
// three files) was long held to 10 %. Its attribution is right: its excess over its waits is its
// three files' loading (2.4-3.7 ms on Node.js 20, 6-9 ms on 18, against 300 ms of waits; the same
// package without the circular require costs Node.js the same, with or without the SDK), and
// runs where it exceeded 5 % of the nominal 300 ms were runs where a wait overshot. It is held to
// the same bound as the others.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { esmHooksApi } from '../../src/runtime/hooks';
import { NODE, NODE_VERSION, runFixture, startCollector, waitFor, type Collector } from '../harness/helpers';

let collector: Collector;
beforeAll(async () => {
  collector = await startCollector();
});
afterAll(() => collector.close());

const CJS_TRUTH: Record<string, number> = {
  './accuracy': 160,
  alpha: 240,
  beta: 120,
  '@scope/gamma': 160,
  delta: 120,
  cyc: 300,
  thrower: 160,
  './src/util': 120,
};
const ESM_TRUTH: Record<string, number> = {
  './accuracy-esm': 120,
  'esm-pkg': 240,
  '@scope/esm-dep': 120,
  alpha: 240,
  './src/esm-util': 120,
};

/**
 * Files of each key loaded by the ES module loader (alpha: CommonJS imported from ESM), and the
 * loading each may take through module.register's hooks thread (Node.js 18.19+/20, esm_timing
 * "hooks-thread"): every file costs the two threads a resolve and a load round trip, measured at
 * 0.4 to 7 ms per file on Node.js 18 and 20 on the busy 2-core machine (well under 1 ms in-thread).
 * There a package's loading is real time of its own, counted in its self time: its evaluation
 * (self less loading_ms) is held to the busy-waits, its loading to this bound per file.
 */
const ESM_FILES: Record<string, number> = { './accuracy-esm': 1, 'esm-pkg': 2, '@scope/esm-dep': 1, alpha: 1, './src/esm-util': 1 };
const HOOKS_THREAD_LOADING_PER_FILE_MS = 15;

/** loading_ms per node name, summed over the tree (absent: none) */
function loadingByName(nodes: any[] | undefined, into: Record<string, number> = {}): Record<string, number> {
  for (const node of nodes ?? []) {
    if (typeof node.loading_ms === 'number') into[node.name] = (into[node.name] ?? 0) + node.loading_ms;
    loadingByName(node.children, into);
  }
  return into;
}

interface Measurement {
  record: any;
  runnerLoadMs: number;
  problems: string[];
}

async function measure(
  handler: string,
  preload: 'require' | 'import',
  truth: Record<string, number>,
  checkRunner: boolean,
  esmTiming = 'on',
): Promise<Measurement> {
  const name = `accuracy-${handler}-${Date.now()}`;
  // ES module timing forced on: by default it is skipped where only the hooks thread exists
  const result = await runFixture({
    handler,
    preload,
    endpoint: collector.url,
    nice: true,
    env: { AWS_LAMBDA_FUNCTION_NAME: name, COLDSTART_ESM_TIMING: esmTiming },
  });
  await waitFor(() => collector.records().some((r) => r.function_name === name));
  const record = collector.records().find((r) => r.function_name === name);
  const problems: string[] = [];
  if (!record) return { record, runnerLoadMs: NaN, problems: ['no record received: ' + result.stderr] };
  if (record.esm_timing === 'unsupported' && preload === 'import') return { record, runnerLoadMs: NaN, problems: [] };
  const timings: Record<string, number> = record.module_timings;
  const busy: Record<string, number> | undefined = result.results[0]?.value?.busy;
  if (busy === undefined) problems.push('the handler did not report its busy-waits');
  const hooksThread = record.esm_timing === 'hooks-thread';
  const loading = hooksThread ? loadingByName(record.module_tree.children) : {};
  if (hooksThread) console.log(`accuracy: loading on the hooks thread ${JSON.stringify(loading)}`);
  for (const [key, nominal] of Object.entries(truth)) {
    let got = timings[key];
    const files = ESM_FILES[key];
    if (hooksThread && files !== undefined && got !== undefined) {
      const loadingMs = loading[key] ?? 0;
      if (loadingMs > files * HOOKS_THREAD_LOADING_PER_FILE_MS)
        problems.push(
          `${key}: ${loadingMs} ms of loading on the hooks thread, more than ${files} x ${HOOKS_THREAD_LOADING_PER_FILE_MS} ms`,
        );
      got -= loadingMs; // its evaluation, against the busy-waits
    }
    const expected = busy?.[key] ?? nominal;
    if (expected < nominal - 0.01) problems.push(`${key}: the busy-waits took ${expected} ms, less than ${nominal}`);
    const tolerance = Math.max(1, 0.05 * expected);
    if (got === undefined || Math.abs(got - expected) > tolerance)
      problems.push(`${key}: ${got} ms, truth ${expected.toFixed(3)} ± ${tolerance.toFixed(3)} (nominal ${nominal})`);
  }
  const sum = Object.values(timings).reduce((a, b) => a + b, 0);
  const loadMs = record.module_tree.load_ms;
  if (Math.abs(sum - loadMs) > 0.05 * loadMs) problems.push(`sum of self times ${sum} vs module-load time ${loadMs}`);
  if (checkRunner && Math.abs(sum - result.loaded.loadMs) > 0.05 * result.loaded.loadMs) {
    problems.push(`sum of self times ${sum} vs load time measured by the runtime ${result.loaded.loadMs}`);
  }
  return { record, runnerLoadMs: result.loaded.loadMs, problems };
}

async function measureWithRetry(...args: Parameters<typeof measure>): Promise<Measurement> {
  const first = await measure(...args);
  if (first.problems.length === 0) return first;
  console.warn(`accuracy: retrying once after: ${first.problems.join('; ')}`);
  return measure(...args);
}

describe(`module timing accuracy (${NODE})`, () => {
  test('CommonJS: per-package self time and their sum', async () => {
    const { record, runnerLoadMs, problems } = await measureWithRetry('accuracy.handler', 'require', CJS_TRUTH, true);
    expect(problems).toEqual([]);
    // the handler's own result proves the circular require and the throwing module behaved
    expect(record.module_tree.coverage).toBe('preload');
    expect(runnerLoadMs).toBeGreaterThanOrEqual(1380); // the sum of the busy-waits
    // the tree: beta includes gamma and delta, each package once, with versions
    const accuracy = record.module_tree.children.find((c: any) => c.name === './accuracy');
    const beta = accuracy.children.find((c: any) => c.name === 'beta');
    expect(beta.version).toBe('0.1.0');
    expect(beta.total_ms).toBeGreaterThanOrEqual(beta.self_ms + 270);
    expect(beta.children.map((c: any) => c.name).sort()).toEqual(['@scope/gamma', 'delta']);
  });

  test('CommonJS handler in auto mode (no ES module hooks): the loads noted during init and timed after it, as exact', async () => {
    const { record, problems } = await measureWithRetry('accuracy.handler', 'require', CJS_TRUTH, true, 'auto');
    expect(problems).toEqual([]);
    expect(record.esm_timing).toBe('commonjs');
    const accuracy = record.module_tree.children.find((c: any) => c.name === './accuracy');
    const beta = accuracy.children.find((c: any) => c.name === 'beta');
    expect(beta.version).toBe('0.1.0');
    expect(beta.total_ms).toBeGreaterThanOrEqual(beta.self_ms + 270);
    expect(beta.children.map((c: any) => c.name).sort()).toEqual(['@scope/gamma', 'delta']);
  });

  test('ES modules: per-package self time and their sum', async () => {
    const { record, problems } = await measureWithRetry('accuracy-esm.handler', 'import', ESM_TRUTH, false);
    expect(problems).toEqual([]);
    // in-thread hooks: loading and evaluation; hooks thread (forced on): the same, from its clock
    if (record.esm_timing !== 'unsupported')
      expect(record.esm_timing).toBe(esmHooksApi(NODE_VERSION) === 'registerHooks' ? 'on' : 'hooks-thread');
  });

  test('COLDSTART_LOADING=profile: the record also carries a V8 CPU profile of init, samples by script URL, and says how exact', async () => {
    const name = `accuracy-cpu-${Date.now()}`;
    const result = await runFixture({
      handler: 'accuracy.handler',
      preload: 'require',
      endpoint: collector.url,
      nice: true,
      env: { AWS_LAMBDA_FUNCTION_NAME: name, COLDSTART_LOADING: 'profile' },
    });
    await waitFor(() => collector.records().some((r) => r.function_name === name));
    const record = collector.records().find((r) => r.function_name === name);
    expect(record, result.stderr).toBeDefined();
    const cpu = record.module_tree.cpu_profile;
    expect(cpu).toMatchObject({ method: 'v8-cpu-profile', interval_us: 100 });
    expect(cpu.exactness).toContain('statistical');
    expect(cpu.samples).toBeGreaterThan(100);
    // the busy-waits run in their packages' scripts (120 to 300 ms each): sampled, so held to the
    // place of the time more than to its amount; the SDK itself is never a script here
    const scripts: Record<string, number> = cpu.scripts;
    for (const [key, ms] of Object.entries(CJS_TRUTH)) expect(scripts[key] ?? 0, `${key} ${JSON.stringify(cpu)}`).toBeGreaterThan(0.5 * ms);
    const top = Object.entries(scripts).sort((a, b) => b[1] - a[1])[0]![0];
    expect(['cyc', 'alpha']).toContain(top);
    expect(scripts['@coldstart/analyzer']).toBeUndefined();
    // the hooks' figures are still there, and the profile does not replace them
    expect(record.module_timings.alpha).toBeGreaterThanOrEqual(CJS_TRUTH.alpha!);
  });
});
