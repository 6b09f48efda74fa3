// The SDK as users install it: its packed tarball (`npm pack`) unpacked into the function's
// node_modules/@coldstart/analyzer, or into a layer's nodejs/node_modules (found through NODE_PATH,
// as Lambda's /opt/nodejs/node_modules is). However it is installed, the start is classified the
// same way: the SDK's own code loaded at the first invocation (its invocation half) is not init, so
// an environment initialized ahead of its first invocation is `proactive` with the init it really
// had, and the SDK is never a package of the function's init.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { APP, runFixture, SDK_ROOT, startCollector, waitFor, type Collector } from '../harness/helpers';
import { expectValidRecord } from '../harness/record';

const dir = mkdtempSync(join(tmpdir(), 'coldstart-installed-'));
const app = join(dir, 'app');
const layer = join(dir, 'opt', 'nodejs', 'node_modules');
let collector: Collector;

function unpack(tarball: string, into: string): void {
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', into, '--strip-components=1']);
}

beforeAll(async () => {
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: SDK_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = join(dir, readdirSync(dir).find((name) => name.endsWith('.tgz'))!);
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  for (const file of ['async.js', 'awaits.js']) cpSync(join(APP, file), join(app, file));
  cpSync(join(APP, 'node_modules', 'alpha'), join(app, 'node_modules', 'alpha'), { recursive: true });
  // the function's own copy, and a second function root whose SDK comes only from the layer
  unpack(tarball, join(app, 'node_modules', '@coldstart', 'analyzer'));
  unpack(tarball, join(layer, '@coldstart', 'analyzer'));
  const layered = join(dir, 'layered');
  mkdirSync(join(layered, 'node_modules'), { recursive: true });
  cpSync(join(APP, 'async.js'), join(layered, 'async.js'));
  cpSync(join(APP, 'node_modules', 'alpha'), join(layered, 'node_modules', 'alpha'), { recursive: true });
  collector = await startCollector();
}, 120_000);

afterAll(async () => {
  await collector.close();
  rmSync(dir, { recursive: true, force: true });
});

const GAP_MS = 11_000; // Lambda initialized the environment ahead of time: > 10 s idle before the first invocation

const cases = [
  { name: 'tarball in node_modules, analyze() in code', cwd: () => app, handler: 'async.handler', env: {} },
  { name: 'tarball in node_modules, handler redirect', cwd: () => app, handler: 'awaits.handler', redirect: true, env: {} },
  { name: 'a layer (NODE_PATH), analyze() in code', cwd: () => join(dir, 'layered'), handler: 'async.handler', env: { NODE_PATH: layer } },
];

describe('the SDK installed from its packed tarball', () => {
  test('an environment initialized ahead of its first invocation is proactive with its real init, however installed; a prompt one is cold', async () => {
    const runs = cases.flatMap((c) =>
      [GAP_MS, 0].map(async (gapMs) => {
        const name = `installed-${gapMs}-${c.name.replace(/\W+/g, '-')}-${Date.now()}`;
        const result = await runFixture({
          handler: c.handler,
          redirect: c.redirect,
          cwd: c.cwd(),
          endpoint: collector.url,
          gapMs,
          env: { ...c.env, LAMBDA_TASK_ROOT: c.cwd(), AWS_LAMBDA_FUNCTION_NAME: name },
        });
        return { c, gapMs, name, result };
      }),
    );
    for (const { c, gapMs, name, result } of await Promise.all(runs)) {
      expect(result.code, `${c.name}: ${result.stderr}`).toBe(0);
      await waitFor(() => collector.records().some((r) => r.function_name === name));
      const cold = collector.records().filter((r) => r.function_name === name);
      expect(cold, c.name).toHaveLength(1);
      const record = cold[0];
      expectValidRecord(record);
      expect(record.start_kind, `${c.name}, gap ${gapMs}`).toBe(gapMs > 0 ? 'proactive' : 'cold');
      // init is what the process did before the idle wait: well under the gap
      expect(record.init_duration_ms, `${c.name}, gap ${gapMs}`).toBeLessThan(5000);
      // the SDK is overhead, never a package of the function's init
      expect(Object.keys(record.module_timings), c.name).not.toContain('@coldstart/analyzer');
      expect(record.module_timings.alpha, c.name).toBeGreaterThan(0);
    }
  }, 60_000);
});
