// The package versions of the cold-start record (module_tree) and of code_id are read from the
// first 4 kB of each package.json when its top-level `version` can be told there without parsing
// (fingerprint.ts readPackageVersion): the same answer as JSON.parse, on real manifests and on
// the shapes where a quick look could go wrong.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { leadingVersion, readPackageVersion } from '../../src/invoke/fingerprint';

const parsedVersion = (dir: string): string | undefined => {
  try {
    const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof version === 'string' ? version.slice(0, 64) : undefined;
  } catch {
    return undefined;
  }
};

test('every package installed for the SDK build: the version JSON.parse gives', () => {
  const root = join(__dirname, '..', '..', 'node_modules');
  const dirs: string[] = [];
  for (const name of readdirSync(root)) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) for (const scoped of readdirSync(join(root, name))) dirs.push(join(root, name, scoped));
    else dirs.push(join(root, name));
  }
  const manifests = dirs.filter((dir) => existsSync(join(dir, 'package.json')));
  expect(manifests.length).toBeGreaterThan(50);
  let quick = 0;
  for (const dir of manifests) {
    expect(readPackageVersion(dir), dir).toBe(parsedVersion(dir));
    if (leadingVersion(readFileSync(join(dir, 'package.json'), 'utf8').slice(0, 4096)) !== undefined) quick++;
  }
  expect(quick).toBeGreaterThan(manifests.length / 2); // the quick look is the common case
});

const work = mkdtempSync(join(tmpdir(), 'csa-version-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let serial = 0;
const manifest = (text: string): string => {
  const dir = join(work, String(++serial));
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), text);
  return dir;
};

test.each([
  ['plain', '{\n  "name": "a",\n  "version": "1.2.3",\n  "main": "x.js"\n}', '1.2.3'],
  ['minified', '{"name":"a","version":"2.0.0-beta.1"}', '2.0.0-beta.1'],
  ['a nested version before the top-level one', '{"name":"a","engines":{"version":"9"},"version":"1.0.0"}', '1.0.0'],
  ['an array before it', '{"files":["version"],"version":"3.1.0"}', '3.1.0'],
  ['only a nested version', '{"name":"a","publishConfig":{"version":"9"}}', undefined],
  ['a key with an escaped quote ending in version', '{"a\\"version": "x", "version": "4.0.0"}', '4.0.0'],
  ['a value with an escape', '{"version":"1.0.0-\\u0061"}', '1.0.0-a'],
  ['version is not a string', '{"version": 5}', undefined],
  ['not JSON', 'version: 1', undefined],
  ['version beyond the first 4 kB', `{"description":"${'x'.repeat(5000)}","nested":{"a":1},"version":"5.6.7"}`, '5.6.7'],
  ['longer than 64 characters', `{"version":"${'1'.repeat(80)}"}`, '1'.repeat(64)],
])('%s', (_name, text, expected) => {
  const dir = manifest(text);
  expect(readPackageVersion(dir)).toBe(expected);
  expect(parsedVersion(dir)).toBe(expected);
});

test('no package.json: no version, no error', () => {
  expect(readPackageVersion(join(work, 'missing'))).toBeUndefined();
});
