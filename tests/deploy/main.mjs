// Deployment checks that run without a Docker engine: the Compose files parse and reference files
// that exist; backend/Dockerfile's build stage is reproduced on this host (deploy/
// check-dockerfile-build.sh) and the binary it builds is run the way the image runs it (same ENV,
// same files, the image's HEALTHCHECK command); deploy/nginx.conf, rendered as the nginx image
// renders it, passes `nginx -t` and proxies real requests to a real coldstartd over TLS.
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdirSync, writeFileSync, cpSync, mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, createServer as createHttpServer } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { test, runAll } from '../grafana/lib/harness.mjs';
import { parseYaml } from '../grafana/lib/yaml.mjs';
import { freePort, psql, scratchDatabase, startServer, runServerCommand } from '../grafana/lib/server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADMIN_URL = process.env.CSA_TEST_DATABASE_URL;
const ctx = {};
const read = (p) => readFileSync(join(ROOT, p), 'utf8');

// ---- Compose ----------------------------------------------------------------------------------

const composeFiles = ['docker-compose.yml', 'docker-compose.prod.yml'];
const compose = {};

// Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $$.
function composeVariables(text, file) {
  const vars = [];
  const re = /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;
  for (const m of text.matchAll(re)) {
    if (m[1] === '$') continue;
    assert.ok(!m[5], `${file}: $${m[5]} without braces (write \${${m[5]}} or $$ for a literal $)`);
    vars.push({ name: m[2], op: m[3] || null, arg: m[4] ?? null });
  }
  return vars;
}

test('compose: both files parse, use only ${VAR}, ${VAR:-default} and ${VAR:?error} forms', () => {
  for (const f of composeFiles) {
    const text = read(f);
    compose[f] = parseYaml(text);
    assert.ok(compose[f].services, `${f}: services`);
    assert.ok(!('version' in compose[f]), `${f}: the obsolete version key`);
    for (const v of composeVariables(text, f)) assert.ok(v.op === ':-' || v.op === ':?', `${f}: \${${v.name}} needs a default or an error message`);
    // PyYAML, when this machine has it, must read the same document
    const py = spawnSync('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', join(ROOT, f)], { encoding: 'utf8' });
    if (py.status === 0) assert.deepEqual(JSON.parse(py.stdout), compose[f], `${f}: our YAML reading matches PyYAML`);
  }
});

test('compose: every build, bind mount and script it names exists', () => {
  for (const f of composeFiles) {
    for (const [name, svc] of Object.entries(compose[f].services)) {
      if (svc.build) {
        assert.ok(existsSync(join(ROOT, svc.build.context)), `${f} ${name}: build context`);
        assert.ok(existsSync(join(ROOT, svc.build.context, svc.build.dockerfile)), `${f} ${name}: ${svc.build.dockerfile}`);
      } else assert.ok(svc.image, `${f} ${name}: image or build`);
      for (const vol of svc.volumes || []) {
        const host = vol.split(':')[0];
        if (host.startsWith('./')) assert.ok(existsSync(join(ROOT, host)), `${f} ${name}: ${host} exists`);
        else if (!host.startsWith('${')) assert.ok(compose[f].volumes && host in compose[f].volumes, `${f} ${name}: named volume ${host} declared`);
      }
      if (Array.isArray(svc.entrypoint) && svc.entrypoint[1]?.startsWith('/deploy/')) {
        assert.ok(existsSync(join(ROOT, 'deploy', svc.entrypoint[1].slice('/deploy/'.length))), `${f} ${name}: ${svc.entrypoint[1]}`);
      }
    }
  }
});

