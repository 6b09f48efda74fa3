// Scopes (issue 19): every route against keys of every scope, allowed or 403 FORBIDDEN.
//
// The scope each operation needs is read from docs/openapi.yaml (`security: - ApiKeyAuth:
// [scope]`); openapi.test.mjs checks that the document lists exactly the server's routes, and
// this file refuses a documented operation it has no request for. So a new route cannot be added
// without its scope being declared, documented and exercised here against every kind of key.
// Also: a key mints only keys within its own scopes, and rate limits per project, so that minting
// keys buys no budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { useServer, startServer, createProjectKeys, http, minimalRecord, assertErrorBody, REPO, KEY_RE } from './harness.mjs';
import { parseYaml } from './openapi-check.mjs';
import { recordLine, logEvents, dataMessage, recordData, deliveryRequest } from './cloudwatch-firehose.mjs';

const doc = parseYaml(readFileSync(path.join(REPO, 'docs/openapi.yaml'), 'utf8'));
const ADMIN_SECRET = 'sc-admin-' + randomBytes(24).toString('hex');
const ctx = useServer({ env: { APP_SECRET_KEY: ADMIN_SECRET, RATE_LIMIT_QUERY: 100000, RATE_LIMIT_INGEST: 100000 } });
const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';
const SCOPES = ['ingest', 'read', 'admin'];

/** One request per documented operation, for a key: what the matrix sends. */
const REQUESTS = {
  'get /api/v1/health': () => ({ method: 'GET', path: '/api/v1/health' }),
  'post /api/v1/ingest': (key) => ({
    method: 'POST',
    path: '/api/v1/ingest',
    body: minimalRecord({ function_name: 'scope-fn' }),
    headers: { 'X-API-Key': key },
  }),
  'post /api/v1/ingest/batch': (key) => ({
    method: 'POST',
    path: '/api/v1/ingest/batch',
    body: { invocations: [minimalRecord({ function_name: 'scope-fn' })] },
    headers: { 'X-API-Key': key },
  }),
  'post /api/v1/ingest/firehose': (key) => {
    const r = deliveryRequest(
      [{ data: recordData(dataMessage(logEvents([recordLine(minimalRecord({ function_name: 'scope-fn' })) + '\n']))) }],
      { accessKey: key },
    );
    return { method: 'POST', path: '/api/v1/ingest/firehose', body: r.body, headers: r.headers, firehose: true };
  },
  'get /api/v1/functions': (key) => ({ method: 'GET', path: '/api/v1/functions', headers: { 'X-API-Key': key } }),
  'get /api/v1/functions/{function_id}': (key) => ({
    method: 'GET',
    path: `/api/v1/functions/${NO_SUCH_ID}`,
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/functions/{function_id}/deployments': (key) => ({
    method: 'GET',
    path: `/api/v1/functions/${NO_SUCH_ID}/deployments`,
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/functions/{function_id}/compare': (key) => ({
    method: 'GET',
    path: `/api/v1/functions/${NO_SUCH_ID}/compare`,
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/functions/{function_id}/cold-starts': (key) => ({
    method: 'GET',
    path: `/api/v1/functions/${NO_SUCH_ID}/cold-starts`,
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/functions/{function_id}/cold-starts/typical': (key) => ({
    method: 'GET',
    path: `/api/v1/functions/${NO_SUCH_ID}/cold-starts/typical`,
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/functions/{function_id}/cold-starts/tree': (key) => ({
    method: 'GET',
    path: `/api/v1/functions/${NO_SUCH_ID}/cold-starts/tree?invocation_id=x`,
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/api-keys': (key) => ({ method: 'GET', path: '/api/v1/api-keys', headers: { 'X-API-Key': key } }),
  // asks for an admin-only key, so that an admin-only key may make it too
  'post /api/v1/api-keys': (key) => ({
    method: 'POST',
    path: '/api/v1/api-keys',
    body: { name: 'matrix', scopes: ['admin'] },
    headers: { 'X-API-Key': key },
  }),
  'delete /api/v1/api-keys/{key_id}': (key) => ({
    method: 'DELETE',
    path: `/api/v1/api-keys/${NO_SUCH_ID}`,
    headers: { 'X-API-Key': key },
  }),
  'post /api/v1/projects': (key) => ({
    method: 'POST',
    path: '/api/v1/projects',
    body: { name: 'Matrix', slug: 'matrix-' + randomBytes(3).toString('hex') },
    headers: { 'X-API-Key': key },
  }),
  'get /api/v1/alerts': (key) => ({ method: 'GET', path: '/api/v1/alerts', headers: { 'X-API-Key': key } }),
  // a public documentation address (203.0.113.0/24): accepted, and never reached (no data fires it)
  'post /api/v1/alerts': (key) => ({
    method: 'POST',
    path: '/api/v1/alerts',
    body: { name: 'matrix', metric: 'init_p95_ms', threshold: 100000, webhook_url: 'http://203.0.113.9/hook' },
    headers: { 'X-API-Key': key },
  }),
  'delete /api/v1/alerts/{alert_id}': (key) => ({ method: 'DELETE', path: `/api/v1/alerts/${NO_SUCH_ID}`, headers: { 'X-API-Key': key } }),
};

/** Every documented operation but preflights: {id, scope (null: no key), bearer (admin token)}. */
function operations() {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of ['get', 'post', 'delete', 'put', 'patch']) {
      const op = item[m];
      if (!op) continue;
      const security = op.security ?? doc.security;
      const apiKey = security.find((s) => s.ApiKeyAuth);
      const bearer = security.some((s) => s.AdminBearer);
      if (apiKey) assert.equal(apiKey.ApiKeyAuth.length, 1, `${m} ${p}: ApiKeyAuth must name exactly one scope`);
      const scope = apiKey ? apiKey.ApiKeyAuth[0] : null;
      if (scope) assert.ok(SCOPES.includes(scope), `${m} ${p}: unknown scope ${scope}`);
      const fh = security.find((s) => s.FirehoseAccessKey);
      if (fh) assert.deepEqual(fh.FirehoseAccessKey, [scope], `${m} ${p}: FirehoseAccessKey names the same scope`);
      out.push({ id: `${m} ${p}`, scope, bearer });
    }
  }
  return out;
}

