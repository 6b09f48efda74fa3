// module_source and versions inside bundles, end to end: a handler with real npm packages (debug,
// ms, picocolors, magic-string, @jridgewell/sourcemap-codec, from the SDK's node_modules) bundled
// by a real esbuild with and without the plugin, run through the SDK in a fresh Node.js process with
// Lambda's environment (test/harness/runner.mjs), its records sent to a real HTTP listener.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build, type BuildOptions } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleKind } from '../../src/shared/bundle';
import { esmHooksApi } from '../../src/runtime/hooks';
import { NODE_VERSION, runFixture, SDK_ROOT, startCollector, waitFor, type Collector, type RunOptions } from '../harness/helpers';
import { expectValidRecord } from '../harness/record';

const { coldstartPlugin } = require(join(SDK_ROOT, 'dist', 'esbuild.cjs'));
const FIXTURE = join(__dirname, 'fixture');
const OUT = mkdtempSync(join(tmpdir(), 'coldstart-module-source-'));
const PACKAGES = ['debug', 'ms', 'picocolors', 'magic-string', '@jridgewell/sourcemap-codec'];
const VERSIONS: Record<string, string> = Object.fromEntries(
  PACKAGES.map((name) => [name, JSON.parse(readFileSync(join(SDK_ROOT, 'node_modules', name, 'package.json'), 'utf8')).version]),
);
const BUSY_MS = 40; // the fixture's own busy-wait

/** A task root: the packages and the SDK linked into node_modules, the fixture's source in src/. */
function taskRoot(name: string): string {
  const root = join(OUT, name);
  const link = (target: string, path: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    symlinkSync(target, join(root, path));
  };
  for (const name of PACKAGES) link(join(SDK_ROOT, 'node_modules', name), join('node_modules', name));
  link(SDK_ROOT, 'node_modules/@coldstart/analyzer');
  mkdirSync(join(root, 'src'));
  for (const file of ['handler.js', 'handler.mjs']) copyFileSync(join(FIXTURE, file), join(root, 'src', file));
  return root;
}

async function bundle(name: string, entry: string, options: BuildOptions, plugin: boolean): Promise<string> {
  const root = taskRoot(name);
  await build({
    entryPoints: [join(root, 'src', entry)],
    bundle: true,
    platform: 'node',
    target: 'node18',
    absWorkingDir: root,
    // keep node_modules/... paths as installed (the plugin leaves node_modules/@coldstart/analyzer alone)
    preserveSymlinks: true,
    logLevel: 'silent',
    plugins: plugin ? [coldstartPlugin()] : [],
    ...options,
  });
  return root;
}

const ESM = {
  format: 'esm' as const,
  outfile: 'index.mjs',
  banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
};

let collector: Collector;
const roots: Record<string, string> = {};

async function coldRecord(root: string, options: Partial<RunOptions> = {}): Promise<any> {
  const before = collector.records().length;
  const run = await runFixture({ handler: 'index.handler', endpoint: collector.url, cwd: root, ...options });
  expect(run.stderr).toBe('');
  if (run.results[0] === undefined) console.log(JSON.stringify(run.lines).slice(0, 3000));
  expect(run.results[0]).toMatchObject({ ok: true, value: { ok: true, length: 3 } });
  await waitFor(() =>
    collector
      .records()
      .slice(before)
      .some((r) => r.cold_start && r.complete !== false),
  );
  const record = collector
    .records()
    .slice(before)
    .find((r) => r.cold_start && r.complete !== false);
  expect(record).toBeDefined();
  expectValidRecord(record);
  return record;
}

/** Every node of a module_tree, flattened. */
function nodes(entries: any[] | undefined): any[] {
  return (entries ?? []).flatMap((entry) => [entry, ...nodes(entry.children)]);
}

/**
 * Each package in the tree with its package.json's version. Unbundled (`required` false), versions
 * are read after init and the record waits at most 50 ms for them, which a loaded machine can miss:
 * then a version may be absent, never wrong. In bundles they are in the markers: always there.
 */
function expectVersions(record: any, required = true): void {
  const seen = nodes(record.module_tree.children);
  for (const name of PACKAGES) {
    const node = seen.find((n) => n.name === name);
    expect(node, name).toBeDefined();
    if (required || node.version !== undefined) expect(node.version, name).toBe(VERSIONS[name]);
  }
}

