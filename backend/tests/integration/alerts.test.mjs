// Alerts (issue 17, docs/alerts.md): the rules API with its validation, and notifications that
// reach a real local webhook receiver over HTTP: once while firing, signed (the HMAC is verified
// here), then resolved; a regression names its package; a delivery survives coldstartd being
// killed mid-delivery; webhooks to this machine's network are refused unless allowed; over HTTPS
// (receivers with certificates from a CA made here by openssl) only a verified receiver is sent to.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { lookup } from 'node:dns/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  useServer,
  startServer,
  runCli,
  lines,
  freePort,
  createMigratedDatabase,
  createProjectKeys,
  dropDatabase,
  psqlRows,
  http,
  fullRecord,
  minimalRecord,
  isoAgo,
  lit,
  sleep,
  assertErrorBody,
  assertValidationError,
} from './harness.mjs';

const run = promisify(execFile);

/**
 * Throwaway certificates made by the openssl command in a new directory: a CA (its certificate in
 * ca.pem, given to coldstartd as ALERT_WEBHOOK_CA_FILE), another CA nobody trusts, and server
 * certificates (P-256, valid one day) by name: {key, cert} for node:https. Removed by cleanup().
 */
async function makeCertificates(leaves) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'csa-alerts-tls-'));
  const cnf = path.join(dir, 'openssl.cnf');
  await writeFile(
    cnf,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = x',
      '[ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign',
      'subjectKeyIdentifier = hash',
      '[leaf]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = $ENV::SAN',
      '',
    ].join('\n'),
  );
  const f = (name) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-config', cnf];
  const req = (args, san = 'DNS:unused') => run('openssl', ['req', '-x509', ...ec, ...args], { env: { ...process.env, SAN: san } });
  await Promise.all(
    ['ca', 'other-ca'].map((ca) =>
      req(['-extensions', 'ca', '-subj', `/CN=coldstart test ${ca}`, '-keyout', f(`${ca}.key`), '-out', f(`${ca}.pem`)]),
    ),
  );
  const out = { dir, caFile: f('ca.pem'), cleanup: () => rm(dir, { recursive: true, force: true }) };
  await Promise.all(
    Object.entries(leaves).map(async ([name, { ca, san }]) => {
      await req(
        [
          '-extensions',
          'leaf',
          '-CA',
          f(`${ca}.pem`),
          '-CAkey',
          f(`${ca}.key`),
          '-subj',
          `/CN=${name}`,
          '-keyout',
          f(`${name}.key`),
          '-out',
          f(`${name}.pem`),
        ],
        san,
      );
      out[name] = { key: await readFile(f(`${name}.key`)), cert: await readFile(f(`${name}.pem`)) };
    }),
  );
  return out;
}

// the https receivers' certificates: made before the server starts, which trusts `ca` through
// ALERT_WEBHOOK_CA_FILE (in addition to the system's CAs, which the other tests do not need)
const certs = await makeCertificates({
  good: { ca: 'ca', san: 'DNS:localhost,IP:127.0.0.1' },
  'wrong-host': { ca: 'ca', san: 'DNS:receiver.example' },
  'unknown-ca': { ca: 'other-ca', san: 'DNS:localhost,IP:127.0.0.1' },
});
after(() => certs.cleanup());

// evaluations every second, the first retry after a second: the suite takes seconds, not minutes
const FAST = { ALERT_EVAL_INTERVAL: 1, ALERT_RETRY_BASE: 1, ALERT_WEBHOOK_TIMEOUT: 30 };
const ctx = useServer({
  env: { ...FAST, ALERT_ALLOW_PRIVATE_WEBHOOKS: 'true', RATE_LIMIT_QUERY: 100000, ALERT_WEBHOOK_CA_FILE: certs.caFile },
});
const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

/**
 * A webhook receiver on 127.0.0.1. Every request is kept ({path, headers, body}); `plans[path]`
 * says how to answer the next ones on that path in turn ('ok' 200, 'refuse' 503, 'hang' never),
 * then `mode`. With `tls` (options of node:https: key, cert, ...) it is an HTTPS receiver: each
 * request also keeps the TLS session's `servername` (SNI) and `protocol`, and the handshakes that
 * failed are kept in `tlsErrors`.
 */
