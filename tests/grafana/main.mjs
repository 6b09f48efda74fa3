// Entry point of tests/grafana/run.sh: registers every test file, runs them, exits non-zero on
// a failure. The database suite needs CSA_TEST_DATABASE_URL and COLDSTARTD.
import { runAll } from './lib/harness.mjs';

await import('./macros.test.mjs');
await import('./static.test.mjs');
await import('./queries.test.mjs');
const failed = await runAll();
process.exit(failed ? 1 : 0);
