// Horizontal scale: two `coldstartd serve` replicas against one PostgreSQL, behind nginx configured
// with the shipped deploy/nginx.conf (rendered as the nginx image renders it, TLS and all).
//
// - Sustained ingest (single and batch) from several API keys through nginx; one replica is
//   SIGKILLed mid-load. nginx fails over to the other replica; every acknowledged invocation_id is
//   in the database exactly once, and no id at all is stored twice.
// - Rate limits: each replica counts per key in its own memory; nginx routes by API key
//   (`hash $http_x_api_key consistent`), so a key's limit holds exactly: the (N+1)th ingest of a
//   window gets 429 through nginx, while the other replica, asked directly, still has the key's
//   whole allowance (the limit is per replica; the routing is what makes it exact).
//
// Clients behave like the SDK: on a connection error, a 429 or a 5xx they send the same body again.
// nginx is the Debian package (scripts/deps.sh test installs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  REPO,
  createMigratedDatabase,
  createProject,
  dropDatabase,
  startServer as startServerOnce,
  minimalRecord,
  httpFresh,
  sleep,
  freePort,
  verifyExactlyOnce,
  IngestLoad,
} from './harness.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => existsSync(p));
const TMP = mkdtempSync(path.join(os.tmpdir(), 'csa-replicas-'));
const LOAD_ENV = { RATE_LIMIT_INGEST: 1000000, RATE_LIMIT_QUERY: 1000000, REQUEST_TIMEOUT: 10, SHUTDOWN_TIMEOUT: 20 };
const db = {};
const children = new Set();
const servers = new Set(); // replicas: killed in after() if a test failed before stopping them

/** startServer, remembered so that a failing test (say nginx's set-up) never leaves a replica
 * running, which would keep this file alive until CTest's timeout. */
async function startServer(opts) {
  const s = await startServerOnce(opts);
  servers.add(s);
  return s;
}
const results = {};

before(async () => {
  assert.ok(NGINX, 'nginx is not installed (scripts/deps.sh test installs the Debian package)');
  const ssl = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      path.join(TMP, 'privkey.pem'),
      '-out',
      path.join(TMP, 'fullchain.pem'),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(ssl.status, 0, `openssl: ${ssl.stderr}`);
  db.value = await createMigratedDatabase();
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  if (db.value) await dropDatabase(db.value.name);
  rmSync(TMP, { recursive: true, force: true });
  for (const [k, v] of Object.entries(results)) console.log(`# replicas ${k}: ${JSON.stringify(v)}`);
});
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------------
// nginx with deploy/nginx.conf in front of the given replica ports.

let nginxCount = 0;
async function startNginx(replicaPorts) {
  const dir = path.join(TMP, `nginx-${nginxCount++}`);
  mkdirSync(path.join(dir, 'conf.d'), { recursive: true });
  const httpsPort = await freePort();
  const env = {
    SERVER_NAME: 'localhost',
    LISTEN_HTTP: `127.0.0.1:${await freePort()}`,
    LISTEN_HTTPS: `127.0.0.1:${httpsPort}`,
    TLS_CERTIFICATE: path.join(TMP, 'fullchain.pem'),
    TLS_CERTIFICATE_KEY: path.join(TMP, 'privkey.pem'),
    TLS_PROTOCOLS: 'TLSv1.2 TLSv1.3',
    API_UPSTREAM: 'api-replicas',
    GRAFANA_UPSTREAM: '127.0.0.1:9',
  };
  let conf = readFileSync(path.join(REPO, 'deploy/nginx.conf'), 'utf8').replace(/\$\{([A-Z_]+)\}/g, (m, n) => (n in env ? env[n] : m));
  // In Compose, Docker's DNS gives the one `server api:8000` line one address per replica. Here the
  // replicas are loopback ports: the line is repeated once per replica with the same parameters.
  const serverLine = /^(\s*)server api-replicas( [^;]*)?;$/m;
  assert.match(conf, serverLine, 'deploy/nginx.conf: the upstream server line');
  conf = conf.replace(serverLine, (m, indent, params = '') =>
    replicaPorts.map((p) => `${indent}server 127.0.0.1:${p}${params};`).join('\n'),
  );
  assert.match(conf, /hash \$http_x_api_key(\$http_x_amz_firehose_access_key)? consistent;/, 'deploy/nginx.conf routes by API key');
  writeFileSync(path.join(dir, 'conf.d', 'default.conf'), conf);
  // the nginx image's own /etc/nginx/nginx.conf, paths moved under the scratch directory
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    [
      'worker_processes 2;',
      `error_log ${path.join(dir, 'error.log')} notice;`,
      `pid ${path.join(dir, 'nginx.pid')};`,
      'events {',
      '    worker_connections 1024;',
      '}',
      'http {',
      '    include /etc/nginx/mime.types;',
      '    default_type application/octet-stream;',
      '    access_log off;',
      '    sendfile on;',
      '    keepalive_timeout 65;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${path.join(dir, t)};`),
      `    include ${path.join(dir, 'conf.d')}/*.conf;`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', process.getuid() === 0 ? 'daemon off; user root;' : 'daemon off;'];
  const t = spawnSync(NGINX, ['-t', ...args.slice(0, 4)], { encoding: 'utf8' });
  assert.equal(t.status, 0, `nginx -t: ${t.stderr}`); // fails fast: the replicas are killed in after()
  const child = spawn(NGINX, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const nginx = {
    port: httpsPort,
    child,
    errorLog: () => (existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : '') + stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await done;
      clearTimeout(timer);
    },
  };
  const agent = clientAgent('127.0.0.1');
  for (const t0 = Date.now(); ; ) {
    try {
      const r = await tls(nginx, agent, 'GET', '/api/v1/health');
      if (r.status === 200) break;
    } catch {}
    if (Date.now() - t0 > 15000 || child.exitCode !== null) {
      agent.destroy();
      child.kill('SIGKILL');
      assert.fail(`nginx did not serve health within 15 s: ${nginx.errorLog()}`);
    }
    await sleep(100);
  }
  agent.destroy();
  return nginx;
}

const clientAgent = (localAddress) =>
  new https.Agent({
    keepAlive: true,
    maxSockets: 1,
    localAddress,
    ca: readFileSync(path.join(TMP, 'fullchain.pem')),
    servername: 'localhost',
  });

/** One HTTPS request through nginx: {status, headers, text, json}; rejects on a connection error. */
function tls(nginx, agent, method, pathname, { headers = {}, body, timeoutMs = 20000 } = {}) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const hdrs = { Host: 'localhost', ...headers };
  if (payload) Object.assign(hdrs, { 'Content-Type': 'application/json', 'Content-Length': payload.length });
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: nginx.port, path: pathname, method, headers: hdrs, agent, timeout: timeoutMs },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Which replica served the one request `send` makes: the one whose request log grew. (Requests are
 * sent one at a time here; X-Request-Id cannot tell, it is only unique within one process.)
 */
