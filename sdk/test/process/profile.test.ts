// `coldstart profile` run as a user runs it (node dist/cli.cjs profile ...), on fixture handlers
// whose modules busy-wait for known durations (test/fixtures/profile): the tree, the JSON schema,
// the budget's exit codes, --compare on two known profiles, and --send into a real HTTP listener.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli as runCli, nearEnough } from '../harness/cli';
import { esmHooksApi } from '../../src/runtime/hooks';
import { API_KEY, NODE_VERSION, SDK_ROOT, startCollector } from '../harness/helpers';
import { validate } from '../harness/schema';

const FIXTURE = join(SDK_ROOT, 'test', 'fixtures', 'profile');
const SCHEMA = JSON.parse(readFileSync(join(SDK_ROOT, 'profile.schema.json'), 'utf8'));
const TMP = mkdtempSync(join(tmpdir(), 'coldstart-profile-test-'));

const cli = (args: string[], env: Record<string, string | undefined> = {}) => runCli(args, env, FIXTURE);
const near = (actual: number, expected: number, tolerance: number) => expect(nearEnough(actual, expected, tolerance)).toBeUndefined();

describe('coldstart profile', () => {
  let base: any;
  let baseFile: string;

  beforeAll(async () => {
    const run = await cli(['profile', 'handler.js', '--runs', '3', '--json', '--budget', '100000']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    base = JSON.parse(run.stdout);
    baseFile = join(TMP, 'base.json');
    writeFileSync(baseFile, run.stdout);
  });

  it('--json follows its schema', () => {
    expect(validate(SCHEMA, base)).toEqual([]);
    expect(base).toMatchObject({ schema: 'coldstart-profile', version: 1, runs: 3, handler: 'handler.js', memory_mb: 1024 });
    expect(base.runs_detail).toHaveLength(3);
    expect(base.budget).toEqual({ limit_ms: 100000, median_ms: base.load_ms.median, exceeded: false });
  });

  it('attributes the known busy-waits', () => {
    const self = Object.fromEntries(base.modules.map((m: any) => [m.name, m.self_ms]));
    near(self.moment, 60, 8);
    near(self['small-dep'], 20, 8);
    near(self['./src/config'], 15, 8);
    expect(base.modules[0].name).toBe('moment');
    expect(base.modules.find((m: any) => m.name === 'moment')).toMatchObject({ version: '2.29.4', seen_in: 1 });
    expect(base.load_ms.median).toBeGreaterThan(100);
    expect(base.load_ms.min).toBeLessThanOrEqual(base.load_ms.p25);
    expect(base.load_ms.p75).toBeLessThanOrEqual(base.load_ms.max);
    expect(base.sdk_overhead_ms.median).toBeGreaterThan(0);
    // the tree: the handler file at the top, its packages below, largest first
    expect(base.tree[0].name).toBe('./handler');
    expect(base.tree[0].children.map((c: any) => c.name)).toEqual(['moment', 'small-dep', './src/config']);
    expect(base.tree[0].children[0].children[0].name).toBe('tiny-a');
  });

  it('recommends from the shipped rule table, as the server would', () => {
    expect(base.recommendations[0]).toMatchObject({ module: 'moment', rule_id: 'moment' });
    const moment = base.modules.find((m: any) => m.name === 'moment').self_ms;
    expect(base.recommendations[0].potential_savings_ms).toBe(Math.round(moment * 0.8));
  });

  it('prints a readable, uncoloured tree in 80 columns when stdout is not a terminal', async () => {
    const run = await cli(['profile', 'handler.js', '--runs', '2', '--threshold', '2'], { FORCE_COLOR: '1' });
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(run.stdout).not.toContain('\x1b[');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(run.stdout).toMatch(/module load +\d[\d.]* ms median +\(p25-p75 [\d.]+-[\d.]+, min-max [\d.]+-[\d.]+\)/);
    expect(run.stdout).toMatch(/SDK overhead +[\d.]+ ms median/);
    expect(run.stdout).toMatch(/^├─ moment 2\.29\.4 +\d[\d.]* +\d[\d.]*$/m);
    expect(run.stdout).toMatch(/^│ {2}└─ \(1 more under 2\.00 ms\) +[\d.]+$/m); // tiny-a, folded
    expect(run.stdout).toMatch(/^1\. moment: about \d+ ms \[moment\]$/m);
  });

  it('--budget: exit 1 over the budget, 0 within', async () => {
    const over = await cli(['profile', 'handler.js', '--runs', '1', '--budget', '5']);
    expect(over.code).toBe(1);
    expect(over.stdout).toMatch(/Budget exceeded: median module load \d+ ms > 5\.00 ms/);
    // (within the budget: see beforeAll, --budget 100000 exited 0)
  });

  it('--compare shows what got slower and by how much', async () => {
    const run = await cli(['profile', 'handler.js', '--runs', '3', '--json', '--compare', baseFile], { PROFILE_FIXTURE_EXTRA_MS: '40' });
    expect(run.code).toBe(0);
    const profile = JSON.parse(run.stdout);
    expect(validate(SCHEMA, profile)).toEqual([]);
    const moment = profile.compare.modules.find((m: any) => m.name === 'moment');
    near(moment.delta_ms, 40, 10);
    expect(profile.compare.modules[0].name).toBe('moment');
    near(profile.compare.load_ms.delta, 40, 15);
    expect(profile.compare.load_ms.percent).toBeGreaterThan(20);
    // text form, from the two profiles above
    writeFileSync(join(TMP, 'slower.json'), run.stdout);
    const text = await cli(['profile', 'handler.js', '--runs', '1', '--compare', join(TMP, 'slower.json')]);
    expect(text.stdout).toMatch(/module load [\d.]+ -> [\d.]+ ms: faster by [\d.]+ ms \(-\d/);
    expect(text.stdout).toMatch(/^moment +faster +[\d.]+ -> +[\d.]+ ms +-\d/m);
  });

  it('--send posts the runs as deploy-time records', async () => {
    const collector = await startCollector();
    try {
      const run = await cli(['profile', 'handler.js', '--runs', '2', '--send', '--function-name', 'orders-api'], {
        COLDSTART_ENDPOINT: collector.url,
        COLDSTART_API_KEY: API_KEY,
      });
      expect(run.code).toBe(0);
      expect(run.stderr).toContain('sent 2 records');
      expect(collector.received).toHaveLength(1);
      expect(collector.received[0]).toMatchObject({ path: '/api/v1/ingest/batch', apiKey: API_KEY, contentType: 'application/json' });
      const records = collector.records();
      expect(records).toHaveLength(2);
      for (const record of records) {
        expect(record).toMatchObject({
          function_name: 'orders-api',
          cold_start: true,
          start_kind: 'cold',
          init_type: 'coldstart-profile',
          memory_allocated_mb: 1024,
        });
        expect(record.module_timings.moment).toBeGreaterThan(50);
        expect(record.module_tree.children[0].name).toBe('./handler');
        expect(Number.isInteger(record.init_duration_ms)).toBe(true);
      }
      // the profiled processes themselves never send (their COLDSTART_* settings are removed)
      expect(records[0].invocation_id).not.toBe(records[1].invocation_id);
    } finally {
      await collector.close();
    }
  });

  it('--send that the backend refuses exits 2', async () => {
    const collector = await startCollector((_request, response) => {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end('{"detail":"bad key"}');
    });
    try {
      const run = await cli(['profile', 'handler.js', '--runs', '1', '--send'], {
        COLDSTART_ENDPOINT: collector.url,
        COLDSTART_API_KEY: 'csa_wrong',
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('--send failed: HTTP 401');
      const missing = await cli(['profile', 'handler.js', '--send']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('--send needs COLDSTART_ENDPOINT and COLDSTART_API_KEY');
    } finally {
      await collector.close();
    }
  });

  it('profiles an ES module handler', async () => {
    const run = await cli(['profile', 'esm-handler.mjs', '--runs', '1', '--json']);
    expect(run.code).toBe(0);
    const profile = JSON.parse(run.stdout);
    const self = Object.fromEntries(profile.modules.map((m: any) => [m.name, m.self_ms]));
    near(self.moment, 60, 8);
    near(self['./esm-handler'], 10, 8);
    // profile forces ES module timing: loading and evaluation in-thread, from the hooks thread's
    // clock where just the hooks thread exists (Node.js 18.19+/20)
    expect(profile.runs_detail[0].esm_timing).toBe(esmHooksApi(NODE_VERSION) === 'registerHooks' ? 'on' : 'hooks-thread');
    if (esmHooksApi(NODE_VERSION) === 'registerHooks') {
      // the merged tree splits self time into loading and evaluation: moment is CommonJS (its
      // 60 ms body is evaluation), the handler file's 10 ms busy-wait too; linking apart
      expect(validate(SCHEMA, profile)).toEqual([]);
      expect(profile.esm_timing).toBe('on');
      expect(profile.link_ms.median).toBeGreaterThanOrEqual(0);
      const moment = profile.tree.find((n: any) => n.name === 'moment');
      expect(moment.evaluation_ms).toBeGreaterThan(50);
      expect(moment.loading_ms + moment.evaluation_ms).toBeCloseTo(moment.self_ms, 1);
      const own = profile.tree.find((n: any) => n.name === './esm-handler');
      expect(own.evaluation_ms).toBeGreaterThanOrEqual(10);
      const text = await cli(['profile', 'esm-handler.mjs', '--runs', '1']);
      expect(text.stdout).toMatch(/^package \/ file +self ms +total ms +loading +eval$/m);
      expect(text.stdout).toMatch(/^moment 2\.29\.4 +\d[\d.]* +\d[\d.]* +\d[\d.]* +\d[\d.]*$/m);
      expect(text.stdout).toMatch(/^ESM linking +[\d.]+ ms median/m);
      for (const line of text.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    }
  });

  it('--cpu-profile: V8 samples attributed by script URL, and says how exact', async () => {
    const run = await cli(['profile', 'handler.js', '--runs', '1', '--json', '--cpu-profile']);
    expect(run.code).toBe(0);
    const profile = JSON.parse(run.stdout);
    expect(validate(SCHEMA, profile)).toEqual([]);
    const cpu = profile.cpu_profile;
    expect(cpu).toMatchObject({ method: 'v8-cpu-profile', interval_us: 100 });
    expect(cpu.exactness).toContain('sampled every 100 us');
    // the busy-waits run in their packages' scripts: the samples find them there. Sampling is
    // statistical, and on a busy machine the sampler runs late and some samples land in the
    // garbage collector or elsewhere (small-dep's 20 ms busy-wait got 7.2 ms of samples on this
    // 2-core machine at a load of 5): held to the place of the time more than to its amount.
    const ms = Object.fromEntries(cpu.scripts.map((s: any) => [s.name, s.ms]));
    expect(cpu.scripts[0].name).toBe('moment');
    expect(ms.moment).toBeGreaterThan(20);
    expect(ms.moment).toBeLessThan(120);
    expect(ms['small-dep']).toBeGreaterThan(3);
    expect(ms['./src/config']).toBeGreaterThan(2);
    expect(ms['tiny-a'] ?? 0).toBeLessThan(ms['small-dep']);
    expect(ms['@coldstart/analyzer']).toBeUndefined();
    expect(profile.runs_detail[0].cpu.scripts.moment).toBe(ms.moment);
    const text = await cli(['profile', 'handler.js', '--runs', '1', '--cpu-profile']);
    expect(text.stdout).toMatch(/^CPU profile \(V8, every 100 us, \d+ samples per run\)/m);
    expect(text.stdout).toMatch(/^moment +\d[\d.]*$/m);
    expect(text.stdout).toContain('How exact: sampled every 100 us');
  });

  it('a handler that throws during init, and usage errors, exit 2', async () => {
    const broken = await cli(['profile', 'broken.js', '--runs', '2']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('broken.js failed to load (run 1)');
    expect(broken.stderr).toContain('Error: broken at init');
    for (const args of [
      ['profile'],
      ['profile', 'handler.js', '--runs', '0'],
      ['profile', 'nope.js'],
      ['profile', 'handler.js', '--bogus'],
      ['frobnicate'],
    ]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
    }
    const bad = await cli(['profile', 'handler.js', '--compare', join(FIXTURE, 'package.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a coldstart profile');
  });
});

afterAll(() => rmSync(TMP, { recursive: true, force: true }));