test('compose: start order, health checks, Grafana wiring', () => {
  for (const f of composeFiles) {
    const s = compose[f].services;
    for (const name of ['db', 'migrate', 'grafana-role', 'api', 'grafana']) assert.ok(s[name], `${f}: service ${name}`);
    assert.equal(s.db.image, 'postgres:15');
    assert.ok(s.db.healthcheck, `${f}: db health check`);
    assert.equal(s.migrate.depends_on.db.condition, 'service_healthy');
    assert.deepEqual(s.migrate.command, ['migrate']);
    assert.equal(s.api.depends_on.migrate.condition, 'service_completed_successfully', `${f}: the api serves only after migrating`);
    assert.equal(s['grafana-role'].depends_on.migrate.condition, 'service_completed_successfully');
    assert.equal(s.grafana.depends_on['grafana-role'].condition, 'service_completed_successfully');
    assert.ok(s.grafana.healthcheck, `${f}: grafana health check`);
    assert.match(s.grafana.image, /^grafana\/grafana:10\./);
    const mounts = Object.fromEntries(s.grafana.volumes.map((v) => [v.split(':')[1], v.split(':')[0]]));
    assert.equal(mounts['/etc/grafana/provisioning'], './grafana/provisioning');
    assert.equal(mounts['/etc/grafana/grafana.ini'], './grafana/grafana.ini');
    // the datasource file reads these from Grafana's environment
    const ds = read('grafana/provisioning/datasources/datasource.yml').replace(/#.*$/gm, '');
    for (const m of ds.matchAll(/\$\{([A-Z_]+)\}/g)) assert.ok(m[1] in s.grafana.environment, `${f}: grafana gets ${m[1]}`);
    // the role Grafana logs in as is the one the set-up creates, with the same password
    assert.equal(s.grafana.environment.GRAFANA_DB_USER, s['grafana-role'].environment.GRAFANA_DB_USER);
    assert.equal(s.grafana.environment.GRAFANA_DB_PASSWORD, s['grafana-role'].environment.GRAFANA_DB_PASSWORD);
    // every server setting the api gets is a documented one
    const documented = new Set([...read('.env.example').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    for (const k of Object.keys(s.api.environment)) assert.ok(documented.has(k), `${f}: api setting ${k} is in .env.example`);
    assert.equal(s.api.build.dockerfile, 'backend/Dockerfile');
    assert.equal(s.api.image, s.migrate.image, `${f}: migrate runs the api image`);
  }
});

test('compose: production publishes only nginx and takes every secret from the environment', () => {
  const s = compose['docker-compose.prod.yml'].services;
  for (const [name, svc] of Object.entries(s)) if (name !== 'nginx') assert.ok(!svc.ports, `prod ${name} publishes no port`);
  assert.deepEqual(s.nginx.ports, ['80:80', '443:443']);
  const text = read('docker-compose.prod.yml');
  for (const secret of ['POSTGRES_PASSWORD', 'GRAFANA_DB_PASSWORD', 'GRAFANA_ADMIN_PASSWORD', 'APP_SECRET_KEY', 'SERVER_NAME']) {
    const uses = composeVariables(text, 'prod').filter((v) => v.name === secret);
    assert.ok(uses.length && uses.every((v) => v.op === ':?'), `prod: ${secret} is required (\${${secret}:?...})`);
  }
  for (const [name, svc] of Object.entries(s)) {
    for (const [k, v] of Object.entries(svc.environment || {})) {
      if (/PASSWORD|SECRET/.test(k)) assert.match(String(v), /^\$\{[A-Z_]+:\?[^}]+\}$/, `prod ${name}: ${k} is a required variable, not a literal`);
      if (/^postgres(ql)?:\/\//.test(String(v))) assert.match(String(v), /:\$\{POSTGRES_PASSWORD:\?[^}]+\}@/, `prod ${name}: ${k} takes its password from POSTGRES_PASSWORD`);
    }
  }
  assert.equal(s.nginx.volumes[0], './deploy/nginx.conf:/etc/nginx/templates/default.conf.template:ro');
  assert.equal(s.api.environment.APP_ENV, 'production');
  const dev = compose['docker-compose.yml'].services;
  assert.ok(dev.db.ports.every((p) => p.startsWith('127.0.0.1:')), 'dev: the database port only on loopback');
  assert.ok(dev.grafana.ports.every((p) => p.startsWith('127.0.0.1:')), 'dev: Grafana (admin/admin) only on loopback');
});

// ---- Dockerfile -----------------------------------------------------------------------------

function dockerStages() {
  const lines = read('backend/Dockerfile').replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages = {};
  let cur = null;
  for (const l of lines) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (m) { cur = { from: m[1], lines: [] }; stages[m[2] || `stage${Object.keys(stages).length}`] = cur; continue; }
    cur.lines.push(l.trim());
  }
  return stages;
}

test('Dockerfile: multi-stage, slim runtime, non-root, health check, migrations and rules inside', () => {
  const st = dockerStages();
  assert.ok(st.build && st.runtime, 'build and runtime stages');
  assert.match(st.runtime.from, /^debian:bookworm-slim$/);
  const rt = st.runtime.lines;
  assert.ok(!rt.some((l) => /-dev\b/.test(l)), 'no -dev package in the runtime stage');
  const user = rt.find((l) => l.startsWith('USER '));
  assert.ok(user && !/^USER\s+(root|0)(:|$)/.test(user), 'runs as a non-root user');
  assert.ok(rt.some((l) => l.startsWith('HEALTHCHECK ')), 'HEALTHCHECK');
  assert.ok(rt.some((l) => /^ENTRYPOINT \["\/usr\/local\/bin\/coldstartd"\]/.test(l)), 'ENTRYPOINT coldstartd (so `migrate` is one argument away)');
  const env = Object.fromEntries(rt.filter((l) => l.startsWith('ENV ')).flatMap((l) => [...l.slice(4).matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])));
  const copies = rt.filter((l) => /^COPY (?!--from)/.test(l)).map((l) => l.split(/\s+/).slice(1));
  assert.ok(copies.some(([src, dst]) => src === 'backend/migrations' && dst === env.MIGRATIONS_DIR), 'migrations copied where MIGRATIONS_DIR points');
  assert.ok(copies.some(([src, dst]) => src === 'rules/recommendations.json' && dst === env.RULES_FILE), 'rules copied where RULES_FILE points');
  // the ignore file sends exactly what the COPY lines read
  const ignore = read('backend/Dockerfile.dockerignore').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  assert.equal(ignore[0], '*');
  const allowed = ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
  const sources = [...st.build.lines, ...rt].filter((l) => /^COPY (?!--from)/.test(l)).map((l) => l.split(/\s+/)[1]);
  for (const src of sources) assert.ok(allowed.some((a) => src === a || src.startsWith(a + '/')), `${src} is not excluded from the build context`);
  ctx.dockerEnv = env;
  ctx.healthcheck = JSON.parse(rt.find((l) => l.startsWith('HEALTHCHECK ')).replace(/^.*?CMD\s+/, ''));
});

test('Dockerfile: the build stage, reproduced here, builds a binary the runtime stage can run', () => {
  const out = join(ctx.tmp, 'dockerbuild');
  const r = spawnSync(join(ROOT, 'deploy', 'check-dockerfile-build.sh'), [out], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `check-dockerfile-build.sh failed:\n${(r.stderr || '').split('\n').slice(-30).join('\n')}`);
  ctx.imageBinary = r.stdout.trim().split('\n').pop();
  assert.ok(existsSync(ctx.imageBinary), ctx.imageBinary);
});

test('Dockerfile: the image layout migrates, serves, and its HEALTHCHECK tells healthy from not', async () => {
  assert.ok(ADMIN_URL, 'CSA_TEST_DATABASE_URL must be set');
  assert.ok(ctx.imageBinary, 'no binary from the build stage');
  // the runtime stage's files under a scratch root, at the paths its ENV names
  const img = join(ctx.tmp, 'image-root');
  const env = {};
  for (const [k, v] of Object.entries(ctx.dockerEnv)) env[k] = v.startsWith('/') ? join(img, v) : v;
  cpSync(join(ROOT, 'backend', 'migrations'), env.MIGRATIONS_DIR, { recursive: true });
  mkdirSync(dirname(env.RULES_FILE), { recursive: true });
  cpSync(join(ROOT, 'rules', 'recommendations.json'), env.RULES_FILE);
  ctx.db = scratchDatabase(ADMIN_URL, 'csa_deploy');
  Object.assign(env, { DATABASE_URL: ctx.db.url });
  delete env.HOST; delete env.PORT;
  runServerCommand(ctx.imageBinary, ['migrate'], env);
  runServerCommand(ctx.imageBinary, ['migrate'], env); // a second run (another replica) is a no-op
  const out = runServerCommand(ctx.imageBinary, ['create-project', '--name', 'Deploy', '--slug', 'deploy'], env).trim().split('\n');
  ctx.key = out[out.findIndex((l) => l.startsWith('Admin key')) + 2].trim(); // all scopes: it also reads
  ctx.server = await startServer(ctx.imageBinary, env);
  const [cmd, ...args] = ctx.healthcheck;
  const hc = (port) => spawnSync(cmd, args, { env: { ...process.env, PORT: String(port) }, encoding: 'utf8', timeout: 5000 });
  assert.equal(hc(ctx.server.port).status, 0, 'HEALTHCHECK passes against a healthy server');
  assert.notEqual(hc(await freePort()).status, 0, 'HEALTHCHECK fails when nothing listens');
});

// ---- nginx ------------------------------------------------------------------------------------

function renderTemplate(text, env, filter) {
  // the nginx image's 20-envsubst-on-templates.sh: only defined variables matching the filter
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name) => (filter.test(name) && name in env ? env[name] : m));
}

