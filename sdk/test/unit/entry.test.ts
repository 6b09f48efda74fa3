// The runtime bundle's entry (src/runtime/main.ts -> dist/index.cjs) and what the SDK's own load does:
// its exports, and the ES module entry's (esm/index.mjs), match the typed surface
// (src/runtime/index.ts -> dist/index.d.ts), and it loads nothing it does not need (the public
// node:module costs up to a millisecond on Node.js 20). The export list is written in these three
// files; these tests keep them one list.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { esmHooksApi } from '../../src/runtime/hooks';
import { SDK_ROOT } from '../harness/helpers';

/** The values dist/index.d.ts declares (its final `export { ... }` list, types left out). */
function declaredValues(): string[] {
  return /export \{([^}]*)\};\s*$/
    .exec(readFileSync(join(SDK_ROOT, 'dist', 'index.d.ts'), 'utf8'))![1]!
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '' && !name.startsWith('type '));
}

describe('dist/index.cjs', () => {
  test('exports every value the types declare, as a plain object marked __esModule', () => {
    const declared = declaredValues();
    const script = `const api = require(${JSON.stringify(join(SDK_ROOT, 'dist', 'index.cjs'))});
      process.stdout.write(JSON.stringify({ keys: Object.keys(api), esModule: api.__esModule,
        enumerable: Object.prototype.propertyIsEnumerable.call(api, '__esModule') }));`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    const { keys, esModule, enumerable } = JSON.parse(run.stdout);
    expect([...keys].sort()).toEqual([...declared].sort());
    expect(esModule).toBe(true);
    expect(enumerable).toBe(false);
  });

  test.runIf(esmHooksApi() === 'register')('loading the SDK for a CommonJS handler does not load the public node:module', () => {
    const script = `require(${JSON.stringify(join(SDK_ROOT, 'dist', 'index.cjs'))});
      const runtime = globalThis[Symbol.for('coldstart.analyzer.runtime')];
      process.stdout.write(JSON.stringify({ esm: runtime.esmTiming, module: process.moduleLoadList.includes('NativeModule module') }));`;
    // a script file: `node -e` itself loads node:module
    const dir = mkdtempSync(join(tmpdir(), 'coldstart-entry-'));
    try {
      writeFileSync(join(dir, 'load.cjs'), script);
      const run = spawnSync(process.execPath, [join(dir, 'load.cjs')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect(JSON.parse(run.stdout)).toEqual({ esm: 'skipped', module: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('esm/index.mjs', () => {
  test("exports every public value the types declare (the __ entry points are the core's own), and the core as default", () => {
    const script = `import * as api from ${JSON.stringify(join(SDK_ROOT, 'esm', 'index.mjs'))};
      import { createRequire } from 'node:module';
      const core = createRequire(import.meta.url)(${JSON.stringify(join(SDK_ROOT, 'dist', 'index.cjs'))});
      const named = Object.keys(api).filter((name) => name !== 'default');
      process.stdout.write(JSON.stringify({ named, defaultIsCore: api.default === core,
        same: named.filter((name) => api[name] === core[name]) }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(run.stderr).toBe('');
    const { named, defaultIsCore, same } = JSON.parse(run.stdout);
    const expected = declaredValues()
      .filter((name) => !name.startsWith('__'))
      .sort();
    expect(expected.length).toBeGreaterThan(10);
    expect([...named].sort()).toEqual(expected);
    expect([...same].sort()).toEqual(expected);
    expect(defaultIsCore).toBe(true);
  });
});

describe('esmHooksApi', () => {
  test.each([
    ['16.20.2', undefined],
    ['18.18.2', undefined],
    ['18.19.0', 'register'],
    ['18.20.8', 'register'],
    ['19.9.0', 'register'],
    ['20.5.1', undefined],
    ['20.6.0', 'register'],
    ['20.20.2', 'register'],
    ['22.14.0', 'register'],
    ['22.15.0', 'registerHooks'],
    ['23.4.0', 'register'],
    ['23.5.0', 'registerHooks'],
    ['24.0.0', 'registerHooks'],
    ['25.1.0', 'registerHooks'],
  ])('Node.js %s: %s', (version, api) => {
    expect(esmHooksApi(version)).toBe(api);
  });

  test('agrees with the running Node.js', async () => {
    const module = (await import('node:module')) as unknown as Record<string, unknown>;
    const expected =
      typeof module.registerHooks === 'function' ? 'registerHooks' : typeof module.register === 'function' ? 'register' : undefined;
    expect(esmHooksApi()).toBe(expected);
  });
});
