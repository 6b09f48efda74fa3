// Preload: node --import @coldstart/analyzer/register (e.g. in NODE_OPTIONS).
// The SDK core is CommonJS (one copy of its state per process); it is required, not imported,
// so that the clock below starts before it loads.
import { createRequire } from 'node:module';

const start = process.hrtime.bigint();
createRequire(import.meta.url)('../dist/index.cjs').__preload(start);
