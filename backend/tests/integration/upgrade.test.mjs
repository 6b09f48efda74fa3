// An upgrade with data: a database at migration 006 whose cold starts the day sketches have
// folded, then `coldstartd migrate` with every migration and `coldstartd maintain` (the fold). 007 backfills the package rollups from
// the folded cold starts; 008 empties the day sketches and queues every cold start again, so that
// the fold rebuilds days, hours and package rollups together: each cold start must be counted
// once in every one of them, not once by 007's backfill and again by the fold. 011 (per-function
// package rollups) empties them all again and queues every cold start once more: still once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  REPO,
  createDatabase,
  createProjectKeys,
  dropDatabase,
  http,
  psql,
  psqlInt,
  psqlRows,
  runCli,
  startServer,
  uid,
} from './harness.mjs';

const HOUR = 3600000;
const dirs = [];
const dbs = [];
after(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const db of dbs) await dropDatabase(db.name);
});

test('upgrading a database with folded cold starts through 007, 008 and 011 counts each cold start once', async () => {
  const all = path.join(REPO, 'backend', 'migrations');
  const upTo006 = mkdtempSync(path.join(tmpdir(), 'csa-migrations-'));
  dirs.push(upTo006);
  for (const f of readdirSync(all).filter((f) => /^00[1-6]_.*\.sql$/.test(f))) copyFileSync(path.join(all, f), path.join(upTo006, f));
  const db = await createDatabase();
  dbs.push(db);
  const old = { MIGRATIONS_DIR: upTo006 };
  const migrated = await runCli(['migrate'], { env: { DATABASE_URL: db.url, ...old } });
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.equal(await psqlInt(db.url, 'SELECT count(*) FROM schema_migrations'), 6, 'the database is at 006');

  // cold starts ingested by the server (its ingest needs nothing past 006)
  const keys = await createProjectKeys(db.url, 'Upgrade', 'up-' + uid('p').slice(-6));
  const server = await startServer({ dbUrl: db.url, env: old });
  const fn = 'upgrade-fn';
  const now = Date.now();
  const records = Array.from({ length: 12 }, (_, i) => ({
    function_name: fn,
    invocation_id: uid(),
    timestamp: new Date(now - 3 * 24 * HOUR + i * 5 * HOUR).toISOString(),
    cold_start: true,
    start_kind: 'cold',
    init_duration_ms: 300 + i,
    execution_duration_ms: 20,
    memory_allocated_mb: 512,
    module_timings: { 'aws-sdk': 100 + i, lodash: 5 + i / 10 },
  }));
  try {
    const res = await http(server.base, 'POST', '/api/v1/ingest/batch', {
      body: { invocations: records },
      headers: { 'X-API-Key': keys.ingest },
    });
    assert.equal(res.status, 200, res.text);
  } finally {
    await server.stop();
  }
  assert.equal(await psqlInt(db.url, 'SELECT count(*) FROM function_day_sketch_pending'), 12, 'queued for the fold');
  // what a 006-era fold leaves: the queue taken (the figures themselves are rebuilt by 008)
  await psql(db.url, 'DELETE FROM function_day_sketch_pending');

  const upgraded = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
  assert.equal(upgraded.code, 0, upgraded.stderr);
  assert.ok((await psqlInt(db.url, 'SELECT count(*) FROM schema_migrations')) >= 8, 'migrated past 008');
  const folded = await runCli(['maintain'], { env: { DATABASE_URL: db.url } });
  assert.equal(folded.code, 0, folded.stderr);
  assert.equal(await psqlInt(db.url, 'SELECT count(*) FROM function_day_sketch_pending'), 0, 'the queue folded');

  // the per-function hourly rows are kept from the UTC day two days before today on (migrations/011)
  const recent = records.filter((r) => Date.parse(r.timestamp) >= Math.floor(Date.now() / (24 * HOUR)) * 24 * HOUR - 48 * HOUR).length;
  assert.ok(recent > 0 && recent < 12);
  for (const table of ['package_hourly', 'package_daily', 'function_package_hourly', 'function_package_daily']) {
    const n = table === 'function_package_hourly' ? recent : 12;
    const rows = await psqlRows(
      db.url,
      `SELECT package, sum(cold_starts)::int AS n, sum((SELECT sum(c) FROM unnest(counts) c))::int AS buckets FROM ${table} GROUP BY 1 ORDER BY 1`,
    );
    assert.deepEqual(
      rows.map((r) => [r.package, Number(r.n), Number(r.buckets)]),
      [
        ['aws-sdk', n, n],
        ['lodash', n, n],
      ],
      `${table}: every cold start once`,
    );
  }
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_day_sketches'), 12, 'day sketches: each once');
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_hour_sketches'), 12, 'hour sketches: each once');
});
