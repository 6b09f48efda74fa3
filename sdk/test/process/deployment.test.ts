// The deployment identity (fingerprint.ts) in real processes: function_version from Lambda's
// environment, and a code_id that is the same for the same code in every process and changes
// when a dependency's version or the function's own code changes.
import { cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runFixture, SDK_ROOT, startCollector, startStreamPeer, waitFor, type Collector } from '../harness/helpers';

let collector: Collector;
const roots: string[] = [];
beforeAll(async () => {
  collector = await startCollector();
});
afterAll(async () => {
  await collector.close();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A task root with one dependency `dep` at `version` and an own file whose text is `own`. */
function app(version: string, own = 'module.exports = 1;'): string {
  const root = mkdtempSync(join(tmpdir(), 'coldstart-deploy-'));
  roots.push(root);
  mkdirSync(join(root, 'node_modules', 'dep'), { recursive: true });
  mkdirSync(join(root, 'node_modules', '@coldstart'), { recursive: true });
  mkdirSync(join(root, 'src'));
  symlinkSync(SDK_ROOT, join(root, 'node_modules', '@coldstart', 'analyzer'));
  writeFileSync(join(root, 'node_modules', 'dep', 'package.json'), JSON.stringify({ name: 'dep', version, main: 'index.js' }));
  writeFileSync(join(root, 'node_modules', 'dep', 'index.js'), 'exports.v = 1;\n');
  writeFileSync(join(root, 'src', 'own.js'), own + '\n');
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'deploy-app', private: true }));
  writeFileSync(
    join(root, 'handler.js'),
    "'use strict';\nconst { analyze } = require('@coldstart/analyzer');\nconst dep = require('dep');\nconst own = require('./src/own');\nexports.handler = analyze(async () => ({ v: dep.v + own }));\n",
  );
  return root;
}

async function records(root: string, invocations = 2, env: Record<string, string> = {}) {
  const name = `deploy-${Math.random().toString(36).slice(2, 8)}`;
  const result = await runFixture({
    handler: 'handler.handler',
    cwd: root,
    endpoint: collector.url,
    invocations,
    env: { AWS_LAMBDA_FUNCTION_NAME: name, ...env },
  });
  expect(result.code, result.stderr).toBe(0);
  await waitFor(() => collector.records().filter((r) => r.function_name === name).length >= invocations, 5000);
  const got = collector.records().filter((r) => r.function_name === name);
  expect(got).toHaveLength(invocations);
  return got;
}

const codeIdOf = (list: any[]): string => {
  const ids = new Set(list.map((r) => r.code_id));
  expect(ids.size).toBe(1); // cold and warm records of one process agree
  const [id] = ids;
  expect(id).toMatch(/^[0-9a-f]{32}$/);
  return id as string;
};

describe('deployment identity', () => {
  test('function_version from the environment; code_id on cold and warm records, stable across processes', async () => {
    const root = app('1.0.0');
    const first = await records(root);
    const second = await records(root);
    expect(first.map((r) => r.function_version)).toEqual(['$LATEST', '$LATEST']);
    expect(first.some((r) => r.cold_start) && first.some((r) => !r.cold_start)).toBe(true);
    expect(codeIdOf(first)).toBe(codeIdOf(second));
    // the same sources in another directory (another environment of the same deployment)
    expect(codeIdOf(await records(app('1.0.0'), 1))).toBe(codeIdOf(first));
    const published = await records(root, 1, { AWS_LAMBDA_FUNCTION_VERSION: '7' });
    expect(published[0].function_version).toBe('7');
    expect(published[0].code_id).toBe(codeIdOf(first));
  });

  test('a dependency at another version, or changed own code, gives another code_id', async () => {
    const base = codeIdOf(await records(app('1.0.0'), 1));
    const bumped = codeIdOf(await records(app('1.0.1'), 1));
    const edited = codeIdOf(await records(app('1.0.0', 'module.exports = 2;'), 1));
    expect(bumped).not.toBe(base);
    expect(edited).not.toBe(base);
    expect(edited).not.toBe(bumped);
  });

  test('the early copy of a cold-start record has function_version (code_id comes with the complete one)', async () => {
    const root = app('2.0.0');
    cpSync(join(root, 'handler.js'), join(root, 'slow.js'));
    writeFileSync(
      join(root, 'slow.js'),
      "'use strict';\nconst { analyze } = require('@coldstart/analyzer');\nrequire('dep');\nexports.handler = analyze(async () => { await new Promise((r) => setTimeout(r, 400)); return 1; });\n",
    );
    const name = `deploy-early-${Math.random().toString(36).slice(2, 8)}`;
    const result = await runFixture({
      handler: 'slow.handler',
      cwd: root,
      endpoint: collector.url,
      env: { AWS_LAMBDA_FUNCTION_NAME: name },
    });
    expect(result.code, result.stderr).toBe(0);
    await waitFor(() => collector.records().some((r) => r.function_name === name), 5000);
    const early = collector.earlyRecords().filter((r) => r.function_name === name);
    const complete = collector.records().filter((r) => r.function_name === name);
    expect(early.length).toBeGreaterThan(0);
    expect(early[0].function_version).toBe('$LATEST');
    expect(complete[0].code_id).toMatch(/^[0-9a-f]{32}$/);
  });

  test("the extension's warm template carries the deployment identity", async () => {
    const peer = await startStreamPeer(true, true);
    try {
      const root = app('3.0.0');
      const name = `deploy-ext-${Math.random().toString(36).slice(2, 8)}`;
      const marker = join(root, 'extension-marker');
      writeFileSync(marker, '#!/bin/sh\n');
      const result = await runFixture({
        handler: 'handler.handler',
        cwd: root,
        invocations: 3,
        gapMs: 100, // the extension's offer arrives while the first invocation's record is sent
        endpoint: collector.url,
        env: { AWS_LAMBDA_FUNCTION_NAME: name, COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_STREAM_PORT: String(peer.port) },
      });
      expect(result.code, result.stderr).toBe(0);
      await waitFor(() => peer.delegates.length > 0, 3000);
      const cold = peer.records().find((r) => r.function_name === name && r.cold_start);
      expect(cold?.code_id).toMatch(/^[0-9a-f]{32}$/);
      expect(peer.delegates.length).toBeGreaterThan(0);
      for (const delegate of peer.delegates) {
        expect(delegate.record.code_id).toBe(cold.code_id);
        expect(delegate.record.function_version).toBe('$LATEST');
      }
    } finally {
      await peer.close();
    }
  });
});
