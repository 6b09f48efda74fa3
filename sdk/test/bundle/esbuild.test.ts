// The esbuild plugin against the unbundled truth: test/fixtures/profile's handler (modules that
// busy-wait for known durations) bundled by a real esbuild, CommonJS and ESM output, minified and
// not, with source maps, profiled by `coldstart profile` in real processes. The bundles must rank
// the same packages at the top as the unbundled handler, within the SDK's accuracy target.
// (./handler's own self time is not compared: it also pays Node.js's lazy set-up of the
// `performance` global on first use, about 10 ms on this machine, bundled or not.)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, nearEnough } from '../harness/cli';
import { API_KEY, SDK_ROOT, startCollector } from '../harness/helpers';
import { validate } from '../harness/schema';

const FIXTURE = join(SDK_ROOT, 'test', 'fixtures', 'profile');
const SCHEMA = JSON.parse(readFileSync(join(SDK_ROOT, 'profile.schema.json'), 'utf8'));
const OUT = mkdtempSync(join(tmpdir(), 'coldstart-esbuild-test-'));
// the built plugin, as a user gets it (CommonJS entry; the ESM entry is checked below)
const { coldstartPlugin } = require(join(SDK_ROOT, 'dist', 'esbuild.cjs'));

const profile = (file: string, runs = 3) => cli(['profile', file, '--runs', String(runs), '--json']);

const TRUTH: Record<string, number> = { moment: 60, 'small-dep': 20, './src/config': 15 };
const TOP = ['moment', 'small-dep', './src/config'];

const variants = [
  { name: 'cjs', outfile: 'cjs/handler.js', options: { format: 'cjs' as const } },
  { name: 'cjs minified, source map', outfile: 'min/handler.js', options: { format: 'cjs' as const, minify: true, sourcemap: true } },
  { name: 'esm', outfile: 'esm/handler.mjs', options: { format: 'esm' as const } },
  { name: 'esm minified', outfile: 'esm-min/handler.mjs', options: { format: 'esm' as const, minify: true } },
];

describe('esbuild plugin', () => {
  let unbundled: any;

  beforeAll(async () => {
    for (const v of variants)
      await build({
        entryPoints: [join(FIXTURE, 'handler.js')],
        bundle: true,
        platform: 'node',
        target: 'node18',
        outfile: join(OUT, v.outfile),
        absWorkingDir: FIXTURE,
        logLevel: 'silent',
        plugins: [coldstartPlugin()],
        ...v.options,
      });
    await build({
      entryPoints: [join(FIXTURE, 'handler.js')],
      bundle: true,
      platform: 'node',
      target: 'node18',
      outfile: join(OUT, 'plain/handler.js'),
      absWorkingDir: FIXTURE,
      logLevel: 'silent',
    });
    const run = await profile(join(FIXTURE, 'handler.js'));
    expect(run.code).toBe(0);
    unbundled = JSON.parse(run.stdout);
  });

  afterAll(() => rmSync(OUT, { recursive: true, force: true }));

  for (const v of variants) {
    it(`${v.name}: the same top packages as unbundled, within the accuracy target`, async () => {
      const run = await profile(join(OUT, v.outfile));
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const bundled = JSON.parse(run.stdout);
      expect(validate(SCHEMA, bundled)).toEqual([]);
      expect(bundled.bundle).toMatchObject({ kind: 'esbuild-plugin' });
      // the ranking of the modules with a known duration, and of the packages (bundled = unbundled)
      const ranked = (p: any, keep: (name: string) => boolean) => p.modules.map((m: any) => m.name).filter(keep);
      expect(ranked(bundled, (n) => n in TRUTH)).toEqual(TOP);
      expect(ranked(unbundled, (n) => n in TRUTH)).toEqual(TOP);
      const packages = (n: string) => !n.startsWith('./');
      expect(ranked(bundled, packages).slice(0, 2)).toEqual(ranked(unbundled, packages).slice(0, 2));
      for (const [name, ms] of Object.entries(TRUTH)) {
        const self = bundled.modules.find((m: any) => m.name === name).self_ms;
        expect(nearEnough(self, ms, Math.max(1, ms * 0.05) + 1), name).toBeUndefined();
      }
      // bytes per package from the metafile, versions from the markers (no package.json at run time
      // is read: the bundle is in a directory of its own), and the recommendation for the (fake) moment
      expect(bundled.modules.find((m: any) => m.name === 'moment').bytes).toBeGreaterThan(100);
      expect(bundled.modules.find((m: any) => m.name === 'moment').version).toBe('2.29.4');
      expect(bundled.modules.find((m: any) => m.name === 'small-dep').version).toBe(
        unbundled.modules.find((m: any) => m.name === 'small-dep').version,
      );
      expect(bundled.recommendations[0]).toMatchObject({ module: 'moment', rule_id: 'moment' });
    });
  }

  it('a bundle without the plugin reports its total and says it has no per-module data', async () => {
    const run = await profile(join(OUT, 'plain/handler.js'), 1);
    expect(run.code).toBe(0);
    const bundled = JSON.parse(run.stdout);
    expect(bundled.bundle).toEqual({ kind: 'no-plugin' });
    expect(bundled.modules.map((m: any) => m.name)).toEqual(['./handler']);
    expect(bundled.load_ms.median).toBeGreaterThan(90);
    const text = (await cli(['profile', join(OUT, 'plain/handler.js'), '--runs', '1'])).stdout;
    expect(text).toContain('built without the @coldstart/analyzer/esbuild');
  });

  it('--send marks the records with the module_source the SDK would send', async () => {
    const collector = await startCollector();
    try {
      const env = { COLDSTART_ENDPOINT: collector.url, COLDSTART_API_KEY: API_KEY };
      for (const file of ['plain/handler.js', 'cjs/handler.js']) {
        const run = await cli(['profile', join(OUT, file), '--runs', '1', '--send', '--json'], env);
        expect(run.code, run.stderr).toBe(0);
      }
      expect(collector.records().map((r: any) => r.module_source)).toEqual(['bundled-no-plugin', 'esbuild-plugin']);
    } finally {
      await collector.close();
    }
  });

  it('the ESM entry point exports the same plugin', async () => {
    const esm = await import(join(SDK_ROOT, 'esm', 'esbuild.mjs'));
    expect(typeof esm.default).toBe('function');
    expect(esm.coldstartPlugin().name).toBe('coldstart-analyzer');
  });
});

describe('esbuild plugin: types', () => {
  it('is an esbuild Plugin for TypeScript, from both module systems', () => {
    const dir = mkdtempSync(join(tmpdir(), 'coldstart-esbuild-types-'));
    try {
      const link = (target: string, path: string) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        symlinkSync(target, join(dir, path));
      };
      link(SDK_ROOT, 'node_modules/@coldstart/analyzer');
      link(join(SDK_ROOT, 'node_modules', 'esbuild'), 'node_modules/esbuild');
      writeFileSync(
        join(dir, 'check.ts'),
        "import { build, type Plugin } from 'esbuild';\nimport coldstart, { coldstartPlugin } from '@coldstart/analyzer/esbuild';\n" +
          "const p: Plugin = coldstartPlugin();\nconst q: Plugin = coldstart({ sizes: false });\nvoid build({ entryPoints: ['x.js'], plugins: [p, q] });\n",
      );
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [] },
          files: ['check.ts'],
        }),
      );
      for (const type of ['module', 'commonjs']) {
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
        const tsc = spawnSync(process.execPath, [join(SDK_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], {
          encoding: 'utf8',
        });
        expect(tsc.stdout + tsc.stderr, type).toBe('');
        expect(tsc.status).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
