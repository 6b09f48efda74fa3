'use strict';
// Preload: node --require @coldstart/analyzer/register (e.g. in NODE_OPTIONS).
// The clock starts before the SDK itself loads, so its own cost is counted in sdk_overhead_ms.
const start = process.hrtime.bigint();
require('./dist/index.cjs').__preload(start);
