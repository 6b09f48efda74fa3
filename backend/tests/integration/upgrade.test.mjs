// An upgrade with data: a database at migration 006 whose cold starts the day sketches have
// folded, then `coldstartd migrate` with every migration and `coldstartd maintain` (the fold). 007 backfills the package rollups from
// the folded cold starts; 008 empties the day sketches and queues every cold start again, so that
// the fold rebuilds days, hours and package rollups together: each cold start must be counted
// once in every one of them, not once by 007's backfill and again by the fold. And a database at
// 009: 010 counts the folded cold starts into function_init_hourly (013 into its 6-hour blocks) and
// 011 into the per-function package rollups, the fold the queued ones.
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

// A new database migrated up to migration `last` (a copy of the first migrations, MIGRATIONS_DIR),
// with `count` cold starts of one function ingested by the server (its ingest needs nothing past
// 006), five hours apart from three days ago.
async function databaseAt(last, count) {
  const all = path.join(REPO, 'backend', 'migrations');
  const dir = mkdtempSync(path.join(tmpdir(), 'csa-migrations-'));
  dirs.push(dir);
  for (const f of readdirSync(all).filter((f) => /^\d{3}_.*\.sql$/.test(f) && Number(f.slice(0, 3)) <= last))
    copyFileSync(path.join(all, f), path.join(dir, f));
  const db = await createDatabase();
  dbs.push(db);
  const old = { MIGRATIONS_DIR: dir };
  const migrated = await runCli(['migrate'], { env: { DATABASE_URL: db.url, ...old } });
  assert.equal(migrated.code, 0, migrated.stderr);
  assert.equal(await psqlInt(db.url, 'SELECT count(*) FROM schema_migrations'), last, `the database is at ${last}`);

  const keys = await createProjectKeys(db.url, 'Upgrade', 'up-' + uid('p').slice(-6));
  const server = await startServer({ dbUrl: db.url, env: old });
  const fn = 'upgrade-fn';
  const now = Date.now();
  const records = Array.from({ length: count }, (_, i) => ({
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
  return db;
}

test('upgrading a database with folded cold starts through 007, 008, 010, 011 and 012 counts each cold start once', async () => {
  const db = await databaseAt(6, 12);
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
  const recent = await psqlInt(
    db.url,
    `SELECT count(*) FROM invocations WHERE "timestamp" >= date_bin('1 day', now(), '2000-01-01+00') - interval '2 days'`,
  );
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
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_init_hourly'), 12, 'SQL-readable hours: each once');
  // the execution-time rollups (012): the rows stored before it, counted by its backfill, once,
  // in the function's rows and in the project's total rows, by hour and by day
  const exec = await psqlRows(
    db.url,
    `SELECT grain, function_id = '00000000-0000-0000-0000-000000000000' AS total, start_class, sum(invocations)::int AS n,
            sum(timed)::int AS timed, sum(sum_ms)::int AS ms, sum((SELECT sum(c) FROM unnest(counts) c))::int AS buckets
     FROM (SELECT 'hour' AS grain, * FROM function_exec_hourly UNION ALL
           SELECT 'day', project_id, function_id, day::timestamptz, start_class, invocations, timed, sum_ms, min_ms, max_ms, keys, counts
           FROM function_exec_daily) x
     GROUP BY 1, 2, 3 ORDER BY 1, 2`,
  );
  assert.deepEqual(
    exec.map((r) => [r.grain, r.total, r.start_class, r.n, r.timed, r.ms, r.buckets]),
    [
      ['day', false, 'cold', 12, 12, 240, 12],
      ['day', true, 'cold', 12, 12, 240, 12],
      ['hour', false, 'cold', 12, 12, 240, 12],
      ['hour', true, 'cold', 12, 12, 240, 12],
    ],
    'execution-time rollups: every row once',
  );
});

test('upgrading a database at 009 fills function_init_hourly and the per-function package rollups from the folded cold starts, once', async () => {
  const db = await databaseAt(9, 10);
  // what a 009-era fold leaves: 8 of the 10 taken off the queue, 2 still queued
  await psql(
    db.url,
    'DELETE FROM function_day_sketch_pending WHERE id IN (SELECT id FROM function_day_sketch_pending ORDER BY "timestamp" LIMIT 8)',
  );
  const upgraded = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
  assert.equal(upgraded.code, 0, upgraded.stderr);
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_init_hourly'), 8, 'the folded ones, by the migration');
  assert.equal(await psqlInt(db.url, 'SELECT sum(init_n) FROM function_init_hourly'), 8);
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_init_6h'), 8, 'and in 6-hour blocks (013)');
  // the per-function package rollups (011): the same 8 counted by the migration, per package
  const perPackage = () =>
    psqlRows(
      db.url,
      `SELECT package, sum(cold_starts)::int AS n, sum((SELECT sum(c) FROM unnest(counts) c))::int AS buckets
       FROM function_package_daily GROUP BY 1 ORDER BY 1`,
    ).then((rows) => rows.map((r) => [r.package, Number(r.n), Number(r.buckets)]));
  assert.deepEqual(await perPackage(), [
    ['aws-sdk', 8, 8],
    ['lodash', 8, 8],
  ]);
  const folded = await runCli(['maintain'], { env: { DATABASE_URL: db.url } });
  assert.equal(folded.code, 0, folded.stderr);
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_init_hourly'), 10, 'and the queued ones by the fold');
  assert.equal(await psqlInt(db.url, 'SELECT sum(cold_starts) FROM function_init_6h'), 10, 'in the 6-hour blocks too');
  assert.deepEqual(
    await perPackage(),
    [
      ['aws-sdk', 10, 10],
      ['lodash', 10, 10],
    ],
    'function_package_daily: the queued ones by the fold',
  );
  // the init durations 300..309 ms, each in its bucket once
  const [sum] = await psqlRows(
    db.url,
    `SELECT sum(init_sum)::int AS s, min(init_min)::int AS mn, max(init_max)::int AS mx,
    sum((SELECT sum(c) FROM unnest(init_counts) c))::int AS n FROM function_init_hourly`,
  );
  assert.deepEqual([Number(sum.s), Number(sum.mn), Number(sum.mx), Number(sum.n)], [3045, 300, 309, 10]);
  // the 6-hour blocks (013) hold the same hours, summed and merged
  const blocks = await psqlRows(
    db.url,
    `SELECT count(*) FILTER (WHERE (b.init_keys, b.init_counts, b.init_sum, b.cold_starts)
              IS DISTINCT FROM (kk.keys, kk.counts, e.s, e.n))::int AS differ, count(*)::int AS n
     FROM function_init_6h b
     CROSS JOIN LATERAL (SELECT sum(h.init_sum) AS s, sum(h.cold_starts)::bigint AS n FROM function_init_hourly h
       WHERE h.function_id = b.function_id AND h.deployment = b.deployment AND csa_hour6(h.hour) = b.hour) e
     CROSS JOIN LATERAL (SELECT coalesce(array_agg(k ORDER BY k), '{}') AS keys, coalesce(array_agg(c ORDER BY k), '{}') AS counts
       FROM (SELECT u.k, sum(u.c)::bigint AS c FROM function_init_hourly h, unnest(h.init_keys, h.init_counts) u(k, c)
             WHERE h.function_id = b.function_id AND h.deployment = b.deployment AND csa_hour6(h.hour) = b.hour
             GROUP BY u.k) m) kk`,
  );
  assert.ok(blocks[0].n >= 1);
  assert.equal(blocks[0].differ, 0, 'every 6-hour block is the sum of its hours');
});
