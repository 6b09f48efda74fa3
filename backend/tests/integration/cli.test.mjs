// The command line: migrate (twice, concurrently), create-project, create-key, revoke-key,
// version, --help, and start-up refusing bad settings with one line naming them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  runCli,
  createDatabase,
  createMigratedDatabase,
  dropDatabase,
  psql,
  psqlRows,
  psqlInt,
  lit,
  lines,
  cliKey,
  createProject,
  startServer,
  freePort,
  KEY_RE,
  ADMIN_URL,
} from './harness.mjs';

const dbs = [];
after(async () => {
  for (const db of dbs) await dropDatabase(db.name);
});
async function freshDb(migrated = false) {
  const db = migrated ? await createMigratedDatabase() : await createDatabase();
  dbs.push(db);
  return db;
}
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const TABLES = ['api_keys', 'functions', 'invocations', 'projects', 'schema_migrations'];
// The five tables every schema version has (partitions of invocations may come with them).
const tablesOf = async (url) => {
  const all = (await psql(url, `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`)).split(
    ',',
  );
  return all.filter((t) => TABLES.includes(t));
};

test('version prints 1.0.0 and exits 0', async () => {
  const r = await runCli(['version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1\.0\.0/);
});

test('--help lists the subcommands and exits 0', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const cmd of ['serve', 'migrate', 'create-project', 'create-key', 'revoke-key', 'version']) {
    assert.ok(r.stdout.includes(cmd), `--help does not mention ${cmd}:\n${r.stdout}`);
  }
});

test('an unknown subcommand fails with a message', async () => {
  const r = await runCli(['frobnicate']);
  assert.notEqual(r.code, 0);
  assert.ok((r.stderr + r.stdout).includes('frobnicate'), `the message should name the unknown command: ${r.stderr}`);
});

test('migrate creates the schema and records each migration once; a second run changes nothing', async () => {
  const db = await freshDb();
  const first = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(await tablesOf(db.url), TABLES);
  const before = await psqlRows(db.url, 'SELECT version, applied_at FROM schema_migrations ORDER BY version');
  assert.ok(before.length >= 1);
  assert.ok(
    before.some((m) => m.version.startsWith('001')),
    JSON.stringify(before),
  );
  assert.ok(
    before.every((m) => m.applied_at),
    'applied_at is set',
  );
  const second = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
  assert.equal(second.code, 0, second.stderr);
  const afterRows = await psqlRows(db.url, 'SELECT version, applied_at FROM schema_migrations ORDER BY version');
  assert.deepEqual(afterRows, before, 'a second migrate must not re-apply or re-record');
});

test('three concurrent migrate runs all succeed and apply each migration once', async () => {
  const db = await freshDb();
  const runs = await Promise.all([1, 2, 3].map(() => runCli(['migrate'], { env: { DATABASE_URL: db.url } })));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await tablesOf(db.url), TABLES);
  const dup = await psqlInt(db.url, 'SELECT count(*) - count(DISTINCT version) FROM schema_migrations');
  assert.equal(dup, 0);
});

