// One fresh-process measurement: loads a handler module the way Lambda's runtime does and prints
// {loadMs, readyMs, modules} as JSON. loadMs: the module load alone; readyMs: from process start
// (performance.timeOrigin) to the handler being ready, i.e. what the init phase costs.
// Usage: node load.mjs <file relative to app/ or absolute>
import { createRequire } from 'node:module';
import { isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
function raisePriority() {
  // run.mjs starts each measurement in its own session: give its scheduler group more weight
  if (process.env.BENCH_PRIORITY !== '1') return;
  try {
    require('node:fs').writeFileSync('/proc/self/autogroup', '-10');
  } catch {}
}
const target = process.argv[2];
const file = isAbsolute(target) ? target : join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'app', target);
raisePriority();
performance.now();
const started = process.hrtime.bigint();
const loaded = file.endsWith('.mjs') ? await import(pathToFileURL(file).href) : require(file);
const loadMs = Number(process.hrtime.bigint() - started) / 1e6;
const readyMs = performance.now();
if (typeof loaded.handler !== 'function') throw new Error(`no handler in ${file}`);
// With the SDK loaded, its own account of its cost: set-up and recorder bookkeeping.
const runtime = globalThis[Symbol.for('coldstart.analyzer.runtime')];
const sdk = runtime
  ? { setupMs: runtime.setupNs / 1e6, hookMs: runtime.recorder.overheadNs / 1e6, timedModules: runtime.recorder.modules }
  : undefined;
process.stdout.write(JSON.stringify({ loadMs, readyMs, modules: Object.keys(require.cache).length, sdk }) + '\n');
