'use strict';
// SDK's own load: a fresh process requires the SDK (or its preload) and prints the wall time,
// split into resolving the package name and loading the resolved file.
// Usage: node sdk-load.cjs <module>   e.g. @coldstart/analyzer or @coldstart/analyzer/register
if (process.env.BENCH_PRIORITY === '1') {
  try {
    require('node:fs').writeFileSync('/proc/self/autogroup', '-10');
  } catch {}
}
performance.now();
// The module system's one-time set-up (paid by whatever is required first; in Lambda by the
// runtime's own modules) is not the SDK's: a tiny module is required first.
require('./app/trivial.js');
const started = process.hrtime.bigint();
const resolved = require.resolve(process.argv[2]);
const resolvedAt = process.hrtime.bigint();
require(resolved);
const ended = process.hrtime.bigint();
process.stdout.write(
  JSON.stringify({
    ms: Number(ended - started) / 1e6,
    resolveMs: Number(resolvedAt - started) / 1e6,
    loadMs: Number(ended - resolvedAt) / 1e6,
  }) + '\n',
);