async function receiver({ tls } = {}) {
  const r = { got: [], plans: {}, mode: 'ok', hung: [], tlsErrors: [] };
  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const entry = { path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      if (tls) Object.assign(entry, { servername: req.socket.servername, protocol: req.socket.getProtocol() });
      r.got.push(entry);
      const plan = r.plans[req.url] ?? [];
      const how = plan.length ? plan.shift() : r.mode;
      entry.answer = how;
      if (how === 'hang') r.hung.push({ path: req.url, res });
      else if (how === 'refuse') res.writeHead(503).end('busy');
      else res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    });
  };
  r.server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  r.server.on('tlsClientError', (e) => r.tlsErrors.push(e.message));
  await new Promise((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = (p = '/hook', host = '127.0.0.1') => `${tls ? 'https' : 'http'}://${host}:${r.server.address().port}${p}`;
  r.on = (p) => r.got.filter((g) => g.path === p);
  r.wait = async (p, n, ms = 20000) => {
    const until = Date.now() + ms;
    while (r.on(p).length < n && Date.now() < until) await sleep(50);
    assert.ok(r.on(p).length >= n, `the receiver got ${r.on(p).length} of ${n} requests on ${p} in ${ms} ms`);
    return r.on(p);
  };
  r.close = async () => {
    for (const h of r.hung) h.res.destroy();
    r.server.closeAllConnections?.();
    await new Promise((resolve) => r.server.close(resolve));
  };
  return r;
}

const hook = await receiver();
after(() => hook.close());

const admin = () => ({ headers: { 'X-API-Key': ctx.key } });
const createRule = (body, key = ctx.key) => ctx.request('POST', '/api/v1/alerts', { body, headers: { 'X-API-Key': key } });
const listRules = (key = ctx.key) => ctx.get('/api/v1/alerts', { headers: { 'X-API-Key': key } });
const sign = (secret, body) => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');

/** A cold start of `fn` with init `init` ms, `minutesAgo` minutes ago. */
const cold = (fn, init, minutesAgo = 1, extra = {}) =>
  fullRecord({ function_name: fn, init_duration_ms: init, timestamp: isoAgo(minutesAgo), ...extra });

async function functionId(name) {
  const rows = await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(name)}`);
  return rows[0].id;
}

/** Resolves once the evaluator has evaluated rule `ruleId` `n` more times (alert_states.evaluated_at). */
async function evaluations(dbUrl, ruleId, n, ms = 15000) {
  const seen = new Set();
  const q = `SELECT max(evaluated_at)::text AS at FROM alert_states WHERE rule_id = ${lit(ruleId)}`;
  for (const until = Date.now() + ms; seen.size <= n; await sleep(100)) {
    assert.ok(Date.now() < until, `${seen.size - 1} of ${n} evaluations of rule ${ruleId} in ${ms} ms`);
    const [row] = await psqlRows(dbUrl, q);
    if (row.at) seen.add(row.at);
  }
}

/** Checks a delivery as a receiver must: the signature over the raw body, the delivery id. */
function verified(delivery, secret) {
  assert.equal(delivery.headers['x-coldstart-signature'], sign(secret, delivery.body), 'X-Coldstart-Signature is HMAC-SHA256 of the body');
  assert.equal(delivery.headers['content-type'], 'application/json');
  assert.match(delivery.headers['x-coldstart-delivery'], /^[0-9a-f-]{36}$/);
  return JSON.parse(delivery.body);
}

test('POST /alerts: every field checked, each error at its place, nothing stored', async () => {
  const good = { name: 'slow init', metric: 'init_p95_ms', threshold: 800, webhook_url: hook.url('/v') };
  const cases = [
    [{ ...good, name: undefined }, ['body', 'name'], 'missing'],
    [{ ...good, name: '' }, ['body', 'name'], 'string_type'],
    [{ ...good, metric: 'p99' }, ['body', 'metric'], 'enum'],
    [{ ...good, metric: undefined }, ['body', 'metric'], 'missing'],
    [{ ...good, threshold: '800' }, ['body', 'threshold'], 'float_type'],
    [{ ...good, threshold: -1 }, ['body', 'threshold'], 'float_range'],
    [{ ...good, metric: 'cold_start_rate', threshold: 101 }, ['body', 'threshold'], 'float_range'],
    [{ ...good, window_minutes: 0 }, ['body', 'window_minutes'], 'int_range'],
    [{ ...good, window_minutes: 1.5 }, ['body', 'window_minutes'], 'int_type'],
    [{ ...good, min_samples: 0 }, ['body', 'min_samples'], 'int_range'],
    [{ ...good, function_id: 'orders' }, ['body', 'function_id'], 'uuid_parsing'],
    [{ ...good, format: 'teams' }, ['body', 'format'], 'enum'],
    [{ ...good, webhook_url: undefined }, ['body', 'webhook_url'], 'missing'],
    [{ ...good, webhook_url: 'ftp://example.com/x' }, ['body', 'webhook_url'], 'url_parsing'],
    [{ ...good, webhook_url: 'https://hooks.example.com:0/x' }, ['body', 'webhook_url'], 'url_parsing'],
    [{ ...good, webhook_url: 'https://user@hooks.example.com/x' }, ['body', 'webhook_url'], 'url_parsing'],
    [{ ...good, webhook_url: 'http://user:pw@example.com/x' }, ['body', 'webhook_url'], 'url_parsing'],
    [{ ...good, webhook_url: 'http://example.com:99999/' }, ['body', 'webhook_url'], 'url_parsing'],
    [{ ...good, treshold: 5 }, ['body', 'treshold'], 'extra_forbidden'],
  ];
  for (const [body, loc, type] of cases) {
    const res = await createRule(JSON.parse(JSON.stringify(body)));
    const hit = assertValidationError(res, loc, type, JSON.stringify(body));
    assert.ok(hit.msg.length > 5, hit.msg);
  }
  const several = await createRule({ name: 5, metric: 'x', webhook_url: 'nope' });
  assert.deepEqual(several.json.errors.map((e) => e.loc[1]).sort(), ['metric', 'name', 'threshold', 'webhook_url']);
  assertValidationError(await createRule([good]), ['body'], 'json_invalid');
  const scheme = await createRule({ ...good, webhook_url: 'ftp://hooks.example.com/x' });
  assert.match(scheme.json.errors[0].msg, /http:\/\/ or https:\/\//);
  assertErrorBody(await createRule({ ...good, function_id: NO_SUCH_ID }), 404, 'NOT_FOUND', 'unknown function');
  assert.equal(await ctx.count('SELECT count(*) FROM alert_rules'), 0, 'nothing stored');
});

test('create, list and delete: the secret is shown once; read keys list, only admin keys change', async () => {
  const res = await createRule({ name: 'crud', metric: 'cold_start_rate', threshold: 12.5, webhook_url: hook.url('/crud?token=s3cr3t') });
  assert.equal(res.status, 201, res.text);
  const rule = res.json;
  assert.match(rule.secret, /^whsec_[0-9a-f]{64}$/);
  assert.deepEqual(
    {
      scope: rule.scope,
      function_id: rule.function_id,
      metric: rule.metric,
      threshold: rule.threshold,
      window_minutes: rule.window_minutes,
      min_samples: rule.min_samples,
      format: rule.format,
    },
    { scope: 'project', function_id: null, metric: 'cold_start_rate', threshold: 12.5, window_minutes: 60, min_samples: 1, format: 'json' },
  );
  assert.equal(rule.webhook_origin, hook.url('').replace(/\/?$/, ''), 'the path (which may hold a token) is never shown');

  const read = (await ctx.request('POST', '/api/v1/api-keys', { body: { scopes: ['read'] }, ...admin() })).json.key;
  const list = await listRules(read);
  assert.equal(list.status, 200, list.text);
  const listed = list.json.alerts.find((a) => a.id === rule.id);
  assert.ok(listed, list.text);
  assert.deepEqual(listed.firing, []);
  assert.deepEqual(listed.deliveries, { pending: 0, delivered: 0, failed: 0, last_attempt_at: null, last_error: null });
  assert.ok(!list.text.includes(rule.secret) && !list.text.includes('s3cr3t'), 'neither the secret nor the URL path is listed');
  assert.ok(!JSON.stringify(ctx.server.stderrLines).includes(rule.secret), 'the secret is never logged');

  assertErrorBody(
    await createRule({ name: 'x', metric: 'init_p95_ms', threshold: 1, webhook_url: hook.url() }, read),
    403,
    'FORBIDDEN',
    'read key creates',
  );
  assertErrorBody(
    await ctx.request('DELETE', `/api/v1/alerts/${rule.id}`, { headers: { 'X-API-Key': read } }),
    403,
    'FORBIDDEN',
    'read key deletes',
  );

  // another project sees nothing of it, and cannot delete it
  const other = await createProjectKeys(ctx.db.url, 'Other', 'alerts-other');
  assert.deepEqual((await listRules(other.admin)).json.alerts, []);
  assertErrorBody(
    await ctx.request('DELETE', `/api/v1/alerts/${rule.id}`, { headers: { 'X-API-Key': other.admin } }),
    404,
    'NOT_FOUND',
    'other project',
  );

  const del = await ctx.request('DELETE', `/api/v1/alerts/${rule.id}`, admin());
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json, { id: rule.id, deleted: true });
  assertErrorBody(await ctx.request('DELETE', `/api/v1/alerts/${rule.id}`, admin()), 404, 'NOT_FOUND', 'deleted twice');
  assertErrorBody(await ctx.request('DELETE', '/api/v1/alerts/not-a-uuid', admin()), 404, 'NOT_FOUND', 'malformed id');
  assert.equal(
    (await listRules()).json.alerts.some((a) => a.id === rule.id),
    false,
  );
});

test('init p95 above N: fires once (not again while firing), signed, then resolves', async () => {
  const fn = 'alert-slow-fn';
  assert.equal((await ctx.batch({ invocations: Array.from({ length: 6 }, (_, i) => cold(fn, 1500 + i)) })).status, 200);
  const id = await functionId(fn);
  const res = await createRule({
    name: 'slow init',
    function_id: id,
    metric: 'init_p95_ms',
    threshold: 1000,
    window_minutes: 30,
    webhook_url: hook.url('/p95'),
  });
  assert.equal(res.status, 201, res.text);
  const { secret } = res.json;

  const [first] = await hook.wait('/p95', 1);
  const body = verified(first, secret);
  assert.equal(first.headers['x-coldstart-event'], 'firing');
  assert.equal(first.headers['x-coldstart-delivery'], body.delivery_id);
  assert.equal(body.event, 'firing');
  assert.deepEqual(body.rule.id, res.json.id);
  assert.equal(body.rule.name, 'slow init');
  assert.deepEqual(body.function, { id, name: fn });
  assert.equal(body.figures.unit, 'ms');
  assert.equal(body.figures.threshold, 1000);
  assert.equal(body.figures.samples, 6);
  assert.ok(body.figures.value > 1500 && body.figures.value < 1506, `p95 ${body.figures.value}`);
  assert.match(body.summary, /Init p95 of alert-slow-fn is 150\d\.\d ms .* above 1000 ms/);
  assert.equal(first.headers['x-coldstart-signature'] === sign('whsec_wrong', first.body), false);

  // still firing over the next evaluations (1 s apart): nothing more is sent
  await evaluations(ctx.db.url, res.json.id, 2);
  assert.equal(hook.on('/p95').length, 1, 'no repeat while firing');
  const listed = (await listRules()).json.alerts.find((a) => a.id === res.json.id);
  assert.deepEqual(
    listed.firing.map((f) => f.function_name),
    [fn],
  );
  assert.equal(listed.deliveries.delivered, 1);

  // many fast cold starts bring the p95 under the threshold: resolved, once
  assert.equal((await ctx.batch({ invocations: Array.from({ length: 200 }, () => cold(fn, 100)) })).status, 200);
  const both = await hook.wait('/p95', 2);
  const resolved = verified(both[1], secret);
  assert.equal(resolved.event, 'resolved');
  assert.equal(both[1].headers['x-coldstart-event'], 'resolved');
  assert.notEqual(resolved.delivery_id, body.delivery_id);
  assert.equal(resolved.figures.value, 100);
  assert.match(resolved.summary, /back to 100\.0 ms/);
  await evaluations(ctx.db.url, res.json.id, 2);
  assert.equal(hook.on('/p95').length, 2, 'nothing after resolved');
  assert.deepEqual((await listRules()).json.alerts.find((a) => a.id === res.json.id).firing, []);
});

test('cold start rate and init cost rules fire over a project; the Slack body is {"text"}', async () => {
  const fn = 'alert-rate-fn';
  const recs = [
    cold(fn, 300, 1, { memory_allocated_mb: 10240 }),
    cold(fn, 300, 1, { memory_allocated_mb: 10240 }),
    minimalRecord({ function_name: fn, timestamp: isoAgo(1) }),
  ];
  assert.equal((await ctx.batch({ invocations: recs })).status, 200);
  const rate = await createRule({
    name: 'rate',
    metric: 'cold_start_rate',
    threshold: 50,
    window_minutes: 10,
    webhook_url: hook.url('/rate'),
    format: 'slack',
  });
  // 2 cold starts of 0.3 s at 10 GB in 10 minutes: 6 GB-s, 0.0001 $, x 4320 for 30 days = 0.432 $/month
  const cost = await createRule({
    name: 'cost',
    metric: 'init_cost_monthly_usd',
    threshold: 0.4,
    window_minutes: 10,
    webhook_url: hook.url('/cost'),
  });
  assert.equal(rate.status, 201, rate.text);
  assert.equal(cost.status, 201, cost.text);
  // project-wide: the slow function of the test before (all its invocations cold) fires too
  const deliveries = await hook.wait('/rate', 2);
  const texts = deliveries.map((d) => {
    assert.equal(d.headers['x-coldstart-signature'], sign(rate.json.secret, d.body));
    const text = JSON.parse(d.body);
    assert.deepEqual(Object.keys(text), ['text']);
    return text.text;
  });
  const mine = texts.filter((t) => t.includes('alert-rate-fn'));
  assert.equal(mine.length, 1, texts.join('\n'));
  assert.match(mine[0], /FIRING.*rate: Cold start rate of alert-rate-fn is 66\.7 % .*\(3 invocations\), above 50 %/);
  assert.match(
    texts.find((t) => !t.includes('alert-rate-fn')),
    /Cold start rate of alert-slow-fn is 100\.0 %/,
  );
  const costs = (await hook.wait('/cost', 2)).map((d) => verified(d, cost.json.secret));
  const body = costs.find((b) => b.function.name === fn);
  assert.ok(body, JSON.stringify(costs.map((b) => b.summary)));
  assert.equal(body.rule.scope, 'project');
  assert.equal(body.function.name, fn);
  assert.equal(body.figures.unit, 'USD/month');
  assert.ok(Math.abs(body.figures.value - 0.432) < 0.001, `cost ${body.figures.value}`);
});

test('a regression rule names the package that made the new deployment slower', async () => {
  const fn = 'alert-regress-fn';
  const rec = (code_id, init, heavy, version, minutesAgo) =>
    cold(fn, init, minutesAgo, {
      code_id,
      function_version: '$LATEST',
      module_timings: { 'light-lib': 20, 'heavy-lib': heavy },
      module_tree: {
        name: '(init)',
        children: [
          { name: 'heavy-lib', version, self: heavy, inclusive: heavy },
          { name: 'light-lib', version: '1.0.0', self: 20, inclusive: 20 },
        ],
      },
    });
  const base = Array.from({ length: 25 }, (_, i) => rec('dep-base-0001', 200 + i, 50 + (i % 5), '1.0.0', 90 - i));
  const head = Array.from({ length: 25 }, (_, i) => rec('dep-head-0002', 300 + i, 150 + (i % 5), '2.0.0', 40 - i));
  assert.equal((await ctx.batch({ invocations: [...base, ...head] })).status, 200);
  const id = await functionId(fn);
  const res = await createRule({
    name: 'regressions',
    function_id: id,
    metric: 'regression',
    threshold: 20,
    webhook_url: hook.url('/regress'),
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.json.window_minutes, 10080);
  const [d] = await hook.wait('/regress', 1);
  const body = verified(d, res.json.secret);
  assert.equal(body.event, 'firing');
  assert.equal(body.regression.verdict, 'regression');
  assert.equal(body.regression.base.deployment, 'dep-base-0001');
  assert.equal(body.regression.head.deployment, 'dep-head-0002');
  assert.ok(body.figures.value > 20, `change ${body.figures.value} %`);
  const [top] = body.regression.packages;
  assert.equal(top.package, 'heavy-lib');
  assert.equal(top.base_version, '1.0.0');
  assert.equal(top.head_version, '2.0.0');
  // package medians come from day sketches: each within 1 % (docs/api-reference.md)
  assert.ok(Math.abs(top.change_ms - 100) <= 0.01 * (top.base_self_ms + top.head_self_ms) + 0.01, `change ${top.change_ms}`);
  assert.ok(!body.regression.packages.some((p) => p.package === 'light-lib'), 'an unchanged package is not blamed');
  assert.match(
    body.summary,
    /Deployment dep-head-0002 of alert-regress-fn made init \+\d+\.\d % slower .*heavy-lib 1\.0\.0 -> 2\.0\.0: \+(9[89]|10[01])\.\d ms/,
  );
});

// Last of the tests on the shared server: its failing https rules go on being retried.
test("https: delivered only to a receiver whose certificate is valid for the URL's host and chains to a trusted CA; http still works", async () => {
  const good = await receiver({ tls: certs.good });
  const wrongHost = await receiver({ tls: certs['wrong-host'] });
  const unknownCa = await receiver({ tls: certs['unknown-ca'] });
  // a receiver that speaks nothing newer than TLS 1.1 (coldstartd requires 1.2)
  const old = await receiver({ tls: { ...certs.good, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } });
  const s = ctx.server;
  try {
    const call = (method, p, body) => ctx.request(method, p, { body, headers: { 'X-API-Key': ctx.key } });
    assert.equal((await call('POST', '/api/v1/ingest', cold('https-fn', 2000))).status, 200);
    const functionIdOfHttpsFn = await functionId('https-fn');
    const rules = {};
    for (const [name, url] of [
      ['by name', good.url('/tls?token=s3cr3t-path', 'localhost')],
      ['by address', good.url('/tls-ip')],
      ['wrong host', wrongHost.url('/wrong?token=s3cr3t-path', 'localhost')],
      ['unknown CA', unknownCa.url('/unknown', 'localhost')],
      ['TLS 1.1', old.url('/old', 'localhost')],
      ['plain http', hook.url('/plain-too')],
    ]) {
      const res = await call('POST', '/api/v1/alerts', {
        name,
        function_id: functionIdOfHttpsFn,
        metric: 'init_p95_ms',
        threshold: 1000,
        webhook_url: url,
      });
      assert.equal(res.status, 201, res.text);
      rules[name] = res.json;
    }
    assert.equal(rules['by name'].webhook_origin, `https://localhost:${good.server.address().port}`);

    // delivered over TLS, signed, with the URL's host name as SNI (none for an address: RFC 6066)
    const [byName] = await good.wait('/tls?token=s3cr3t-path', 1);
    const body = verified(byName, rules['by name'].secret);
    assert.equal(body.event, 'firing');
    assert.equal(body.function.name, 'https-fn');
    assert.equal(byName.servername, 'localhost');
    assert.match(byName.protocol, /^TLSv1\.[23]$/);
    assert.equal(byName.headers.host, `localhost:${good.server.address().port}`);
    const [byAddress] = await good.wait('/tls-ip', 1);
    verified(byAddress, rules['by address'].secret);
    assert.equal(byAddress.servername, false);
    const [plain] = await hook.wait('/plain-too', 1);
    verified(plain, rules['plain http'].secret);

    // refused in the handshake: nothing sent, the attempt failed with its reason, retried later
    const expected = {
      'wrong host': /^TLS handshake with localhost: certificate verify failed: hostname mismatch$/,
      'unknown CA': /^TLS handshake with localhost: certificate verify failed: unable to get local issuer certificate$/,
      'TLS 1.1': /^TLS handshake with localhost: .*(protocol version|unsupported protocol)/,
    };
    for (const [name, reason] of Object.entries(expected)) {
      const q = `SELECT attempts, last_error, delivered_at IS NULL AS pending, failed_at IS NULL AS not_given_up,
                        next_attempt_at > last_attempt_at AS retry_planned FROM alert_outbox WHERE rule_id = ${lit(rules[name].id)}`;
      let row;
      for (const until = Date.now() + 15000; Date.now() < until; await sleep(100)) {
        [row] = await ctx.rows(q);
        if (row?.attempts >= 2) break;
      }
      assert.ok(row?.attempts >= 2, `${name}: retried (${JSON.stringify(row)})`);
      assert.match(row.last_error, reason, name);
      assert.deepEqual([row.pending, row.not_given_up, row.retry_planned], [true, true, true], name);
      const listed = (await call('GET', '/api/v1/alerts')).json.alerts.find((a) => a.id === rules[name].id);
      assert.match(listed.deliveries.last_error, reason);
      assert.equal(listed.deliveries.delivered, 0);
    }
    for (const r of [wrongHost, unknownCa, old]) assert.deepEqual(r.got, [], 'no request reached a receiver that failed verification');
    // coldstartd aborted those handshakes itself, with the alert that says why
    assert.match(wrongHost.tlsErrors.join('\n'), /alert (bad certificate|certificate unknown)/);
    assert.match(unknownCa.tlsErrors.join('\n'), /alert unknown ca/);
    assert.ok(old.tlsErrors.length > 0, 'the TLS 1.1 receiver saw the handshake fail');

    // the log says what trust was loaded, and each failure by delivery id: never the secret or the URL's path
    const trust = s.logs.find((l) => l.msg === 'alerts: https webhooks verify certificates');
    assert.ok(trust, s.describe());
    assert.equal(trust.ca_file, certs.caFile);
    assert.equal(trust.ca_file_certificates, 1);
    assert.ok(trust.system_certificates > 0, 'the system store (ca-certificates) is loaded too');
    const failed = s.logs.filter((l) => l.msg === 'alert delivery failed' && /hostname mismatch/.test(l.error));
    assert.ok(failed.length >= 2, s.describe());
    const logText = s.stderrLines.join('\n');
    for (const secret of ['s3cr3t-path', ...Object.values(rules).map((r) => r.secret)])
      assert.ok(!logText.includes(secret), `${secret} logged`);
    assert.equal(good.on('/tls?token=s3cr3t-path').length, 1, 'once');
  } finally {
    await Promise.all([good, wrongHost, unknownCa, old].map((r) => r.close()));
  }

  // a CA file that cannot be used stops the start, with one line naming the setting
  const bad = await writeFile(path.join(certs.dir, 'not-pem.txt'), 'not a certificate\n').then(() => path.join(certs.dir, 'not-pem.txt'));
  await Promise.all(
    [
      ['/nonexistent/ca.pem', /No such file/],
      [certs.dir, /not a file/],
      [bad, /no PEM certificate/],
    ].map(async ([file, reason]) => {
      const r = await runCli(['serve'], {
        env: { DATABASE_URL: ctx.db.url, HOST: '127.0.0.1', PORT: await freePort(), ALERT_WEBHOOK_CA_FILE: file },
        timeoutMs: 15000,
      });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr, /ALERT_WEBHOOK_CA_FILE/);
      assert.match(r.stderr, reason);
    }),
  );
});

