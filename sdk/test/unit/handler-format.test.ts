// handlerIsCommonJs: in auto mode the SDK registers no ES module hooks for a CommonJS handler
// (Node.js sends every require() through registered in-thread hooks: +10 % init and a garbage
// collection in the first response, bench/sdk/COLD-REQUEST.md). It must never call an ES module
// handler CommonJS, or that handler's modules would go untimed.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { handlerIsCommonJs } from '../../src/runtime/hooks';

const root = mkdtempSync(join(tmpdir(), 'csa-handler-format-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A task root with these files; returns handlerIsCommonJs for `handler` under it. */
function check(files: Record<string, string>, handler: string, variable: 'COLDSTART_HANDLER' | '_HANDLER' = '_HANDLER'): boolean {
  const taskRoot = mkdtempSync(join(root, 'task-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(taskRoot, name, '..'), { recursive: true });
    writeFileSync(join(taskRoot, name), text);
  }
  return handlerIsCommonJs({ LAMBDA_TASK_ROOT: taskRoot, [variable]: handler });
}

describe('handlerIsCommonJs', () => {
  test('.cjs is CommonJS, .mjs is not', () => {
    expect(check({ 'index.cjs': 'exports.handler = async () => 1;' }, 'index.handler')).toBe(true);
    expect(check({ 'index.mjs': 'export const handler = async () => 1;' }, 'index.handler')).toBe(false);
  });

  test('.js follows the nearest package.json "type"', () => {
    expect(check({ 'package.json': '{"type":"module"}', 'src/app.js': 'exports.handler = 1;' }, 'src/app.handler')).toBe(false);
    expect(check({ 'package.json': '{"type":"commonjs"}', 'src/app.js': 'export const handler = 1;' }, 'src/app.handler')).toBe(true);
    // the nearest one wins
    expect(
      check({ 'package.json': '{"type":"commonjs"}', 'src/package.json': '{"type":"module"}', 'src/app.js': 'x' }, 'src/app.handler'),
    ).toBe(false);
  });

  test('a type-less .js is CommonJS only without ES module syntax (Node.js 22 detects it)', () => {
    expect(
      check(
        { 'package.json': '{"name":"fn"}', 'index.js': "'use strict';\nconst s3 = require('x');\nexports.handler = async () => s3;\n" },
        'index.handler',
      ),
    ).toBe(true);
    expect(
      check({ 'index.js': "import { S3Client } from '@aws-sdk/client-s3';\nexport const handler = async () => 1;\n" }, 'index.handler'),
    ).toBe(false);
    expect(check({ 'index.js': 'const x = 1;\nexport { x as handler };\n' }, 'index.handler')).toBe(false);
    expect(check({ 'index.js': "import * as path from 'node:path';\nexports.handler = path;\n" }, 'index.handler')).toBe(false);
    // words that only start like the keywords, and dynamic import(), are not ES module syntax
    expect(check({ 'index.js': "const important = 1;\nexports.handler = () => import('./lazy.mjs');\n" }, 'index.handler')).toBe(true);
  });

  test('COLDSTART_HANDLER (behind the redirect) names the handler; nothing found or unreadable is not CommonJS', () => {
    expect(check({ 'app.cjs': 'exports.handler = 1;' }, 'app.handler', 'COLDSTART_HANDLER')).toBe(true);
    expect(check({}, 'missing.handler')).toBe(false);
    expect(check({ 'index.js': 'exports.handler = 1;', 'package.json': '{not json' }, 'index.handler')).toBe(false);
    expect(handlerIsCommonJs({})).toBe(false);
  });
});
