// A small stand-in for Lambda's Node.js runtime: loads the handler named by _HANDLER from
// LAMBDA_TASK_ROOT the way the runtime does (.js, .mjs, .cjs; require, else import), then invokes
// it with an event and a context. Reports on stdout, one JSON object per line.
//
// Settings (environment):
//   RUNNER_INVOCATIONS   number of invocations (default 1)
//   RUNNER_TIMEOUT_MS    function timeout; when it passes, the process is killed like Lambda does
//   RUNNER_GAP_MS        pause between invocations (default 0)
//   RUNNER_EVENT         JSON event (default {})
//   RUNNER_LINGER_MS     after the last invocation, keep the process alive this long (default 0)
//   RUNNER_WARMUP        a module of the app (path relative to LAMBDA_TASK_ROOT) imported before
//                        the handler, outside the measured load, 150 ms before it (the loading
//                        ground truth's warm-up)
import { existsSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const say = (object) => process.stdout.write(JSON.stringify(object) + '\n');
const env = process.env;
const require = createRequire(import.meta.url);

async function loadHandler() {
  const root = env.LAMBDA_TASK_ROOT;
  const spec = env._HANDLER;
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  const base = join(root, spec.slice(0, dot));
  const path = spec.slice(dot + 1).split('.');
  let loaded;
  for (const extension of ['.js', '.mjs', '.cjs']) {
    const file = base + extension;
    if (!existsSync(file)) continue;
    if (extension === '.mjs') loaded = await import(pathToFileURL(file).href);
    else {
      try {
        loaded = require(file);
      } catch (error) {
        if (error.code !== 'ERR_REQUIRE_ESM' && error.code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
        loaded = await import(pathToFileURL(file).href);
      }
    }
    break;
  }
  let handler = loaded;
  for (const key of path) handler = handler?.[key];
  if (typeof handler !== 'function') throw new Error(`handler ${spec} not found`);
  return handler;
}

function invoke(handler, event, context) {
  return new Promise((resolve) => {
    const streaming = handler[Symbol.for('aws.lambda.runtime.handler.streaming')] !== undefined;
    let done = false;
    const finish = (outcome) => {
      if (!done) {
        done = true;
        resolve(outcome);
      }
    };
    const callback = (error, value) =>
      error ? finish({ ok: false, error: String(error?.message ?? error) }) : finish({ ok: true, value });
    try {
      let result;
      if (streaming) {
        const chunks = [];
        const stream = new Writable({
          write(chunk, _encoding, next) {
            chunks.push(Buffer.from(chunk));
            next();
          },
        });
        stream.on('finish', () => finish({ ok: true, value: Buffer.concat(chunks).toString('utf8') }));
        result = handler(event, stream, context);
        if (result && typeof result.then === 'function')
          result.then(
            () => undefined,
            (e) => finish({ ok: false, error: String(e?.message ?? e) }),
          );
        return;
      }
      result = handler(event, context, callback);
      if (result && typeof result.then === 'function') {
        result.then(
          (value) => finish({ ok: true, value }),
          (error) => finish({ ok: false, error: String(error?.message ?? error) }),
        );
      }
    } catch (error) {
      finish({ ok: false, error: String(error?.message ?? error), sync: true });
    }
  });
}

// Timing runs (RUNNER_PRIORITY=1, started in their own session): raise this process's scheduler
// autogroup and its own priority when allowed, so that a busy shared machine disturbs less.
if (env.RUNNER_PRIORITY === '1') {
  try {
    writeFileSync('/proc/self/autogroup', '-10');
  } catch {}
  try {
    setPriority(-10);
  } catch {}
}

// The runtime's own modules load first (CommonJS and ESM loaders set up, as in Lambda).
// (The fixtures busy-wait on performance.now(): its first use loads perf_hooks, a one-time cost
// of the fixture mechanism, not of the module that happens to be first.)
performance.now();
require('./warmup.cjs');
await import('./warmup.mjs');
if (env.RUNNER_WARMUP) {
  await import(pathToFileURL(join(env.LAMBDA_TASK_ROOT, env.RUNNER_WARMUP)).href);
  // the JIT optimises what the warm-up made hot on background threads: let that finish, so that
  // it does not land in whichever module loads at that moment
  await new Promise((resolve) => setTimeout(resolve, 150));
}

const loadStart = process.hrtime.bigint();
let handler;
try {
  handler = await loadHandler();
} catch (error) {
  say({ type: 'load-error', error: String(error?.stack ?? error) });
  process.exit(2);
}
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
say({ type: 'loaded', loadMs });

const count = Number(env.RUNNER_INVOCATIONS ?? 1);
const timeoutMs = Number(env.RUNNER_TIMEOUT_MS ?? 0);
const gapMs = Number(env.RUNNER_GAP_MS ?? 0);
const event = JSON.parse(env.RUNNER_EVENT ?? '{}');
for (let i = 0; i < count; i++) {
  if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Date.now() + 900_000;
  const context = {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? 'runner-function',
    functionVersion: '$LATEST',
    awsRequestId: `req-${process.pid}-${i}`,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  // Like the runtime's long poll, this keeps the process alive while the handler runs.
  const keepAlive = setInterval(() => {}, 1000);
  const started = process.hrtime.bigint();
  const outcome = await Promise.race([
    invoke(handler, event, context),
    timeoutMs > 0 ? new Promise((r) => setTimeout(() => r({ timeout: true }), timeoutMs)) : new Promise(() => {}),
  ]);
  clearInterval(keepAlive);
  if (outcome.timeout) {
    say({ type: 'timeout', index: i });
    process.kill(process.pid, 'SIGKILL');
  }
  say({ type: 'result', index: i, ms: Number(process.hrtime.bigint() - started) / 1e6, ...outcome });
}
const linger = Number(env.RUNNER_LINGER_MS ?? 0);
if (linger > 0) await new Promise((r) => setTimeout(r, linger));
