// Under AWS's own Runtime Interface Client (aws-lambda-ric 4.0.2 from npm, its native client as
// shipped prebuilt), against the project's stand-in for the Lambda Runtime API
// (extension/tests/lambda-emulator.mjs): an ES module handler that imports a barrel package (the
// loading fixture's barrel-fns: 400 files behind an index, and its cjs-exports, a CommonJS package of
// 4,000 exports), the SDK installed from its packed
// tarball into node_modules/@coldstart/analyzer and loaded through the handler redirect and the
// preload, as a user sets it up. The barrel package must carry its loading time; neither the SDK
// (whose redirect imports the handler) nor the handler file may. The environment is frozen as soon
// as the client asks for its next event: the cold-start record must have left the process by then
// (the SDK does its after-response work inside the client's InvokeStore.run, start.ts).
//
// The client is installed for the test in the system's temporary folder (once), with npm; its install
// scripts, which build the native client (aws-lambda-cpp and curl, shipped as sources) with cmake,
// make and node-gyp, are run explicitly: this npm (11) does not run a package's install scripts
// without an allowScripts entry, and the package has no prebuilt native client. Needs the npm
// registry (or npm's cache) and a C/C++ toolchain, about a minute the first time. Node.js 22+ only
// (the client's engines).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { NODE, NODE_VERSION, SDK_ROOT, API_KEY, startCollector, waitFor, type Collector } from '../harness/helpers';

const RIC_VERSION = '4.0.2';
const MAJOR = Number(NODE_VERSION.split('.')[0]);
// Outside any node_modules folder, as Lambda's /var/runtime: files of the runtime are not the
// function's (the SDK leaves them out of the record, recorder.ts).
const RIC_DIR = join(tmpdir(), `coldstart-aws-lambda-ric-${RIC_VERSION}`);
const RUNTIME_DIR = join(RIC_DIR, 'runtime');
const RIC_INDEX = join(RUNTIME_DIR, 'index.mjs');
const RIC_NATIVE = join(RUNTIME_DIR, 'rapid-client.node');

let app: string;
let collector: Collector;

beforeAll(async () => {
  if (MAJOR >= 22 && !existsSync(RIC_NATIVE)) {
    mkdirSync(RIC_DIR, { recursive: true });
    // asynchronously: a build of a minute must not block the test worker's event loop
    const run = promisify(execFile);
    await run(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', '--prefix', RIC_DIR, `aws-lambda-ric@${RIC_VERSION}`],
      { timeout: 120_000 },
    );
    const env = { ...process.env, PATH: `${join(RIC_DIR, 'node_modules', '.bin')}:${process.env.PATH}` };
    const dir = join(RIC_DIR, 'node_modules', 'aws-lambda-ric');
    for (const script of ['scripts/preinstall.sh', 'scripts/postinstall.sh'])
      await run('sh', [script], { cwd: dir, env, timeout: 600_000, maxBuffer: 64 << 20 });
    cpSync(dir, RUNTIME_DIR, { recursive: true });
  }
  app = mkdtempSync(join(tmpdir(), 'coldstart-ric-'));
  const { generate } = await import(join(SDK_ROOT, 'test', 'fixtures', 'loading', 'generate.mjs'));
  generate(app); // no SDK link: the packed tarball is installed below
  // the handler: the barrel only, and a 10 ms busy-wait of its own
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    join(app, 'index.mjs'),
    "import { f7, f123 } from 'barrel-fns';\nimport { c7 } from 'cjs-exports';\n{ const s = performance.now(); while (performance.now() - s < 10); }\nexport const handler = async (event) => ({ value: f7(1, 2).getTime() + f123(3, 4).getTime() + c7('x'), echo: event });\n",
  );
  // the SDK as users get it: npm pack, unpacked into node_modules/@coldstart/analyzer
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', app], { cwd: SDK_ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()!;
  const target = join(app, 'node_modules', '@coldstart', 'analyzer');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', join(app, packed), '-C', target, '--strip-components=1']);
  collector = await startCollector();
}, 900_000);

