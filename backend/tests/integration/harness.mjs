// harness.mjs: shared set-up for the integration tests (node:test, no npm dependencies).
//
// Each test file gets its own PostgreSQL database (csa_it_<random>) on the server named by
// CSA_TEST_DATABASE_URL, migrated with `coldstartd migrate`, a project and API key made with
// `coldstartd create-project`, and its own `coldstartd serve` on a free loopback port. Every child
// process is tracked and killed when the test process exits, so a failing test leaks nothing.
//
// Environment:
//   CSA_TEST_DATABASE_URL  admin URL of a running PostgreSQL (database postgres or coldstart); required
//   COLDSTARTD             path of the binary (default: backend/build/coldstartd of this repo)
//   CSA_MIGRATIONS_DIR     passed to the server as MIGRATIONS_DIR when set (CTest sets it)
//   CSA_TEST_VERBOSE=1     echo server stderr to this process's stderr

import { spawn, execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import nodeHttp from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');
export const COLDSTARTD = process.env.COLDSTARTD || path.join(REPO, 'backend/build/coldstartd');

const RAW_ADMIN_URL = process.env.CSA_TEST_DATABASE_URL;
if (!RAW_ADMIN_URL) {
  throw new Error(
    'CSA_TEST_DATABASE_URL is not set: the integration tests need the admin URL of a running ' +
      'PostgreSQL, e.g. CSA_TEST_DATABASE_URL=postgresql://postgres:PW@127.0.0.1:55471/postgres ' +
      '(scripts/pg.sh start DIR PORT && scripts/pg.sh url DIR PORT prints one)',
  );
}
if (!existsSync(COLDSTARTD)) {
  throw new Error(`coldstartd binary not found at ${COLDSTARTD} (run make build, or set COLDSTARTD)`);
}

// psql and libpq want postgresql://; the server also accepts +driver forms.
export const ADMIN_URL = RAW_ADMIN_URL.replace(/^postgres(ql)?\+[a-z0-9]+:\/\//i, 'postgresql://');

/** The admin URL with its database name replaced. */
export function databaseUrl(dbName, base = ADMIN_URL) {
  const u = new URL(base);
  u.pathname = '/' + dbName;
  return u.toString();
}

// ---------------------------------------------------------------------------------------------
// Child processes: tracked so that nothing outlives the test process.

const live = new Set();
function killAll() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + (os.constants.signals[sig] || 0));
  });
}

// A scratch directory as the children's working directory, so no .env of the repo is read.
const SCRATCH = mkdtempSync(path.join(os.tmpdir(), 'csa-it-'));
process.on('exit', () => rmSync(SCRATCH, { recursive: true, force: true }));

/** A minimal environment for the server: nothing of the caller's DATABASE_URL, PORT, ... leaks in. */
export function baseEnv(extra = {}) {
  const env = { PATH: process.env.PATH || '/usr/bin:/bin', LANG: 'C.UTF-8' };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'TZ']) {
    if (process.env[k]) env[k] = process.env[k];
  }
  if (process.env.CSA_MIGRATIONS_DIR) env.MIGRATIONS_DIR = process.env.CSA_MIGRATIONS_DIR;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

/**
 * Runs `coldstartd ARGS...` to completion. Resolves {code, signal, stdout, stderr}; never rejects
 * on a non-zero exit (callers assert on it). Killed after timeoutMs.
 */