async function servedBy(replicas, send) {
  const count = (s) => s.logs.filter((l) => l.path === '/api/v1/functions').length;
  const before = replicas.map(count);
  const r = await send();
  for (let i = 0; i < 100; i++) {
    const grew = replicas.filter((s, j) => count(s) > before[j]);
    if (grew.length) {
      assert.equal(grew.length, 1, 'one request logged by two replicas');
      return { replica: grew[0], res: r };
    }
    await sleep(50);
  }
  assert.fail("the request is in no replica's log");
}

/**
 * Creates API keys (one project each) until every replica owns at least `perReplica` of them under
 * nginx's key hashing, found out with a query request per key (it does not count against the
 * ingest limit). Returns [{key, replica}].
 */
async function keysOnEveryReplica(nginx, replicas, perReplica, tag) {
  const agent = clientAgent('127.0.0.1');
  const keys = [];
  try {
    for (let i = 0; i < 40 && replicas.some((s) => keys.filter((k) => k.replica === s).length < perReplica); i++) {
      const key = await createProject(db.value.url, `Replicas ${tag} ${i}`, `rep-${tag}-${i}-${process.pid}`);
      const { replica, res } = await servedBy(replicas, () =>
        tls(nginx, agent, 'GET', '/api/v1/functions', { headers: { 'X-API-Key': key } }),
      );
      assert.equal(res.status, 200, res.text);
      if (keys.filter((k) => k.replica === replica).length < perReplica) keys.push({ key, replica });
    }
  } finally {
    agent.destroy();
  }
  for (const s of replicas)
    assert.ok(
      keys.some((k) => k.replica === s),
      `no key routed to replica on port ${s.port} in 40 tries`,
    );
  return keys;
}

// ---------------------------------------------------------------------------------------------
// The load: each client has its own source address (nginx limits requests per client address),
// its own keep-alive connection to nginx and one API key; every third request is a batch of 10.

function replicaLoad(nginx, keys, clients = 6) {
  return new IngestLoad({
    clients,
    name: 'replicas',
    open: (n) => ({ key: keys[n % keys.length].key, agent: clientAgent(`127.0.0.${2 + n}`) }),
    close: (client) => client.agent.destroy(),
    tag: (client) => client.key,
    send: (route, body, client) => tls(nginx, client.agent, 'POST', route, { body, headers: { 'X-API-Key': client.key } }),
    retryable: (res) => res.status === 429 || res.status >= 500,
  });
}

const verifyStored = (load, what) => verifyExactlyOnce(load, db.value.url, what, '200, 429, 5xx');

const ingestServed = (server) => server.logs.filter((l) => l.status === 200 && /^\/api\/v1\/ingest/.test(l.path || '')).length;

// ---------------------------------------------------------------------------------------------