const keys = {};
async function mint(scopes) {
  const res = await ctx.request('POST', '/api/v1/api-keys', {
    body: { name: scopes.join('+'), scopes },
    headers: { 'X-API-Key': ctx.key },
  });
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(res.json.scopes, scopes);
  return res.json.key;
}

test('set-up: a key of each scope', async () => {
  keys.all = ctx.key;
  keys.ingest = ctx.ingestKey;
  for (const s of SCOPES) if (!keys[s]) keys[s] = await mint([s]);
  keys['read+admin'] = await mint(['read', 'admin']);
});

test('the document declares a scope for every keyed operation, and this file has a request for each', () => {
  const ops = operations();
  assert.ok(ops.length >= 10, `only ${ops.length} operations found`);
  for (const op of ops) assert.ok(REQUESTS[op.id], `no request for ${op.id}: add it to REQUESTS`);
  assert.deepEqual(Object.keys(REQUESTS).sort(), ops.map((o) => o.id).sort(), 'REQUESTS names operations the document does not have');
  const expected = {
    'get /api/v1/health': null,
    'post /api/v1/ingest': 'ingest',
    'post /api/v1/ingest/batch': 'ingest',
    'post /api/v1/ingest/firehose': 'ingest',
    'get /api/v1/functions': 'read',
    'get /api/v1/functions/{function_id}': 'read',
    'get /api/v1/functions/{function_id}/deployments': 'read',
    'get /api/v1/functions/{function_id}/compare': 'read',
    'get /api/v1/functions/{function_id}/cold-starts': 'read',
    'get /api/v1/functions/{function_id}/cold-starts/typical': 'read',
    'get /api/v1/functions/{function_id}/cold-starts/tree': 'read',
    'get /api/v1/api-keys': 'admin',
    'post /api/v1/api-keys': 'admin',
    'delete /api/v1/api-keys/{key_id}': 'admin',
    'post /api/v1/projects': null,
    'get /api/v1/alerts': 'read',
    'post /api/v1/alerts': 'admin',
    'delete /api/v1/alerts/{alert_id}': 'admin',
  };
  for (const op of ops) if (op.id in expected) assert.equal(op.scope, expected[op.id], `${op.id}: documented scope`);
});