export function runCli(args, { env = {}, timeoutMs = 60000, binary = COLDSTARTD } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env: baseEnv(env), cwd: SCRATCH, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The non-empty lines of a text. */
export function lines(text) {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** An API key is `csa_` + 32 alphanumerics. */
export const KEY_RE = /^csa_[A-Za-z0-9]{32}$/;

/** Runs a CLI command that prints a new API key on its last stdout line; returns the key. */
export async function cliKey(args, dbUrl) {
  const r = await runCli(args, { env: { DATABASE_URL: dbUrl } });
  assert.equal(r.code, 0, `coldstartd ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const all = lines(r.stdout);
  assert.ok(all.length > 0, `coldstartd ${args.join(' ')} printed nothing on stdout`);
  const key = all[all.length - 1].trim();
  assert.match(key, KEY_RE, `last stdout line of coldstartd ${args.join(' ')} is not an API key`);
  return key;
}

/**
 * `coldstartd create-project`: resolves {admin, ingest}, the two keys it prints, each on the line
 * after its label (the ingest key last).
 */
export async function createProjectKeys(dbUrl, name, slug) {
  const args = ['create-project', '--name', name];
  if (slug) args.push('--slug', slug);
  const r = await runCli(args, { env: { DATABASE_URL: dbUrl } });
  assert.equal(r.code, 0, `coldstartd ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const all = lines(r.stdout);
  const after = (label) => {
    const i = all.findIndex((l) => l.startsWith(label));
    assert.ok(i >= 0, `create-project printed no "${label}" line:\n${r.stdout}`);
    const key = all.slice(i + 1).find((l) => KEY_RE.test(l.trim()));
    assert.ok(key, `no key after "${label}"`);
    return key.trim();
  };
  const keys = { admin: after('Admin key'), ingest: after('Ingest key') };
  assert.equal(all[all.length - 1].trim(), keys.ingest, 'the ingest key is the last line');
  return keys;
}

/** A new project's admin key (scopes ingest, read, admin): what most tests use for everything. */
export async function createProject(dbUrl, name, slug) {
  return (await createProjectKeys(dbUrl, name, slug)).admin;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL through the psql CLI.

/** Runs SQL with psql -tAX and resolves its trimmed stdout; rejects with psql's stderr. */
export function psql(url, sql, { timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      'psql',
      [url, '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-c', sql],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`psql failed: ${stderr || err.message}\nSQL: ${sql}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** Rows of a query as an array of plain objects (via json_agg). */
export async function psqlRows(url, sql) {
  const out = await psql(url, `SELECT coalesce(json_agg(t), '[]'::json) FROM (${sql}) t`);
  return JSON.parse(out);
}

/** One integer from a query such as SELECT count(*) ... */
export async function psqlInt(url, sql) {
  return Number.parseInt(await psql(url, sql), 10);
}

/** SQL string literal. */
export function lit(s) {
  return "'" + String(s).replaceAll("'", "''") + "'";
}

/** Creates a fresh, empty database; returns {name, url}. */
export async function createDatabase() {
  const name = 'csa_it_' + randomBytes(6).toString('hex');
  await psql(ADMIN_URL, `CREATE DATABASE ${name}`);
  return { name, url: databaseUrl(name) };
}

export async function dropDatabase(name) {
  await psql(ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** A fresh database, migrated by `coldstartd migrate`. */
export async function createMigratedDatabase() {
  const db = await createDatabase();
  const r = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
  assert.equal(r.code, 0, `coldstartd migrate exited ${r.code}: ${r.stderr}`);
  return db;
}

// ---------------------------------------------------------------------------------------------
// Ports and HTTP.

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A port on which nothing listens (for an unreachable PostgreSQL). */
export const closedPort = freePort;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * fetch with a deadline. Resolves {status, headers, text, json} (json is null when the body is
 * not JSON).
 */
export async function http(base, method, pathname, { body, headers = {}, timeoutMs = 30000, fresh = false } = {}) {
  if (fresh) return httpFresh(base, method, pathname, { body, headers, timeoutMs });
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array || Buffer.isBuffer(body)) init.body = body;
    else {
      init.body = JSON.stringify(body);
      if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
        init.headers['Content-Type'] = 'application/json';
      }
    }
  }
  let res, text;
  try {
    res = await fetch(base + pathname, init);
    text = await res.text();
  } catch (e) {
    // Name the request and the socket-level cause (ECONNRESET, UND_ERR_SOCKET, ...) in the failure.
    const cause = e.cause || e;
    throw new Error(`${method} ${pathname}: ${e.message}: ${cause.code || cause.name || ''} ${cause.message || ''}`.trim(), { cause });
  }
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * Like http() but on a new connection that is closed afterwards (node:http, no keep-alive pool),
 * for requests that must not race a server closing an idle keep-alive connection (a short
 * REQUEST_TIMEOUT makes the server close idle connections quickly, and POST is never retried).
 */
export function httpFresh(base, method, pathname, { body, headers = {}, timeoutMs = 30000 } = {}) {
  const hdrs = { ...headers, Connection: 'close' };
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof Uint8Array || Buffer.isBuffer(body)) payload = Buffer.from(body);
    else {
      payload = Buffer.from(JSON.stringify(body));
      if (!Object.keys(hdrs).some((h) => h.toLowerCase() === 'content-type')) hdrs['Content-Type'] = 'application/json';
    }
    hdrs['Content-Length'] = payload.length;
  }
  return new Promise((resolve, reject) => {
    const req = nodeHttp.request(base + pathname, { method, headers: hdrs, agent: false, timeout: timeoutMs }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
        resolve({ status: res.statusCode, headers: h, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathname}: no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`${method} ${pathname}: ${e.code || ''} ${e.message}`.trim(), { cause: e })));
    req.end(payload);
  });
}

/**
 * Sends raw bytes on a new TCP connection and collects everything the server sends until it
 * closes the connection (or timeoutMs passes). Resolves {data, closed, error, ms}; `data` is
 * the raw response text.
 */
export function rawRequest(port, chunks, { timeoutMs = 15000, host = '127.0.0.1' } = {}) {
  if (!Array.isArray(chunks)) chunks = [chunks];
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, host);
    const parts = [];
    let error = null;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(parts).toString('latin1'), closed, error, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => parts.push(d));
    sock.on('error', (e) => (error = e));
    sock.on('close', () => finish(true));
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
    });
  });
}

/** Parses the head of a raw HTTP response: {status, headers (lower-case names), body}. */
export function parseRawResponse(data) {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = data.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
  if (!m) return null;
  const headers = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers, body: data.slice(end + 4) };
}

/** Runs fn over items with at most `limit` in flight; resolves the results in order. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------------------------------------
// The server.

export class Server {
  constructor(child, port) {
    this.child = child;
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.stderrLines = []; // raw lines
    this.stdout = '';
    this.exit = null; // {code, signal} once exited
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        live.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (d) => {
      if (process.env.CSA_TEST_VERBOSE) process.stderr.write(d);
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop();
      for (const l of parts) if (l.trim() !== '') this.stderrLines.push(l);
    });
    child.stderr.on('end', () => {
      if (partial.trim() !== '') this.stderrLines.push(partial);
      partial = '';
    });
    child.stdout.setEncoding('utf8').on('data', (d) => (this.stdout += d));
  }

  get pid() {
    return this.child.pid;
  }

  /** stderr lines parsed as JSON; lines that are not JSON objects are returned as {_raw}. */
  get logs() {
    return this.stderrLines.map((l) => {
      try {
        const o = JSON.parse(l);
        return o && typeof o === 'object' ? o : { _raw: l };
      } catch {
        return { _raw: l };
      }
    });
  }

  /** Resolves the first log object matching pred, polling until timeoutMs; null if none. */
  async waitForLog(pred, timeoutMs = 10000) {
    const t0 = Date.now();
    for (;;) {
      const hit = this.logs.find(pred);
      if (hit) return hit;
      if (Date.now() - t0 > timeoutMs) return null;
      await sleep(50);
    }
  }

  request(method, pathname, opts) {
    return http(this.base, method, pathname, opts);
  }

  /** Sends SIGTERM and resolves the exit {code, signal}; SIGKILLs after timeoutMs. */
  async stop(timeoutMs = 30000) {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  describe() {
    return `coldstartd (port ${this.port}) stderr tail:\n` + this.stderrLines.slice(-20).join('\n');
  }
}

/**
 * Starts `coldstartd serve` with DATABASE_URL, HOST=127.0.0.1, a free PORT, WORKERS=2,
 * LOG_LEVEL=info plus `env` overrides, and waits until GET /api/v1/health answers (200 unless
 * `ready` is 'any', then any HTTP status) within readyTimeoutMs.
 */
export async function startServer({ dbUrl, env = {}, ready = 200, readyTimeoutMs = 15000, args = ['serve'] } = {}) {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(COLDSTARTD, args, {
    env: baseEnv({ DATABASE_URL: dbUrl, HOST: '127.0.0.1', PORT: port, WORKERS: 2, LOG_LEVEL: 'info', ...env }),
    cwd: SCRATCH,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const server = new Server(child, port);
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const t0 = Date.now();
  let last = 'no answer';
  for (;;) {
    if (server.exit) {
      throw new Error(`coldstartd exited (${JSON.stringify(server.exit)}) before it was ready. ${server.describe()}`);
    }
    try {
      const r = await server.request('GET', '/api/v1/health', { timeoutMs: 3000 });
      if (ready === 'any' || r.status === ready) return server;
      last = `status ${r.status}: ${r.text.slice(0, 200)}`;
    } catch (e) {
      last = e.cause?.code || e.message;
    }
    if (Date.now() - t0 > readyTimeoutMs) {
      child.kill('SIGKILL');
      await server.exited;
      throw new Error(`coldstartd not ready within ${readyTimeoutMs} ms (last: ${last}). ${server.describe()}`);
    }
    await sleep(100);
  }
}

/**
 * Registers before/after hooks for a test file: a migrated database, a project with its API key,
 * and a running server. freshConnections: every request on its own connection (see httpFresh). Returns a context object filled in by before():
 *   ctx.db {name, url}, ctx.key (the admin key: all scopes), ctx.ingestKey (scope ingest), ctx.projectSlug, ctx.server, ctx.base,
 *   ctx.ingest(body, opts), ctx.batch(body, opts), ctx.get(path, opts), ctx.request(method, path, opts)
 * after() stops the server with SIGTERM, asserts exit code 0, and drops the database.
 */
export function useServer({ env = {}, projectName = 'Integration Test', slug, freshConnections = false } = {}) {
  const ctx = {};
  before(async () => {
    ctx.db = await createMigratedDatabase();
    ctx.projectSlug = slug || 'it-' + randomBytes(3).toString('hex');
    const keys = await createProjectKeys(ctx.db.url, projectName, ctx.projectSlug);
    ctx.key = keys.admin;
    ctx.ingestKey = keys.ingest;
    ctx.server = await startServer({ dbUrl: ctx.db.url, env });
    ctx.base = ctx.server.base;
  });
  after(async () => {
    try {
      if (ctx.server) {
        const exit = await ctx.server.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `server did not exit 0 on SIGTERM. ${ctx.server.describe()}`);
      }
    } finally {
      if (ctx.db) await dropDatabase(ctx.db.name);
    }
  });
  ctx.request = (method, pathname, opts = {}) => http(ctx.base, method, pathname, { fresh: freshConnections, ...opts });
  ctx.get = (pathname, opts) => ctx.request('GET', pathname, opts);
  const withKey = (opts = {}) => ({ ...opts, headers: { 'X-API-Key': opts.key ?? ctx.key, ...(opts.headers || {}) } });
  ctx.ingest = (body, opts) => ctx.request('POST', '/api/v1/ingest', { body, ...withKey(opts) });
  ctx.batch = (body, opts) => ctx.request('POST', '/api/v1/ingest/batch', { body, ...withKey(opts) });
  ctx.sql = (q) => psql(ctx.db.url, q);
  ctx.rows = (q) => psqlRows(ctx.db.url, q);
  /** The rows of `q` once there are at least `n` (records written by another process arrive late), polled up to `ms`. */
  ctx.rowsAtLeast = async (q, n, ms = 15000) => {
    const until = Date.now() + ms;
    for (;;) {
      const rows = await ctx.rows(q);
      if (rows.length >= n || Date.now() > until) return rows;
      await sleep(100);
    }
  };
  ctx.count = (q) => psqlInt(ctx.db.url, q);
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// Payloads.

/** A unique invocation id. */
export const uid = (prefix = 'inv') => `${prefix}-${randomUUID()}`;

/** An RFC 3339 UTC timestamp `minutesAgo` minutes in the past, whole seconds. */
export function isoAgo(minutesAgo = 5) {
  return new Date(Math.floor(Date.now() / 1000) * 1000 - minutesAgo * 60000).toISOString().replace('.000Z', 'Z');
}

/** A valid ingest record with only the required fields plus a unique invocation_id. */
export function minimalRecord(overrides = {}) {
  return {
    function_name: 'checkout-api',
    invocation_id: uid(),
    timestamp: isoAgo(5),
    cold_start: false,
    execution_duration_ms: 12,
    ...overrides,
  };
}

/** A valid ingest record with every field of the spec's example and DESIGN.md's additions. */
export function fullRecord(overrides = {}) {
  return {
    function_name: 'payment-service',
    invocation_id: uid(),
    request_id: 'req-' + randomBytes(4).toString('hex'),
    timestamp: isoAgo(10),
    cold_start: true,
    init_duration_ms: 2850,
    execution_duration_ms: 145,
    billed_duration_ms: 3000,
    memory_used_mb: 180,
    memory_allocated_mb: 512,
    module_timings: { 'aws-sdk': 850, '@prisma/client': 680, moment: 340.5, lodash: 180, './src/handlers/payment': 45 },
    runtime_version: 'nodejs18.x',
    architecture: 'x86_64',
    region: 'eu-west-1',
    init_type: 'on-demand',
    start_kind: 'cold',
    sdk_version: '0.1.0',
    sdk_overhead_ms: 1.25,
    module_tree: { name: 'root', self: 10, inclusive: 2095, children: [{ name: 'aws-sdk', self: 850, inclusive: 850 }] },
    ...overrides,
  };
}

/** Asserts the spec's error body: {detail (non-empty string), error_code, timestamp (RFC 3339)}. */
export function assertErrorBody(res, status, errorCode, what = '') {
  const ctxMsg = `${what} -> ${res.status} ${res.text.slice(0, 500)}`;
  assert.equal(res.status, status, ctxMsg);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json), `error body is not a JSON object: ${ctxMsg}`);
  assert.equal(res.json.error_code, errorCode, ctxMsg);
  assert.equal(typeof res.json.detail, 'string', ctxMsg);
  assert.ok(res.json.detail.length > 0, ctxMsg);
  assert.match(String(res.json.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/, ctxMsg);
  assert.match(res.headers.get('content-type') || '', /application\/json/, ctxMsg);
  assert.ok(res.headers.get('x-request-id'), `no X-Request-Id header: ${ctxMsg}`);
}

/** Asserts a 400 VALIDATION_ERROR whose errors contain one with this loc (and type, if given). */
export function assertValidationError(res, loc, type, what = '') {
  assertErrorBody(res, 400, 'VALIDATION_ERROR', what);
  const errors = res.json.errors;
  assert.ok(Array.isArray(errors) && errors.length > 0, `no errors[] in ${res.text}`);
  for (const e of errors) {
    assert.ok(Array.isArray(e.loc), `error without loc array: ${JSON.stringify(e)}`);
    assert.equal(typeof e.msg, 'string', `error without msg: ${JSON.stringify(e)}`);
    assert.equal(typeof e.type, 'string', `error without type: ${JSON.stringify(e)}`);
  }
  const hit = errors.find((e) => JSON.stringify(e.loc) === JSON.stringify(loc));
  assert.ok(hit, `${what}: no error at loc ${JSON.stringify(loc)} in ${JSON.stringify(errors)}`);
  if (type instanceof RegExp) assert.match(hit.type, type, `${what}: type at ${JSON.stringify(loc)}`);
  else if (type) assert.equal(hit.type, type, `${what}: type at ${JSON.stringify(loc)}`);
  return hit;
}

/**
 * After a load run: every acknowledged invocation_id is stored exactly once and no id is stored
 * twice. `load` has `sent` (ids sent), `acked` (Map of acknowledged ids), `unexpected` (answers
 * outside what the case allows, described by `allowed`) and `counts`. Returns the figures.
 */
/**
 * Sustained ingest, sent as the SDK sends it: `clients` loops, each posting one record or (every
 * third request) a batch of 10, and sending the same records again after a retryable answer or a
 * connection error, until acknowledged or the load stops. Keeps what was sent and acknowledged
 * (for verifyExactlyOnce) and every unexpected answer.
 *   send(route, body, client, n): client n's request; resolves to a harness response, throws on a
 *     connection error. `client` is what open(n) returned (an agent, a key...).
 *   retryable(res): an answer to send again after retryDelay(res) ms; anything else but a 200
 *     (and, for a batch, status "ok") is unexpected.
 *   tag(client): stored with each acknowledgement, for waitForAcks' filter (e.g. the API key).
 */
export class IngestLoad {
  constructor({
    clients = 6,
    name = 'load',
    send,
    retryable,
    retryDelay = () => 100,
    open = () => undefined,
    close = () => {},
    tag = () => undefined,
  }) {
    Object.assign(this, { clients, name, send, retryable, retryDelay, open, close, tag });
    this.acked = new Map(); // invocation_id -> number of 200s that covered it
    this.ackedAt = []; // [time, tag] per acknowledged request
    this.sent = new Set(); // every invocation_id ever sent
    this.counts = { ok: 0, retried: {}, connectionErrors: 0 };
    this.unexpected = [];
    this.running = false;
  }

  /** 200s seen since `mark` (a snapshot of counts.ok). */
  okSince(mark) {
    return this.counts.ok - mark;
  }

  /** Answers retried with this status so far. */
  retriedWith(status) {
    return this.counts.retried[status] || 0;
  }

  async #client(n) {
    const client = await this.open(n);
    try {
      for (let i = 0; this.running; i++) {
        const batch = i % 3 === 2;
        const recs = batch
          ? Array.from({ length: 10 }, () => minimalRecord({ function_name: `${this.name}-batch` }))
          : [(i % 2 ? fullRecord : minimalRecord)({ function_name: `${this.name}-single-${n % 2}` })];
        for (const r of recs) this.sent.add(r.invocation_id);
        const route = batch ? '/api/v1/ingest/batch' : '/api/v1/ingest';
        const body = batch ? { invocations: recs } : recs[0];
        while (this.running) {
          let res;
          try {
            res = await this.send(route, body, client, n);
          } catch {
            this.counts.connectionErrors++;
            await sleep(100);
            continue;
          }
          if (res.status === 200 && (!batch || res.json?.status === 'ok')) {
            this.counts.ok++;
            this.ackedAt.push([Date.now(), this.tag(client)]);
            for (const r of recs) this.acked.set(r.invocation_id, (this.acked.get(r.invocation_id) || 0) + 1);
            break;
          }
          if (this.retryable(res)) {
            this.counts.retried[res.status] = this.retriedWith(res.status) + 1;
            await sleep(this.retryDelay(res));
            continue;
          }
          this.unexpected.push(`${route} -> ${res.status} retry-after=${res.headers.get('retry-after')} ${res.text.slice(0, 200)}`);
          break;
        }
      }
    } finally {
      this.close(client);
    }
  }

  start() {
    this.running = true;
    this.loops = Array.from({ length: this.clients }, (_, n) => this.#client(n));
    return this;
  }

  async stop() {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Waits until `count` more requests (of clients whose tag passes `filter`) are acknowledged; returns the ms it took. */
  async waitForAcks(count, timeoutMs, what, filter = () => true) {
    const since = Date.now();
    const n = () => this.ackedAt.filter(([t, tag]) => t >= since && filter(tag)).length;
    while (n() < count) {
      if (Date.now() - since > timeoutMs) {
        assert.fail(
          `${what}: only ${n()} of ${count} requests acknowledged within ${timeoutMs} ms (${JSON.stringify(this.counts)}, unexpected: ${this.unexpected.slice(0, 3)})`,
        );
      }
      await sleep(50);
    }
    return Date.now() - since;
  }
}

export async function verifyExactlyOnce(load, dbUrl, what, allowed = '200 and 503 with Retry-After') {
  assert.deepEqual(load.unexpected.slice(0, 5), [], `${what}: answers other than ${allowed}`);
  const ids = [...load.sent];
  const stored = new Map();
  for (let i = 0; i < ids.length; i += 2000) {
    const chunk = ids.slice(i, i + 2000);
    const out = await psql(
      dbUrl,
      `SELECT invocation_id || ' ' || count(*) FROM invocations WHERE invocation_id IN (${chunk.map(lit).join(',')}) GROUP BY invocation_id`,
    );
    for (const line of out.split('\n')) {
      const [id, n] = line.split(' ');
      if (id) stored.set(id, Number(n));
    }
  }
  const acked = [...load.acked.keys()];
  const missing = acked.filter((id) => !stored.has(id));
  const doubled = [...stored].filter(([, n]) => n !== 1);
  assert.ok(acked.length > 0, `${what}: nothing was acknowledged`);
  assert.deepEqual(missing.slice(0, 5), [], `${what}: ${missing.length} of ${acked.length} acknowledged records are missing`);
  assert.deepEqual(doubled.slice(0, 5), [], `${what}: ${doubled.length} records stored more than once`);
  return { acked: acked.length, sent: ids.length, stored: stored.size, ...load.counts };
}

/**
 * A slow client: connects to `port`, sends `head`, then one element of `pieces` (an array, or a
 * string: one character) every intervalMs, round and round, until the server closes the
 * connection or maxMs passes. Resolves {closedByServer, ms, data}.
 */
export function trickle(port, head, pieces, intervalMs, maxMs) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let i = 0;
    let done = false;
    let timer;
    const finish = (closedByServer) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(cap);
      sock.destroy();
      resolve({ closedByServer, ms: Date.now() - t0, data });
    };
    const cap = setTimeout(() => finish(false), maxMs);
    sock.setEncoding('latin1');
    sock.on('data', (d) => (data += d));
    sock.on('error', () => finish(true));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('connect', () => {
      sock.write(head);
      timer = setInterval(() => {
        if (!sock.writable) return finish(true);
        sock.write(pieces[i % pieces.length]);
        i++;
      }, intervalMs);
    });
  });
}

/** Established connections on `port` accepted by process `pid` (from /proc). */
export function acceptedConnections(pid, port) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {}
  }
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (parseInt(f[1].split(':')[1], 16) === port && f[3] === '01' && inodes.has(f[9])) n++;
    }
  }
  return n;
}