test('two replicas behind nginx under ingest load, one SIGKILLed: nginx fails over, nothing acknowledged lost or doubled', async () => {
  const replicas = [await startServer({ dbUrl: db.value.url, env: LOAD_ENV }), await startServer({ dbUrl: db.value.url, env: LOAD_ENV })];
  const nginx = await startNginx(replicas.map((s) => s.port));
  let load;
  try {
    const keys = await keysOnEveryReplica(nginx, replicas, 2, 'load');
    load = replicaLoad(nginx, keys, 8).start();
    const t0 = Date.now();
    await load.waitForAcks(150, 30000, 'before the kill');
    await sleep(Math.max(0, 3000 - (Date.now() - t0)));
    const served = replicas.map(ingestServed);
    assert.ok(
      served.every((n) => n > 10),
      `both replicas take ingest: ${served}`,
    );

    const [victim, survivor] = replicas;
    victim.child.kill('SIGKILL');
    assert.equal((await victim.exited).signal, 'SIGKILL');
    const victimKeys = new Set(keys.filter((k) => k.replica === victim).map((k) => k.key));
    // the killed replica's keys are now served by the other one, and so is everyone else
    const failoverMs = await load.waitForAcks(30, 30000, "the killed replica's keys after the kill", (k) => victimKeys.has(k));
    const t1 = Date.now();
    await load.waitForAcks(150, 30000, 'after the kill');
    await sleep(Math.max(0, 3000 - (Date.now() - t1)));
    await load.stop();
    // nginx passes a request it could not send to the dead replica to the other one, and never
    // replays one already sent (not idempotent without invocation_id): at most the requests in
    // flight at the kill come back as 502 (one per client), and the client retries them
    const failed = (load.counts.retried[502] || 0) + (load.counts.retried[504] || 0) + load.counts.connectionErrors;
    assert.ok(failed <= load.clients, `${failed} requests failed at the kill (${JSON.stringify(load.counts)})`);
    assert.ok(survivor.exit === null, 'the other replica is still running');
    results.kill = { failover_ms: failoverMs, served_before_kill: served, ...(await verifyStored(load, 'replica SIGKILL')) };
    const exit = await survivor.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, survivor.describe());
  } finally {
    if (load) await load.stop();
    await nginx.stop();
    for (const s of replicas) if (!s.exit) s.child.kill('SIGKILL');
  }
});

test('rate limits through nginx with two replicas: a key gets exactly RATE_LIMIT_INGEST per window, then 429', async () => {
  const LIMIT = 5;
  const env = { RATE_LIMIT_INGEST: LIMIT, RATE_LIMIT_WINDOW: 300, RATE_LIMIT_QUERY: 1000 };
  const replicas = [await startServer({ dbUrl: db.value.url, env }), await startServer({ dbUrl: db.value.url, env })];
  const nginx = await startNginx(replicas.map((s) => s.port));
  try {
    const keys = await keysOnEveryReplica(nginx, replicas, 2, 'limit');
    // every key's requests interleaved, each key on its own connection (and client address)
    const got = await Promise.all(
      keys.map(async ({ key }, n) => {
        const agent = clientAgent(`127.0.0.${2 + n}`);
        const statuses = [];
        let last;
        try {
          for (let i = 0; i < LIMIT + 2; i++) {
            last = await tls(nginx, agent, 'POST', '/api/v1/ingest', {
              body: minimalRecord({ function_name: 'limited' }),
              headers: { 'X-API-Key': key },
            });
            statuses.push(last.status);
            await sleep(10);
          }
        } finally {
          agent.destroy();
        }
        return { statuses, last };
      }),
    );
    for (const [n, { statuses, last }] of got.entries()) {
      assert.deepEqual(statuses, [...Array(LIMIT).fill(200), 429, 429], `key ${n} through nginx`);
      assert.equal(last.json?.error_code, 'RATE_LIMIT_ERROR', last.text);
      assert.equal(last.headers['x-ratelimit-limit'], String(LIMIT));
      assert.equal(last.headers['x-ratelimit-remaining'], '0');
      assert.ok(Number(last.headers['retry-after']) > 0, 'Retry-After on the 429');
    }
    // The count lives in the replica nginx routed the key to; the other replica, asked directly,
    // has never seen the key: without routing by key, a key would get LIMIT per replica.
    for (const { key, replica } of keys) {
      const other = replicas.find((s) => s !== replica);
      const own = await httpFresh(replica.base, 'POST', '/api/v1/ingest', { body: minimalRecord(), headers: { 'X-API-Key': key } });
      const fresh = await httpFresh(other.base, 'POST', '/api/v1/ingest', { body: minimalRecord(), headers: { 'X-API-Key': key } });
      assert.equal(own.status, 429, 'the replica that counted the key');
      assert.equal(fresh.status, 200, 'the other replica counts on its own');
      assert.equal(fresh.headers.get('x-ratelimit-remaining'), String(LIMIT - 1));
    }
    results.rate_limit = { keys: keys.length, limit: LIMIT, per_key: got.map((g) => g.statuses.join(',')) };
  } finally {
    await nginx.stop();
    for (const s of replicas) await s.stop();
  }
});