test('scope matrix: each kind of key against each route is allowed, or 403 FORBIDDEN', async () => {
  const table = [];
  for (const op of operations()) {
    const row = [op.id.padEnd(40)];
    for (const [name, key] of Object.entries(keys)) {
      const spec = REQUESTS[op.id](key);
      const res = await http(ctx.base, spec.method, spec.path, { body: spec.body, headers: spec.headers });
      const has = name === 'all' || name.split('+').includes(op.scope);
      const label = `${op.id} with the ${name} key`;
      if (op.bearer) {
        // the onboarding route takes the admin token, never a key, whatever its scopes
        assertErrorBody(res, 401, 'AUTHENTICATION_ERROR', label);
        row.push('401');
      } else if (!op.scope || has) {
        assert.ok(![401, 403].includes(res.status), `${label}: expected to be allowed, got ${res.status} ${res.text}`);
        assert.ok(res.status < 500, `${label}: ${res.status} ${res.text}`);
        row.push(String(res.status));
      } else {
        assert.equal(res.status, 403, `${label}: expected 403, got ${res.status} ${res.text}`);
        assert.equal(res.json.error_code, 'FORBIDDEN', label);
        assert.match(res.json.detail, new RegExp(`scope ${op.scope}\\b`), `${label}: the detail names the missing scope`);
        if (spec.firehose) assert.equal(typeof res.json.requestId, 'string', `${label}: Firehose's error shape`);
        else assert.deepEqual(Object.keys(res.json).sort(), ['detail', 'error_code', 'timestamp'], label);
        row.push('403');
      }
    }
    table.push(row.join(' '));
  }
  console.log(`# ${''.padEnd(40)} ${Object.keys(keys).join(' ')}\n# ${table.join('\n# ')}`);
});

test('a forbidden call changes nothing: an ingest key cannot create or revoke keys, or read', async () => {
  const before = await ctx.count('SELECT count(*) FROM api_keys');
  const adminId = (await ctx.get('/api/v1/api-keys', { headers: { 'X-API-Key': ctx.key } })).json.api_keys.find(
    (k) => k.name === 'admin',
  ).id;
  for (const force of ['', '?force=true']) {
    const del = await ctx.request('DELETE', `/api/v1/api-keys/${adminId}${force}`, { headers: { 'X-API-Key': keys.ingest } });
    assertErrorBody(del, 403, 'FORBIDDEN', 'revoke with an ingest key');
  }
  const mk = await ctx.request('POST', '/api/v1/api-keys', { body: { scopes: ['ingest'] }, headers: { 'X-API-Key': keys.ingest } });
  assertErrorBody(mk, 403, 'FORBIDDEN', 'create with an ingest key');
  assert.equal(await ctx.count('SELECT count(*) FROM api_keys'), before);
  assert.equal(await ctx.sql(`SELECT is_active FROM api_keys WHERE id = '${adminId}'`), 't');
});