// The tests below have a database and servers of their own: they run at the same time.
describe('with databases of their own', { concurrency: true }, () => {
  test('a delivery survives coldstartd killed mid-delivery: refused, then hung, then sent again with the same id; SIGTERM mid-delivery stops at once', async () => {
    const db = await createMigratedDatabase();
    const keys = await createProjectKeys(db.url, 'Restart', 'alerts-restart');
    const env = { ...FAST, ALERT_ALLOW_PRIVATE_WEBHOOKS: '1', ALERT_EVAL_INTERVAL: 1 };
    let s = await startServer({ dbUrl: db.url, env });
    try {
      const call = (server, method, p, body) => http(server.base, method, p, { body, headers: { 'X-API-Key': keys.admin } });
      assert.equal((await call(s, 'POST', '/api/v1/ingest', cold('restart-fn', 2000))).status, 200);
      hook.plans['/restart'] = ['refuse', 'hang'];
      const res = await call(s, 'POST', '/api/v1/alerts', {
        name: 'restart',
        metric: 'init_p95_ms',
        threshold: 1000,
        webhook_url: hook.url('/restart'),
      });
      assert.equal(res.status, 201, res.text);
      const [refused, hung] = await hook.wait('/restart', 2);
      assert.equal(refused.answer, 'refuse');
      assert.equal(hung.answer, 'hang');
      const id = refused.headers['x-coldstart-delivery'];
      assert.equal(hung.headers['x-coldstart-delivery'], id, 'the retry is the same delivery');
      assert.equal(refused.headers['x-coldstart-attempt'], '1');
      assert.equal(hung.headers['x-coldstart-attempt'], '2');
      assert.equal(hung.body, refused.body, 'the same bytes');
      const [row] = await psqlRows(db.url, `SELECT attempts, last_error, delivered_at FROM alert_outbox`);
      assert.deepEqual(row, { attempts: 1, last_error: 'HTTP 503', delivered_at: null });

      s.child.kill('SIGKILL'); // while the receiver holds the second attempt
      await s.exited;
      for (const h of hook.hung.filter((x) => x.path === '/restart')) h.res.destroy();
      s = await startServer({ dbUrl: db.url, env });
      const all = await hook.wait('/restart', 3);
      assert.equal(all[2].answer, 'ok');
      assert.equal(all[2].headers['x-coldstart-delivery'], id, 'after the restart: the same delivery id');
      assert.equal(all[2].body, refused.body);
      assert.equal(all[2].headers['x-coldstart-signature'], sign(res.json.secret, all[2].body));
      await evaluations(db.url, res.json.id, 2);
      assert.equal(hook.on('/restart').length, 3, 'delivered once, nothing new while still firing');
      const rows = await psqlRows(db.url, `SELECT id, event, delivered_at IS NOT NULL AS delivered FROM alert_outbox`);
      assert.deepEqual(rows, [{ id, event: 'firing', delivered: true }]);

      // SIGTERM while a delivery hangs: the server stops at once (not after ALERT_WEBHOOK_TIMEOUT, 30 s
      // here) and the abandoned attempt is not counted: it is due again after a restart
      hook.plans['/shutdown'] = ['hang'];
      const second = await call(s, 'POST', '/api/v1/alerts', {
        name: 'shutdown',
        metric: 'init_p95_ms',
        threshold: 1500,
        webhook_url: hook.url('/shutdown'),
      });
      assert.equal(second.status, 201, second.text);
      await hook.wait('/shutdown', 1);
      const t0 = Date.now();
      assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.describe());
      assert.ok(Date.now() - t0 < 15000, `stopped in ${Date.now() - t0} ms`);
      for (const h of hook.hung.filter((x) => x.path === '/shutdown')) h.res.destroy();
      const [pending] = await psqlRows(db.url, `SELECT attempts, delivered_at FROM alert_outbox WHERE rule_id = ${lit(second.json.id)}`);
      assert.deepEqual(pending, { attempts: 0, delivered_at: null });
    } finally {
      assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.describe());
      await dropDatabase(db.name);
    }
  });

  test('two replicas on one database: each notification is sent once', async () => {
    const db = await createMigratedDatabase();
    const keys = await createProjectKeys(db.url, 'Replicas', 'alerts-replicas');
    const env = { ...FAST, ALERT_ALLOW_PRIVATE_WEBHOOKS: '1' };
    const servers = await Promise.all([startServer({ dbUrl: db.url, env }), startServer({ dbUrl: db.url, env })]);
    try {
      const [a, b] = servers;
      const key = { 'X-API-Key': keys.admin };
      const fns = ['replica-a', 'replica-b', 'replica-c'];
      const recs = fns.map((fn) => cold(fn, 3000));
      assert.equal((await http(a.base, 'POST', '/api/v1/ingest/batch', { body: { invocations: recs }, headers: key })).status, 200);
      // a slow receiver: each delivery takes 300 ms, so both replicas are at it at the same time
      const slow = await receiver();
      slow.mode = 'hang';
      const release = setInterval(() => {
        for (const h of slow.hung.splice(0)) setTimeout(() => h.res.writeHead(200).end('ok'), 300);
      }, 50);
      try {
        const res = await http(b.base, 'POST', '/api/v1/alerts', {
          body: { name: 'replicas', metric: 'init_p95_ms', threshold: 1000, webhook_url: slow.url('/replicas') },
          headers: key,
        });
        assert.equal(res.status, 201, res.text);
        await slow.wait('/replicas', 3);
        await evaluations(db.url, res.json.id, 3);
        const got = slow.on('/replicas');
        const ids = got.map((g) => g.headers['x-coldstart-delivery']);
        assert.equal(got.length, 3, `one notification per function, each once: ${ids.join(', ')}`);
        assert.deepEqual(got.map((g) => JSON.parse(g.body).function.name).sort(), fns);
        assert.equal(new Set(ids).size, 3);
        assert.equal(await psqlRows(db.url, 'SELECT count(*)::int AS n FROM alert_outbox').then((r) => r[0].n), 3);
      } finally {
        clearInterval(release);
        await slow.close();
      }
    } finally {
      for (const s of servers) assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.describe());
      await dropDatabase(db.name);
    }
  });

  test("webhooks to the server's own network are refused by default: metadata address, localhost, private ranges, and names resolving there", async () => {
    const db = await createMigratedDatabase();
    const keys = await createProjectKeys(db.url, 'SSRF', 'alerts-ssrf');
    const s = await startServer({ dbUrl: db.url, env: FAST });
    try {
      const post = (url, extra = {}) =>
        http(s.base, 'POST', '/api/v1/alerts', {
          body: { name: 'ssrf', metric: 'init_p95_ms', threshold: 1, webhook_url: url, ...extra },
          headers: { 'X-API-Key': keys.admin },
        });
      for (const url of [
        'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
        'http://localhost:8080/hook',
        'http://LOCALHOST./hook',
        'http://api.localhost/hook',
        'http://127.0.0.1/hook',
        'http://127.1.2.3:9000/',
        'http://10.1.2.3/',
        'http://172.16.0.1/',
        'http://192.168.1.1/',
        'http://0.0.0.0/',
        'http://[::1]/',
        'http://[::ffff:169.254.169.254]/',
        'http://[fe80::1]/',
        'http://[fd00::1]/',
        hook.url('/ssrf'),
        'https://169.254.169.254/latest/meta-data/',
        'https://localhost:8443/hook',
        'https://10.1.2.3/',
        'https://[::1]:8443/',
      ]) {
        const hit = assertValidationError(await post(url), ['body', 'webhook_url'], 'url_refused', url);
        assert.match(hit.msg, /ALERT_ALLOW_PRIVATE_WEBHOOKS/);
      }
      // a public address is accepted (and deleted again: nothing listens there)
      for (const [url, origin] of [
        ['http://203.0.113.7/hook', 'http://203.0.113.7:80'],
        ['https://203.0.113.7/hook', 'https://203.0.113.7:443'],
      ]) {
        const pub = await post(url);
        assert.equal(pub.status, 201, pub.text);
        assert.equal(pub.json.webhook_origin, origin);
        assert.equal((await http(s.base, 'DELETE', `/api/v1/alerts/${pub.json.id}`, { headers: { 'X-API-Key': keys.admin } })).status, 200);
      }

      // a name is checked on the address it resolves to, at each delivery (DNS rebinding)
      const name = os.hostname();
      const addr = await lookup(name).catch(() => null);
      const local = addr && /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|f[cd])/.test(addr.address);
      if (!local) {
        console.log(`# skipped the name check: ${name} resolves to ${addr?.address ?? 'nothing'}`);
        return;
      }
      assert.equal(
        (await http(s.base, 'POST', '/api/v1/ingest', { body: cold('ssrf-fn', 5000), headers: { 'X-API-Key': keys.admin } })).status,
        200,
      );
      // over https too: the address is checked before any TLS
      for (const scheme of ['http', 'https']) {
        const url = `${scheme}://${name}:${hook.server.address().port}/ssrf-name`;
        const res = await post(url);
        assert.equal(res.status, 201, `${url}: a name is accepted at creation: ${res.text}`);
        let listed;
        for (const until = Date.now() + 15000; Date.now() < until; await sleep(200)) {
          listed = (await http(s.base, 'GET', '/api/v1/alerts', { headers: { 'X-API-Key': keys.admin } })).json.alerts.find(
            (a) => a.id === res.json.id,
          );
          if (listed.deliveries.last_error) break;
        }
        assert.match(listed.deliveries.last_error, new RegExp(`refused: ${name} resolves to ${addr.address.replace(/\./g, '\\.')}`), url);
      }
      assert.equal(hook.on('/ssrf-name').length, 0, 'nothing reached the receiver');
    } finally {
      assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.describe());
      await dropDatabase(db.name);
    }
  });
});