afterAll(async () => {
  await collector?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

describe.runIf(MAJOR >= 22)(`under aws-lambda-ric ${RIC_VERSION} (Node.js ${NODE_VERSION})`, () => {
  test('an ES module handler behind the redirect: the barrel package carries its loading, not the SDK or the handler file', async () => {
    // @ts-expect-error a JavaScript module of the extension's tests
    const { LambdaEmulator } = await import('../../../extension/tests/lambda-emulator.mjs');
    const emulator = new LambdaEmulator({
      taskRoot: app,
      handler: 'node_modules/@coldstart/analyzer/handler.handler',
      // the client on the Node.js under test; the environment is frozen (SIGSTOP) as soon as the
      // runtime asks for its next event, as Lambda does: the cold-start record must have left by then
      runtime: RIC_INDEX,
      node: NODE,
      timeoutMs: 10_000,
      functionName: `ric-${Date.now()}`,
      env: {
        // set by Lambda in every environment; the client refuses to run without them
        AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/ric-test',
        AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef',
        COLDSTART_HANDLER: 'index.handler',
        COLDSTART_API_KEY: API_KEY,
        COLDSTART_ENDPOINT: collector.url,
        COLDSTART_EXTENSION: 'off',
        NODE_OPTIONS: '--require @coldstart/analyzer/register',
      },
    });
    try {
      expect(await emulator.start()).toBe('success');
      const result = await emulator.invoke({ n: 1 });
      expect(result.status, `${result.body}\n${emulator.runtime.output}`).toBe('success');
      expect(JSON.parse(result.body).echo).toEqual({ n: 1 });
      const name = emulator.o.functionName;
      await waitFor(() => collector.records().some((r) => r.function_name === name), 5000);
      const record = collector.records().find((r) => r.function_name === name);
      expect(record, emulator.runtime.output).toBeDefined();
      expect(record.cold_start).toBe(true);
      expect(record.esm_timing).toBe('on');
      expect(record.module_tree.coverage).toBe('preload');
      const timings: Record<string, number> = record.module_timings;
      // the SDK is overhead, never a package; the handler file: its busy-wait and its own loading
      expect(timings['@coldstart/analyzer'], JSON.stringify(record.module_tree)).toBeUndefined();
      expect(timings['./index']).toBeGreaterThanOrEqual(10);
      // (a busy-wait overshoots by whatever preemption hits its last check: 24 ms seen at load 18;
      // its imports' loading would be hundreds of ms, and its own loading is one small file)
      expect(timings['./index'], JSON.stringify(record.module_tree)).toBeLessThan(50);
      const index = record.module_tree.children.find((c: any) => c.name === './index');
      const barrelNode = record.module_tree.children.find((c: any) => c.name === 'barrel-fns');
      expect(index.loading_ms, JSON.stringify(index)).toBeLessThan(0.1 * barrelNode.loading_ms);
      // the barrel: hundreds of files, almost all of it loading, and much of the module-load time
      const barrel = record.module_tree.children.find((c: any) => c.name === 'barrel-fns');
      expect(barrel.self_ms).toBe(timings['barrel-fns']);
      expect(barrel.loading_ms).toBeGreaterThan(0.9 * barrel.self_ms);
      expect(barrel.self_ms).toBeGreaterThan(30);
      const sum = Object.values(timings).reduce((a, b) => a + b, 0);
      expect(barrel.self_ms).toBeGreaterThan(0.3 * sum);
      // a CommonJS package imported from ESM: its loading (format check, export scan) and its
      // evaluation (require()'s loader, then its 4,000 exports copied) are both its own
      const cjs = record.module_tree.children.find((c: any) => c.name === 'cjs-exports');
      expect(cjs, JSON.stringify(record.module_tree)).toBeDefined();
      expect(cjs.loading_ms).toBeGreaterThan(2);
      expect(cjs.evaluation_ms).toBeGreaterThan(2);
      // the two packages are the bulk of the module-load time (Node.js 22's export scan, in
      // JavaScript, makes cjs-exports nearly as costly as the barrel there)
      expect(barrel.self_ms + cjs.self_ms).toBeGreaterThan(0.75 * sum);
      // and it all fits in the init Lambda would report
      expect(sum + record.sdk_overhead_ms).toBeLessThan(emulator.initDurationMs);
    } finally {
      await emulator.shutdown().catch(() => undefined);
      emulator.destroy?.();
    }
  }, 120_000);
});