test('create-project stores the project, an admin key and an ingest key (hashed), printing the ingest key last', async () => {
  const db = await freshDb(true);
  const r = await runCli(['create-project', '--name', 'Acme Payments', '--slug', 'acme'], { env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  const key = out[out.length - 1].trim();
  assert.match(key, KEY_RE);
  const adminLine = out.findIndex((l) => l.startsWith('Admin key'));
  const ingestLine = out.findIndex((l) => l.startsWith('Ingest key'));
  assert.ok(adminLine > 0 && ingestLine > adminLine, `labelled keys:\n${r.stdout}`);
  const admin = out.slice(adminLine + 1).find((l) => KEY_RE.test(l));
  assert.match(out[adminLine], /scopes ingest, read, admin/);
  assert.match(out[ingestLine], /scope ingest\b/);
  const rows = await psqlRows(
    db.url,
    `SELECT p.name, p.slug, k.name AS key_name, k.scopes, k.key_hash, k.key_prefix, k.is_active FROM projects p JOIN api_keys k ON k.project_id = p.id ORDER BY k.name`,
  );
  assert.deepEqual(rows, [
    {
      name: 'Acme Payments',
      slug: 'acme',
      key_name: 'admin',
      scopes: ['ingest', 'read', 'admin'],
      key_hash: sha256(admin),
      key_prefix: admin.slice(0, 8),
      is_active: true,
    },
    {
      name: 'Acme Payments',
      slug: 'acme',
      key_name: 'ingest',
      scopes: ['ingest'],
      key_hash: sha256(key),
      key_prefix: key.slice(0, 8),
      is_active: true,
    },
  ]);
  assert.ok(!r.stderr.includes(key) && !r.stderr.includes(admin), 'the keys must not be logged on stderr');

  const dupe = await runCli(['create-project', '--name', 'Other', '--slug', 'acme'], { env: { DATABASE_URL: db.url } });
  assert.notEqual(dupe.code, 0, 'a duplicate slug must fail');
  assert.equal(await psqlInt(db.url, 'SELECT count(*) FROM projects'), 1);

  const noName = await runCli(['create-project', '--slug', 'nameless'], { env: { DATABASE_URL: db.url } });
  assert.notEqual(noName.code, 0, 'create-project without --name must fail');
  assert.equal(await psqlInt(db.url, 'SELECT count(*) FROM projects'), 1);
});

test('create-project without --slug derives one from the name', async () => {
  const db = await freshDb(true);
  const key = await createProject(db.url, 'Derived Slug Co');
  const slug = await psql(db.url, `SELECT slug FROM projects`);
  assert.ok(slug.length > 0);
  assert.match(slug, /^[a-z0-9-]+$/, `derived slug ${slug}`);
  assert.equal(await psql(db.url, `SELECT key_prefix FROM api_keys WHERE name = 'admin'`), key.slice(0, 8));
});

test('create-key adds a named key to a project; revoke-key deactivates only that prefix', async () => {
  const db = await freshDb(true);
  const k1 = await createProject(db.url, 'Keys', 'keys');
  const k2 = await cliKey(['create-key', '--project', 'keys', '--name', 'ci'], db.url);
  assert.notEqual(k1, k2);
  const rows = await psqlRows(db.url, `SELECT key_prefix, key_hash, name, scopes, is_active FROM api_keys ORDER BY created_at`);
  assert.equal(rows.length, 3);
  const r2 = rows.find((r) => r.key_hash === sha256(k2));
  assert.ok(r2, 'second key stored by hash');
  assert.equal(r2.name, 'ci');
  assert.deepEqual(r2.scopes, ['ingest'], 'create-key makes an ingest key unless told otherwise');
  assert.equal(r2.key_prefix, k2.slice(0, 8));
  const k3 = await cliKey(['create-key', '--project', 'keys', '--scopes', 'read,admin'], db.url);
  assert.deepEqual(await psql(db.url, `SELECT scopes::text FROM api_keys WHERE key_hash = ${lit(sha256(k3))}`), '{read,admin}');
  const badScope = await runCli(['create-key', '--project', 'keys', '--scopes', 'read,root'], { env: { DATABASE_URL: db.url } });
  assert.equal(badScope.code, 2, 'an unknown scope is a usage error');

  const unknown = await runCli(['create-key', '--project', 'no-such-project'], { env: { DATABASE_URL: db.url } });
  assert.notEqual(unknown.code, 0, 'create-key for an unknown project must fail');

  const rv = await runCli(['revoke-key', '--prefix', k2.slice(0, 8)], { env: { DATABASE_URL: db.url } });
  assert.equal(rv.code, 0, rv.stderr);
  const active = await psqlRows(db.url, `SELECT key_hash, is_active FROM api_keys`);
  assert.equal(active.find((r) => r.key_hash === sha256(k2)).is_active, false);
  assert.equal(active.find((r) => r.key_hash === sha256(k1)).is_active, true);
});

test('DATABASE_URL accepts postgresql://, postgres:// and postgresql+asyncpg://', async () => {
  const db = await freshDb();
  const tail = db.url.replace(/^postgresql:\/\//, '');
  for (const scheme of ['postgresql+asyncpg://', 'postgres://', 'postgresql://']) {
    const r = await runCli(['migrate'], { env: { DATABASE_URL: scheme + tail } });
    assert.equal(r.code, 0, `${scheme}: ${r.stderr}`);
  }
  assert.deepEqual(await tablesOf(db.url), TABLES);
  const server = await startServer({ dbUrl: 'postgresql+asyncpg://' + tail });
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.describe());
});

// [name, env overrides, setting that the one line must name]
const BAD = [
  ['PORT=abc', { PORT: 'abc' }, 'PORT'],
  ['PORT=70000', { PORT: '70000' }, 'PORT'],
  ['PORT=-1', { PORT: '-1' }, 'PORT'],
  ['WORKERS=0', { WORKERS: '0' }, 'WORKERS'],
  ['WORKERS=many', { WORKERS: 'many' }, 'WORKERS'],
  ['DATABASE_URL=mysql://x', { DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
  ['DATABASE_URL without a scheme', { DATABASE_URL: 'localhost:5432/coldstart' }, 'DATABASE_URL'],
  ['LOG_LEVEL=verbose', { LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
  ['REQUEST_TIMEOUT=soon', { REQUEST_TIMEOUT: 'soon' }, 'REQUEST_TIMEOUT'],
  ['REQUEST_TIMEOUT=0', { REQUEST_TIMEOUT: '0' }, 'REQUEST_TIMEOUT'],
  ['MAX_CONNECTIONS=-5', { MAX_CONNECTIONS: '-5' }, 'MAX_CONNECTIONS'],
  ['KEY_CACHE_TTL=x', { KEY_CACHE_TTL: 'x' }, 'KEY_CACHE_TTL'],
  ['DATABASE_POOL_SIZE=0', { DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE'],
  ['PORT=80x', { PORT: '80x' }, 'PORT'],
];

for (const [name, env, setting] of BAD) {
  test(`serve with ${name} exits 2 with one stderr line naming ${setting}`, async () => {
    const port = await freePort();
    const r = await runCli(['serve'], {
      env: { DATABASE_URL: ADMIN_URL, HOST: '127.0.0.1', PORT: port, WORKERS: 2, LOG_LEVEL: 'info', ...env },
      timeoutMs: 15000,
    });
    assert.equal(r.signal, null, `serve with ${name} was still running after 15 s`);
    assert.equal(r.code, 2, `exit code with ${name}; stderr: ${r.stderr}`);
    const errLines = lines(r.stderr);
    assert.equal(errLines.length, 1, `expected exactly one stderr line, got:\n${r.stderr}`);
    assert.ok(errLines[0].includes(setting), `the line does not name ${setting}: ${errLines[0]}`);
  });
}

test('a bad DATABASE_URL error does not echo its password', async () => {
  const r = await runCli(['serve'], {
    env: { DATABASE_URL: 'mysql://app:Sup3rSecretPw@db.example:3306/x', PORT: await freePort() },
    timeoutMs: 15000,
  });
  assert.equal(r.code, 2, r.stderr);
  assert.ok(!r.stderr.includes('Sup3rSecretPw'), `password echoed: ${r.stderr}`);
  assert.ok(r.stderr.includes('DATABASE_URL'));
});

test('migrate with an unreachable database fails non-zero, quickly enough', async () => {
  const port = await freePort();
  const u = new URL(ADMIN_URL);
  u.port = String(port);
  const r = await runCli(['migrate'], { env: { DATABASE_URL: u.toString() }, timeoutMs: 60000 });
  assert.equal(r.signal, null, 'migrate hung on an unreachable database');
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.trim().length > 0, 'no error message');
  assert.ok(!r.stderr.includes(u.password) || u.password === '', 'the password is echoed');
});