test('a key creates only keys within its own scopes', async () => {
  const post = (key, body) => ctx.request('POST', '/api/v1/api-keys', { body, headers: { 'X-API-Key': key } });
  // an admin-only key may make admin-only keys, not keys that ingest or read
  assert.equal((await post(keys.admin, { scopes: ['admin'] })).status, 201);
  for (const scopes of [['ingest'], ['read'], ['admin', 'read'], ['ingest', 'read', 'admin']]) {
    const r = await post(keys.admin, { scopes });
    assertErrorBody(r, 403, 'FORBIDDEN', `admin-only key asking for ${scopes}`);
    assert.match(r.json.detail, /only keys with scopes it has itself/);
  }
  const noScopes = await post(keys.admin, {});
  assertErrorBody(noScopes, 403, 'FORBIDDEN', 'an admin-only key asking for the default (ingest)');
  // read+admin can make read keys; the full key anything
  const r = await post(keys['read+admin'], { scopes: ['read'] });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(r.json.scopes, ['read']);
  assert.equal((await post(keys['read+admin'], { scopes: ['ingest'] })).status, 403);
  const full = await post(ctx.key, { scopes: ['ingest', 'read', 'admin'] });
  assert.equal(full.status, 201, full.text);
  assert.match(full.json.key, KEY_RE);
  assert.deepEqual(full.json.scopes, ['ingest', 'read', 'admin']);
  // the default is an ingest key
  const dflt = await post(ctx.key, { name: 'function' });
  assert.deepEqual(dflt.json.scopes, ['ingest']);
  // bad scope lists are 400 with the place
  for (const [scopes, loc] of [
    [[], ['body', 'scopes']],
    ['ingest', ['body', 'scopes']],
    [
      ['ingest', 'root'],
      ['body', 'scopes', 1],
    ],
    [[1], ['body', 'scopes', 0]],
  ]) {
    const bad = await post(ctx.key, { scopes });
    assertErrorBody(bad, 400, 'VALIDATION_ERROR', `scopes ${JSON.stringify(scopes)}`);
    assert.deepEqual(bad.json.errors[0].loc, loc);
  }
});

test('POST /projects hands back an admin key and an ingest key; the ingest key can only ingest', async () => {
  const slug = 'onb-' + randomBytes(3).toString('hex');
  const res = await ctx.request('POST', '/api/v1/projects', {
    body: { name: 'Onboarded', slug },
    headers: { Authorization: `Bearer ${ADMIN_SECRET}` },
  });
  assert.equal(res.status, 201, res.text);
  const ingestKey = res.json.ingest_key.key;
  const ok = await ctx.ingest(minimalRecord({ function_name: 'onb-fn' }), { key: ingestKey });
  assert.equal(ok.status, 200, ok.text);
  assertErrorBody(
    await ctx.get('/api/v1/functions', { headers: { 'X-API-Key': ingestKey } }),
    403,
    'FORBIDDEN',
    'read with the ingest key',
  );
  const list = await ctx.get('/api/v1/functions', { headers: { 'X-API-Key': res.json.api_key.key } });
  assert.deepEqual(
    list.json.functions.map((f) => f.function_name),
    ['onb-fn'],
  );
});

test('rate limits per project: minting more keys buys no more budget', async () => {
  const slug = 'rlp-' + randomBytes(3).toString('hex');
  const { admin } = await createProjectKeys(ctx.db.url, 'Per project', slug);
  const s = await startServer({
    dbUrl: ctx.db.url,
    env: { RATE_LIMIT_INGEST: 3, RATE_LIMIT_PROJECT_INGEST: 5, RATE_LIMIT_WINDOW: 60, RATE_LIMIT_QUERY: 1000 },
  });
  try {
    const minted = [];
    for (let i = 0; i < 4; i++) {
      const r = await http(s.base, 'POST', '/api/v1/api-keys', { body: { scopes: ['ingest'] }, headers: { 'X-API-Key': admin } });
      assert.equal(r.status, 201, r.text);
      minted.push(r.json.key);
    }
    const statuses = [];
    let limitSeen = null;
    for (const key of minted) {
      for (let i = 0; i < 3; i++) {
        const r = await http(s.base, 'POST', '/api/v1/ingest', {
          body: minimalRecord({ function_name: 'rl-fn' }),
          headers: { 'X-API-Key': key },
        });
        statuses.push(r.status);
        if (r.status === 429) {
          assert.equal(r.json.error_code, 'RATE_LIMIT_ERROR');
          limitSeen = Number(r.headers.get('x-ratelimit-limit'));
        }
      }
    }
    assert.equal(statuses.filter((x) => x === 200).length, 5, `4 keys x 3 requests, 5 per project: ${statuses}`);
    assert.equal(limitSeen, 5, 'the 429 names the project limit');
  } finally {
    assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.describe());
  }
});