function fetchTls(port, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method, servername: 'localhost', ca: ctx.cert, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

test('nginx: deploy/nginx.conf, rendered as the image does, passes nginx -t', async () => {
  const nginx = ['/usr/sbin/nginx', 'nginx'].find((p) => spawnSync(p, ['-v']).status === 0);
  assert.ok(nginx, 'nginx is not installed (run.sh installs the Debian package)');
  const dir = join(ctx.tmp, 'nginx');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(join(dir, 'tls'));
  const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost', '-keyout', join(dir, 'tls', 'privkey.pem'), '-out', join(dir, 'tls', 'fullchain.pem')], { encoding: 'utf8' });
  assert.equal(ssl.status, 0, ssl.stderr);
  ctx.cert = readFileSync(join(dir, 'tls', 'fullchain.pem'));
  ctx.grafanaStub = createHttpServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ path: req.url, proto: req.headers['x-forwarded-proto'], host: req.headers.host }));
  });
  await new Promise((r) => ctx.grafanaStub.listen(0, '127.0.0.1', r));
  ctx.httpPort = await freePort();
  ctx.httpsPort = await freePort();
  const prod = compose['docker-compose.prod.yml'].services.nginx.environment;
  const filter = new RegExp(prod.NGINX_ENVSUBST_FILTER.replace(/\$\$/g, '$'));
  const env = {
    SERVER_NAME: 'localhost', LISTEN_HTTP: `127.0.0.1:${ctx.httpPort}`, LISTEN_HTTPS: `127.0.0.1:${ctx.httpsPort}`,
    TLS_CERTIFICATE: join(dir, 'tls', 'fullchain.pem'), TLS_CERTIFICATE_KEY: join(dir, 'tls', 'privkey.pem'),
    TLS_PROTOCOLS: 'TLSv1.2 TLSv1.3', API_UPSTREAM: `127.0.0.1:${ctx.server?.port ?? 9}`, GRAFANA_UPSTREAM: `127.0.0.1:${ctx.grafanaStub.address().port}`,
  };
  for (const k of Object.keys(env)) assert.ok(filter.test(k) && (k in prod || k === 'LISTEN_HTTP' || k === 'LISTEN_HTTPS'), `${k} is passed by docker-compose.prod.yml`);
  const rendered = renderTemplate(read('deploy/nginx.conf'), env, filter);
  assert.ok(!/\$\{/.test(rendered.replace(/#.*$/gm, '')), 'every ${VAR} of the template is set by docker-compose.prod.yml');
  mkdirSync(join(dir, 'conf.d'));
  writeFileSync(join(dir, 'conf.d', 'default.conf'), rendered);
  // the nginx image's own /etc/nginx/nginx.conf (nginx:1.24), paths moved under the scratch dir:
  // the template must not repeat what it sets at the http level
  writeFileSync(join(dir, 'nginx.conf'), [
    'worker_processes auto;', `error_log ${join(dir, 'logs', 'error.log')} notice;`, `pid ${join(dir, 'nginx.pid')};`,
    'events {', '    worker_connections 1024;', '}',
    'http {', '    include /etc/nginx/mime.types;', '    default_type application/octet-stream;',
    `    log_format main '$remote_addr - $remote_user [$time_local] "$request" '`,
    `                    '$status $body_bytes_sent "$http_referer" '`,
    `                    '"$http_user_agent" "$http_x_forwarded_for"';`,
    `    access_log ${join(dir, 'logs', 'access.log')} main;`, '    sendfile on;', '    keepalive_timeout 65;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${join(dir, t)};`),
    `    include ${join(dir, 'conf.d')}/*.conf;`, '}', ''].join('\n'));
  const t = spawnSync(nginx, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(t.status, 0, `nginx -t:\n${t.stderr}`);
  ctx.nginxCmd = [nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off; user root;']];
});

test('nginx: proxies to a real coldstartd over TLS (health, ingest, gzip, redirect, body limit, Grafana)', async () => {
  assert.ok(ctx.nginxCmd && ctx.server, 'nginx -t or the server set-up failed');
  ctx.nginx = spawn(ctx.nginxCmd[0], ctx.nginxCmd[1], { stdio: ['ignore', 'ignore', 'pipe'] });
  process.once('exit', () => { if (ctx.nginx.exitCode === null) ctx.nginx.kill('SIGKILL'); });
  let log = '';
  ctx.nginx.stderr.on('data', (d) => { log += d; });
  const deadline = Date.now() + 10000;
  let health;
  while (Date.now() < deadline) {
    try { health = await fetchTls(ctx.httpsPort, '/api/v1/health'); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  assert.ok(health, `nginx did not answer: ${log}`);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, 'healthy');
  assert.match(health.headers['strict-transport-security'] || '', /max-age=/);
  assert.equal(health.headers.server, 'nginx', 'no version in Server');

  const now = new Date().toISOString();
  const records = Array.from({ length: 40 }, (_, i) => ({ function_name: `fn-through-nginx-${String(i).padStart(2, '0')}`,
    invocation_id: `nginx-${i}`, timestamp: now, cold_start: i % 2 === 0, init_duration_ms: 900 + i, execution_duration_ms: 50 }));
  const one = await fetchTls(ctx.httpsPort, '/api/v1/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': ctx.key }, body: JSON.stringify(records[0]) });
  assert.equal(one.status, 200, one.body.toString());
  const batch = await fetchTls(ctx.httpsPort, '/api/v1/ingest/batch', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': ctx.key }, body: JSON.stringify({ invocations: records.slice(1) }) });
  assert.equal(batch.status, 200, batch.body.toString());
  assert.equal(psql(ctx.db.url, 'SELECT count(*) FROM invocations').trim(), '40', 'the records went through nginx into PostgreSQL');

  const list = await fetchTls(ctx.httpsPort, '/api/v1/functions', { headers: { 'X-API-Key': ctx.key, 'Accept-Encoding': 'gzip' } });
  assert.equal(list.status, 200);
  assert.equal(list.headers['content-encoding'], 'gzip', 'JSON responses are gzipped');
  assert.match(gunzipSync(list.body).toString(), /fn-through-nginx-39/);

  // the web UI through nginx: its page, with coldstartd's policy, and a content-hashed file
  const ui = await fetchTls(ctx.httpsPort, '/');
  assert.equal(ui.status, 200, 'GET / is the web UI');
  assert.match(ui.body.toString(), /<title>Cold Start Analyzer<\/title>/);
  assert.match(ui.headers['content-security-policy'] || '', /default-src 'none'; script-src 'self'/);
  const script = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(ui.body.toString())[1];
  const asset = await fetchTls(ctx.httpsPort, script);
  assert.equal(asset.status, 200, script);
  assert.match(asset.headers['cache-control'] || '', /immutable/);

  const redirect = await new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: ctx.httpPort, path: '/api/v1/health', headers: { Host: 'localhost' } }, (res) => { res.resume(); resolve(res); }).on('error', reject).end();
  });
  assert.equal(redirect.statusCode, 301);
  assert.equal(redirect.headers.location, 'https://localhost/api/v1/health');

  const big = await fetchTls(ctx.httpsPort, '/api/v1/ingest/batch', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': ctx.key }, body: Buffer.alloc(12 << 20, 0x20) });
  assert.equal(big.status, 413, 'nginx refuses bodies over 11 MiB');

  const g = await fetchTls(ctx.httpsPort, '/grafana/api/health');
  assert.equal(g.status, 200);
  const echoed = JSON.parse(g.body);
  assert.equal(echoed.path, '/grafana/api/health', 'Grafana gets the sub-path it serves from');
  assert.equal(echoed.proto, 'https');
  assert.equal((await fetchTls(ctx.httpsPort, '/somewhere-else')).status, 404);
});

test('deploy: tear-down', async () => {
  if (ctx.nginx && ctx.nginx.exitCode === null) { const done = new Promise((r) => ctx.nginx.once('exit', r)); ctx.nginx.kill('SIGQUIT'); await done; }
  if (ctx.grafanaStub) ctx.grafanaStub.close();
  if (ctx.server) await ctx.server.stop();
  if (ctx.db) ctx.db.drop();
  rmSync(ctx.tmp, { recursive: true, force: true });
});

ctx.tmp = mkdtempSync(join(tmpdir(), 'csa-deploy-'));
const failed = await runAll();
process.exit(failed ? 1 : 0);
