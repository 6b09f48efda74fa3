// The real backend for the extension's suite: `coldstartd serve` on a fresh, migrated PostgreSQL
// database with a project and its API key, made with the backend integration tests' harness
// (backend/tests/integration/harness.mjs: `coldstartd migrate`, `coldstartd create-project`).
// Needs CSA_TEST_DATABASE_URL (admin URL of a running PostgreSQL) and COLDSTARTD (the built
// server); run.mjs checks both before importing this module.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
process.env.CSA_MIGRATIONS_DIR ||= path.resolve(here, '../../backend/migrations');
const H = await import('../../backend/tests/integration/harness.mjs');

export const COLUMNS = [
  'invocation_id', 'request_id', 'cold_start', 'init_duration_ms', 'execution_duration_ms', 'billed_duration_ms',
  'memory_used_mb', 'memory_allocated_mb', 'init_type', 'module_timings', 'runtime_version', 'architecture',
  'start_kind', 'sdk_version', 'module_source', '(extract(epoch from i."timestamp") * 1000)::float8 AS timestamp_ms',
];

export class RealBackend {
  /** port: where coldstartd listens (kept across stop/restart so the extension's endpoint stays valid) */
  static async start(port) {
    const b = new RealBackend();
    b.port = port;
    b.db = await H.createMigratedDatabase();
    b.key = await H.createProject(b.db.url, 'Extension tests', 'ext-' + randomBytes(3).toString('hex'));
    await b.restart();
    return b;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts coldstartd (again) on the same port and waits until /api/v1/health answers 200. */
  async restart() {
    this.server = await H.startServer({ dbUrl: this.db.url, env: { PORT: this.port } });
  }

  /** The backend goes down: SIGTERM, the port refuses connections until restart(). */
  async stop() {
    if (!this.server) return;
    const exit = await this.server.stop();
    this.server = null;
    if (exit.code !== 0) throw new Error(`coldstartd exited ${JSON.stringify(exit)}`);
  }

  /** Rows of invocations of one function, oldest first, with the columns the extension fills in. */
  rows(functionName) {
    return H.psqlRows(this.db.url, `SELECT ${COLUMNS.map((c) => (c.startsWith('(') ? c : 'i.' + c)).join(', ')} FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = ${H.lit(functionName)} ORDER BY i."timestamp", i.invocation_id`);
  }

  /** Rows of any query on the run's database (the tests' own columns). */
  query(sql) {
    return H.psqlRows(this.db.url, sql);
  }

  /**
   * Whether this coldstartd takes an incomplete two-phase record ("complete": false, no
   * execution_duration_ms). Until the backend change lands it answers 422.
   */
  async acceptsIncomplete() {
    const res = await H.http(this.url, 'POST', '/api/v1/ingest', {
      headers: { 'X-API-Key': this.key },
      body: { function_name: 'probe-incomplete', invocation_id: 'probe-' + randomBytes(4).toString('hex'), timestamp: new Date().toISOString(), cold_start: true, complete: false },
    });
    return res.status >= 200 && res.status < 300;
  }

  describe() {
    return this.server ? this.server.describe() : 'coldstartd is stopped';
  }

  async close() {
    try {
      await this.stop();
    } finally {
      await H.dropDatabase(this.db.name);
    }
  }
}