describe('module_source and versions in bundles', () => {
  beforeAll(async () => {
    collector = await startCollector();
    roots.unbundled = taskRoot('unbundled');
    copyFileSync(join(roots.unbundled, 'src', 'handler.js'), join(roots.unbundled, 'index.js'));
    roots.plainCjs = await bundle('plain-cjs', 'handler.js', { format: 'cjs', outfile: 'index.js' }, false);
    roots.plainCjsMin = await bundle('plain-cjs-min', 'handler.js', { format: 'cjs', outfile: 'index.js', minify: true }, false);
    roots.pluginCjs = await bundle('plugin-cjs', 'handler.js', { format: 'cjs', outfile: 'index.js', minify: true }, true);
    roots.plainEsm = await bundle('plain-esm', 'handler.mjs', ESM, false);
    roots.pluginEsm = await bundle('plugin-esm', 'handler.mjs', ESM, true);
  });

  afterAll(async () => {
    await collector?.close();
    rmSync(OUT, { recursive: true, force: true });
  });

  it('unbundled: "hooks", versions from package.json', async () => {
    const record = await coldRecord(roots.unbundled!);
    expect(record.module_source).toBe('hooks');
    expect(record.module_timings.debug).toBeGreaterThan(0);
    expectVersions(record, false);
  });

  it('a bundle without the plugin, the SDK bundled in: "bundled-no-plugin", the bundle file carries the time', async () => {
    for (const root of [roots.plainCjs!, roots.plainCjsMin!]) {
      const record = await coldRecord(root);
      expect(record.module_source).toBe('bundled-no-plugin');
      expect(record.module_tree.coverage).toBe('require');
      // nothing inside the bundle can be split by package: one key, the bundle file, honest about its time
      expect(Object.keys(record.module_timings)).toEqual(['./index']);
      expect(record.module_timings['./index']).toBeGreaterThanOrEqual(BUSY_MS * 0.95);
      expect(record.module_timings['./index']).toBeLessThanOrEqual(record.init_duration_ms);
      expect(record.module_tree.children.map((c: any) => c.name)).toEqual(['./index']);
      expect(record.module_tree.load_ms).toBeGreaterThanOrEqual(record.module_timings['./index']);
    }
  });

  it('a bundle without the plugin, the SDK preloaded: "bundled-no-plugin", the bundle file as loaded; warm records say so too', async () => {
    const before = collector.records().length;
    const record = await coldRecord(roots.plainCjs!, { preload: 'require', invocations: 2 });
    await waitFor(() =>
      collector
        .records()
        .slice(before)
        .some((r) => !r.cold_start),
    );
    const warm = collector
      .records()
      .slice(before)
      .find((r) => !r.cold_start);
    expect(warm).toMatchObject({ module_source: 'bundled-no-plugin', start_kind: 'warm' });
    expect(record.module_source).toBe('bundled-no-plugin');
    expect(record.module_tree.coverage).toBe('preload');
    expect(Object.keys(record.module_timings)).toEqual(['./index']);
    expect(record.module_timings['./index']).toBeGreaterThanOrEqual(BUSY_MS * 0.95);
  });

  it('a bundle built with the plugin, the SDK bundled in: "esbuild-plugin", per package, with versions', async () => {
    const record = await coldRecord(roots.pluginCjs!);
    expect(record.module_source).toBe('esbuild-plugin');
    for (const name of ['debug', 'picocolors', 'magic-string']) expect(record.module_timings[name], name).toBeGreaterThan(0);
    expect(record.module_timings['./index']).toBeUndefined();
    expectVersions(record);
  });

  it('ESM bundles behind the handler redirect: with the plugin per package with versions, without it one file', async () => {
    const plugin = await coldRecord(roots.pluginEsm!, { redirect: true });
    expect(plugin.module_source).toBe('esbuild-plugin');
    expect(plugin.module_timings['./src/handler']).toBeGreaterThanOrEqual(BUSY_MS * 0.95);
    expectVersions(plugin);
    const plain = await coldRecord(roots.plainEsm!, { redirect: true });
    expect(plain.module_source).toBe('bundled-no-plugin');
    // the bundle file is seen loading where the SDK times ES modules by default (registerHooks);
    // where only the hooks thread exists, it is not started by default
    expect(plain.esm_timing).toBe(
      esmHooksApi(NODE_VERSION) === 'registerHooks' ? 'on' : esmHooksApi(NODE_VERSION) === 'register' ? 'skipped' : 'unsupported',
    );
    if (plain.esm_timing === 'on') {
      expect(Object.keys(plain.module_timings)).toEqual(['./index']);
      expect(plain.module_timings['./index']).toBeGreaterThanOrEqual(BUSY_MS * 0.95);
    }
  });

  it('recognises esbuild output, minified or not, and leaves plain source alone', () => {
    const text = (root: string, file: string): string => readFileSync(join(root, file), 'utf8');
    expect(bundleKind(text(roots.plainCjs!, 'index.js'))).toBe('no-plugin');
    expect(bundleKind(text(roots.plainCjsMin!, 'index.js'))).toBe('no-plugin');
    expect(bundleKind(text(roots.plainEsm!, 'index.mjs'))).toBe('no-plugin');
    expect(bundleKind(text(roots.pluginCjs!, 'index.js'))).toBe('esbuild-plugin');
    expect(bundleKind(text(roots.pluginEsm!, 'index.mjs'))).toBe('esbuild-plugin');
    expect(bundleKind(readFileSync(join(FIXTURE, 'handler.js'), 'utf8'))).toBeUndefined();
    expect(bundleKind(readFileSync(join(SDK_ROOT, 'node_modules', 'debug', 'src', 'node.js'), 'utf8'))).toBeUndefined();
  });
});
