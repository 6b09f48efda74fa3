// Test plumbing shared by the dashboard and deployment suites: a scratch database in the
// PostgreSQL named by CSA_TEST_DATABASE_URL, psql through child_process, a real coldstartd.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export function withDatabase(url, db, user, password) {
  const u = new URL(url);
  u.pathname = '/' + db;
  if (user !== undefined) { u.username = encodeURIComponent(user); u.password = encodeURIComponent(password); }
  return u.toString();
}

// Runs SQL through psql; returns stdout, throws with psql's message on failure.
export function psql(url, sql, { env = {}, file, args = [] } = {}) {
  const a = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', url, ...args];
  if (file) a.push('-f', file); else a.push('-c', sql);
  const r = spawnSync('psql', a, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const err = new Error(`psql failed: ${(r.stderr || '').trim()}`);
    err.stderr = r.stderr;
    throw err;
  }
  return r.stdout;
}

// Rows of a query as objects, in order, with JSON types (numeric and float8 become numbers).
export function queryRows(url, sql) {
  const out = psql(url, `SELECT coalesce(json_agg(q), '[]') FROM (${sql}\n) AS q`);
  return JSON.parse(out);
}

// Column names and types of a query, in order, even when it returns no rows (psql's \gdesc:
// PostgreSQL describes the statement without running it).
export function describeQuery(url, sql) {
  const r = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', url],
    { input: `${sql}\n\\gdesc\n`, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql \\gdesc failed: ${(r.stderr || '').trim()}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => { const [name, type] = l.split('\t'); return { name, type }; });
}

export function scratchDatabase(adminUrl, prefix) {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${name}`);
  return { name, url: withDatabase(adminUrl, name), drop: () => psql(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

// Starts `coldstartd serve` on a free loopback port and waits for /api/v1/health.
export async function startServer(bin, env) {
  const port = await freePort();
  const child = spawn(bin, ['serve'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', LOG_REQUESTS: 'false', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; if (log.length > 20000) log = log.slice(-20000); });
  process.once('exit', () => { if (child.exitCode === null) child.kill('SIGKILL'); }); // never outlive the suite
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`coldstartd exited with ${child.exitCode}: ${log}`);
    try {
      const r = await fetch(base + '/api/v1/health');
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (Date.now() >= deadline) { child.kill('SIGKILL'); throw new Error(`coldstartd did not become healthy: ${log}`); }
  return {
    port, base, child, log: () => log,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}

// `coldstartd <args>` once; returns stdout.
export function runServerCommand(bin, args, env) {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'warn', ...env } });
  if (r.status !== 0) throw new Error(`coldstartd ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export function serverEnv(root, databaseUrl) {
  return {
    DATABASE_URL: databaseUrl,
    MIGRATIONS_DIR: join(root, 'backend', 'migrations'),
    RULES_FILE: join(root, 'rules', 'recommendations.json'),
  };
}

// Runs many queries in one psql session (a connection costs more than these queries do).
// Returns [{columns: [{name, type}], rows: [...]}] in order. `setup` runs first (e.g. SET ...).
// When a query fails, throws an error naming its index and carrying PostgreSQL's message.
export function batchQueries(url, sqls, { setup = '', explain = false } = {}) {
  const parts = ['\\set ON_ERROR_STOP on', setup];
  sqls.forEach((sql, i) => {
    parts.push(`\\echo @@Q ${i}`);
    if (explain) {
      parts.push(`EXPLAIN (FORMAT JSON) ${sql}\n;`);
    } else {
      parts.push('\\echo @@COLS', `${sql}\n\\gdesc`, '\\echo @@ROWS', `SELECT coalesce(json_agg(q), '[]') FROM (${sql}\n) AS q;`);
    }
  });
  parts.push('\\echo @@DONE');
  const r = spawnSync('psql', ['-X', '-q', '-At', '-F', '\t', url], { input: parts.join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 << 20 });
  const lines = r.stdout.split('\n');
  const results = [];
  let cur = null, section = null, done = false;
  for (const line of lines) {
    if (line.startsWith('@@Q ')) { cur = { index: Number(line.slice(4)), columns: [], text: [] }; results.push(cur); section = explain ? 'rows' : null; continue; }
    if (line === '@@COLS') { section = 'cols'; continue; }
    if (line === '@@ROWS') { section = 'rows'; continue; }
    if (line === '@@DONE') { done = true; break; }
    if (!cur || line === '') continue;
    if (section === 'cols') { const [name, type] = line.split('\t'); cur.columns.push({ name, type }); }
    if (section === 'rows') cur.text.push(line);
  }
  if (r.status !== 0 || !done) {
    const failed = results.length ? results[results.length - 1].index : -1;
    const err = new Error(`query ${failed} failed: ${(r.stderr || '').trim()}`);
    err.index = failed;
    throw err;
  }
  return results.map((x) => (explain ? { plan: JSON.parse(x.text.join('\n')) } : { columns: x.columns, rows: JSON.parse(x.text.join('\n')) }));
}
