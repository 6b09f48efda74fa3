'use strict';
// SDK's own load: a fresh process requires the SDK (or its preload) and prints the wall time.
// Usage: node sdk-load.cjs <module>   e.g. @coldstart/analyzer or @coldstart/analyzer/register
if (process.env.BENCH_PRIORITY === '1') {
  try {
    require('node:fs').writeFileSync('/proc/self/autogroup', '-10');
  } catch {}
}
performance.now();
const started = process.hrtime.bigint();
require(process.argv[2]);
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(JSON.stringify({ ms }) + '\n');
