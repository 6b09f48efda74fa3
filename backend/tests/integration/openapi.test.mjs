// docs/openapi.yaml against the live server: the document parses (no YAML library: see
// openapi-check.mjs), lists exactly the server's endpoints, and every documented
// (path, method, status) is exercised here with its body validated against the documented schema
// and its required headers present. A status the server answers that the document does not list
// for that operation fails the test that provoked it; a documented status nobody provoked fails
// the last test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  useServer,
  startServer,
  createProject,
  createMigratedDatabase,
  dropDatabase,
  closedPort,
  http,
  fullRecord,
  minimalRecord,
  uid,
  REPO,
} from './harness.mjs';
import { parseYaml, validate, deref, resolveRef } from './openapi-check.mjs';
import { recordLine, logEvents, dataMessage, recordData, deliveryRequest } from './cloudwatch-firehose.mjs';

const DOC_PATH = path.join(REPO, 'docs/openapi.yaml');
const doc = parseYaml(readFileSync(DOC_PATH, 'utf8'));

const ADMIN_SECRET = 'oa-admin-' + randomBytes(24).toString('hex');
const ORIGIN = 'http://localhost:3000';
const ctx = useServer({
  env: { APP_SECRET_KEY: ADMIN_SECRET, CORS_ORIGINS: JSON.stringify([ORIGIN]), RATE_LIMIT_QUERY: 100000, RATE_LIMIT_INGEST: 100000 },
});

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const MNA = 'x-method-not-allowed';
const UNKNOWN = 'x-unknown-path';

// What the server routes (server.c, routes[]); OPTIONS is the CORS preflight on every path.
const SERVER_ROUTES = {
  '/api/v1/health': ['get'],
  '/api/v1/ingest': ['post'],
  '/api/v1/ingest/batch': ['post'],
  '/api/v1/ingest/firehose': ['post'],
  '/api/v1/functions': ['get'],
  '/api/v1/functions/{function_id}': ['get'],
  '/api/v1/functions/{function_id}/deployments': ['get'],
  '/api/v1/functions/{function_id}/compare': ['get'],
  '/api/v1/functions/{function_id}/cold-starts': ['get'],
  '/api/v1/functions/{function_id}/cold-starts/typical': ['get'],
  '/api/v1/functions/{function_id}/cold-starts/tree': ['get'],
  '/api/v1/api-keys': ['get', 'post'],
  '/api/v1/api-keys/{key_id}': ['delete'],
  '/api/v1/projects': ['post'],
  '/api/v1/alerts': ['get', 'post'],
  '/api/v1/alerts/{alert_id}': ['delete'],
};

/** Every (path, method, status) the document lists, as "path method status". */
function documentedTriples() {
  const out = new Set();
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      for (const status of Object.keys(item[m].responses)) out.add(`${p} ${m} ${status}`);
    }
    if (item[MNA]) out.add(`${p} ${MNA} 405`);
  }
  if (doc[UNKNOWN]) out.add(`${UNKNOWN} any 404`);
  return out;
}

const exercised = new Set();

/**
 * Checks a live response against the document: the status is documented for this operation and
 * is the one the test expected; required headers are present and valid; the body matches the
 * schema (or is empty when the response has no content). Records the triple as exercised.
 */
function conforms(pathTpl, method, res, expectedStatus, what = '') {
  const label = `${method.toUpperCase()} ${pathTpl} ${what}`.trim();
  let response;
  if (pathTpl === UNKNOWN) {
    response = deref(doc, doc[UNKNOWN]);
    exercised.add(`${UNKNOWN} any ${res.status}`);
    assert.equal(res.status, 404, `${label}: ${res.status} ${res.text.slice(0, 300)}`);
  } else {
    const item = doc.paths[pathTpl];
    assert.ok(item, `${pathTpl} is not in the document`);
    const op = method === MNA ? null : item[method];
    const responses = method === MNA ? { 405: item[MNA].response } : op?.responses;
    assert.ok(responses, `${label}: operation not in the document`);
    const key = String(res.status);
    assert.ok(
      Object.hasOwn(responses, key),
      `${label}: the server answered ${res.status}, which the document does not list (it lists ${Object.keys(responses).join(', ')}): ${res.text.slice(0, 300)}`,
    );
    exercised.add(`${pathTpl} ${method} ${key}`);
    assert.equal(res.status, expectedStatus, `${label}: expected ${expectedStatus}, got ${res.status} ${res.text.slice(0, 300)}`);
    response = deref(doc, responses[key]);
  }
  for (const [name, h0] of Object.entries(response.headers || {})) {
    const h = deref(doc, h0);
    const value = res.headers.get(name);
    if (value === null) {
      assert.ok(!h.required, `${label} (${res.status}): required header ${name} is missing`);
      continue;
    }
    const schema = h.schema || {};
    const typed = schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
    const errs = validate(schema, typed, doc, `header ${name}`);
    assert.deepEqual(errs, [], `${label} (${res.status}): header ${name}: ${value}`);
  }
  const content = response.content;
  if (!content) {
    assert.equal(res.text, '', `${label} (${res.status}): documented without a body, got ${res.text.slice(0, 200)}`);
    return;
  }
  const media = content['application/json'];
  assert.ok(media, `${label}: only application/json bodies are documented here`);
  assert.match(res.headers.get('content-type') || '', /^application\/json/, `${label}: Content-Type`);
  assert.ok(res.json !== null || res.text === 'null', `${label}: body is not JSON: ${res.text.slice(0, 200)}`);
  const errs = validate(media.schema, res.json, doc, 'body');
  assert.deepEqual(errs, [], `${label} (${res.status}): body does not match the schema: ${res.text.slice(0, 600)}`);
}

/** The request body schema of an operation, to check that the requests sent here are valid ones. */
function requestSchema(pathTpl, method) {
  return doc.paths[pathTpl][method].requestBody.content['application/json'].schema;
}

const withKey = (key, extra = {}) => ({ 'X-API-Key': key, ...extra });
const bearer = (s) => ({ Authorization: `Bearer ${s}` });
const stopOk = async (s) => assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.describe());
const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';
// string bodies go out as text/plain unless told otherwise
const JSON_CT = { headers: { 'Content-Type': 'application/json' } };
const FAKE_KEY = 'csa_' + 'A1b2C3d4'.repeat(4);
const F = '/api/v1/ingest/firehose';
/** A Firehose delivery (cloudwatch-firehose.mjs) of these records' log lines, the key in Firehose's header. */
const firehose = (base, key, records, tweak = (r) => r) => {
  const request = tweak(
    deliveryRequest([{ data: recordData(dataMessage(logEvents(records.map((r) => recordLine(r) + '\n')))) }], { accessKey: key }),
  );
  return http(base, 'POST', F, { body: request.body, headers: request.headers });
};

// ---------------------------------------------------------------------------------------------
// The document itself

test('openapi.yaml parses and is an OpenAPI 3.1 document whose $refs all resolve', () => {
  assert.match(String(doc.openapi), /^3\.1\.\d+$/);
  assert.equal(typeof doc.info?.title, 'string');
  assert.equal(typeof doc.info?.version, 'string');
  assert.ok(doc.components?.schemas?.Error, 'components.schemas.Error');
  assert.deepEqual(doc.components.schemas.Error.required, ['detail', 'error_code', 'timestamp']);
  assert.ok(doc.components.schemas.Error.properties.errors, 'Error.errors');
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['AdminBearer', 'ApiKeyAuth', 'FirehoseAccessKey']);
  assert.deepEqual(doc.components.securitySchemes.FirehoseAccessKey, {
    type: 'apiKey',
    in: 'header',
    name: 'X-Amz-Firehose-Access-Key',
    description: doc.components.securitySchemes.FirehoseAccessKey.description,
  });
  assert.deepEqual(doc.components.securitySchemes.ApiKeyAuth, {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: doc.components.securitySchemes.ApiKeyAuth.description,
  });
  assert.equal(doc.components.securitySchemes.AdminBearer.scheme, 'bearer');
  let refs = 0;
  const walk = (node, where) => {
    if (Array.isArray(node)) node.forEach((x, i) => walk(x, `${where}[${i}]`));
    else if (node && typeof node === 'object') {
      if ('$ref' in node) {
        refs++;
        assert.doesNotThrow(() => resolveRef(doc, node.$ref), `${where}: $ref ${node.$ref}`);
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${where}.${k}`);
    }
  };
  walk(doc, '#');
  assert.ok(refs > 50, `only ${refs} $refs`);
  const opIds = [];
  for (const item of Object.values(doc.paths)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      opIds.push(item[m].operationId);
      assert.ok(Object.keys(item[m].responses).length > 0, `${item[m].operationId}: no responses`);
      for (const [status, r] of Object.entries(item[m].responses)) {
        assert.match(status, /^[1-5]\d\d$/, `${item[m].operationId}: status key ${status}`);
        assert.equal(typeof deref(doc, r).description, 'string', `${item[m].operationId} ${status}: description`);
      }
    }
  }
  assert.equal(new Set(opIds).size, opIds.length, `duplicate operationIds: ${opIds}`);
  // every schema at least compiles in the checker (unknown keywords throw)
  for (const [name, s] of Object.entries(doc.components.schemas)) {
    assert.doesNotThrow(() => validate(s, {}, doc), `schema ${name}`);
  }
});

test('the YAML subset parser reads the constructs the document uses and refuses the others', () => {
  const y = parseYaml(
    [
      '# comment',
      'a: 1',
      "b: 'x: y # not a comment'",
      'c: "q\\n"',
      "d: [one, 'two', 3, null]",
      'e:',
      '  - k: v',
      '    n: -2.5',
      '  - plain text',
      'f: |',
      '  line 1',
      '    indented',
      'g: >-',
      '  folded',
      '  text',
      "'200':",
      '  h: {}',
      'i:',
      '- 1',
      '- true',
      'j: ~  # trailing comment',
    ].join('\n'),
  );
  assert.deepEqual(y, {
    a: 1,
    b: 'x: y # not a comment',
    c: 'q\n',
    d: ['one', 'two', 3, null],
    e: [{ k: 'v', n: -2.5 }, 'plain text'],
    f: 'line 1\n  indented\n',
    g: 'folded text',
    200: { h: {} },
    i: [1, true],
    j: null,
  });
  for (const bad of ['a: &x 1', 'a: *x', 'a: {b: 1}', 'a: 1\na: 2', 'a:\n\tb: 1', 'a: [1,\n  2]', '---\na: 1', 'a: b: c']) {
    assert.throws(() => parseYaml(bad), undefined, `accepted: ${JSON.stringify(bad)}`);
  }
});

test('every path template parameter is declared as a required path parameter', () => {
  for (const [p, item] of Object.entries(doc.paths)) {
    const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const m of METHODS) {
      if (!item[m] || m === 'options') continue;
      const params = (item[m].parameters || []).map((x) => deref(doc, x));
      for (const n of names) {
        const decl = params.find((x) => x.name === n && x.in === 'path');
        assert.ok(decl && decl.required === true, `${m} ${p}: path parameter ${n}`);
      }
      for (const x of params.filter((x) => x.in === 'path')) assert.ok(names.includes(x.name), `${m} ${p}: stray path parameter ${x.name}`);
    }
  }
});

test('openapi.yaml lists exactly the endpoints the server routes, each with a CORS preflight', () => {
  assert.deepEqual(Object.keys(doc.paths).sort(), Object.keys(SERVER_ROUTES).sort());
  for (const [p, methods] of Object.entries(SERVER_ROUTES)) {
    const item = doc.paths[p];
    const listed = METHODS.filter((m) => item[m]);
    assert.deepEqual(listed.sort(), [...methods, 'options'].sort(), `${p}: methods`);
    assert.deepEqual(
      item[MNA]?.allow,
      methods.map((m) => m.toUpperCase()),
      `${p}: ${MNA}.allow`,
    );
    for (const m of methods) {
      const op = item[m];
      const security = op.security ?? doc.security;
      if (p === '/api/v1/health') assert.deepEqual(security, [], 'health needs no key');
      else if (p === '/api/v1/projects') assert.deepEqual(security, [{ AdminBearer: [] }]);
      else if (p === F)
        assert.deepEqual(security, [{ FirehoseAccessKey: ['ingest'] }, { ApiKeyAuth: ['ingest'] }], "Firehose's header or ours");
      else {
        // one scope per operation; scopes.test.mjs checks each against the server
        assert.equal(security.length, 1, `${m} ${p}: security`);
        assert.deepEqual(Object.keys(security[0]), ['ApiKeyAuth'], `${m} ${p}: security`);
        assert.equal(security[0].ApiKeyAuth.length, 1, `${m} ${p}: one scope`);
      }
    }
  }
});

test('openapi.yaml accepts the valid request bodies this suite sends and rejects broken ones', () => {
  const inv = requestSchema('/api/v1/ingest', 'post');
  assert.deepEqual(validate(inv, fullRecord(), doc), []);
  assert.deepEqual(validate(inv, minimalRecord({ start_kind: 'proactive', invocation_id: null }), doc), []);
  assert.notDeepEqual(validate(inv, minimalRecord({ cold_start: 'yes' }), doc), []);
  assert.notDeepEqual(validate(inv, minimalRecord({ execution_duration_ms: 1.5 }), doc), []);
  assert.notDeepEqual(validate(inv, minimalRecord({ architecture: 'sparc' }), doc), []);
  assert.deepEqual(validate(requestSchema('/api/v1/ingest/batch', 'post'), { invocations: [fullRecord(), minimalRecord()] }, doc), []);
  assert.notDeepEqual(validate(requestSchema('/api/v1/ingest/batch', 'post'), { invocations: [] }, doc), []);
  assert.deepEqual(validate(requestSchema(F, 'post'), JSON.parse(deliveryRequest([{ data: 'aGVsbG8=' }]).body), doc), []);
  assert.notDeepEqual(validate(requestSchema(F, 'post'), { requestId: 'r', records: [] }, doc), []);
  assert.deepEqual(validate(requestSchema('/api/v1/projects', 'post'), { name: 'P', slug: 'p-1_x' }, doc), []);
  assert.notDeepEqual(validate(requestSchema('/api/v1/projects', 'post'), { name: 'P', slug: 'Bad Slug' }, doc), []);
  assert.deepEqual(validate(requestSchema('/api/v1/api-keys', 'post'), { name: 'ci' }, doc), []);
});

// ---------------------------------------------------------------------------------------------
// The main server: 200/201/204/400/401/404/405/409/413/415

let fnId = null;
test('health: 200, 400 (malformed query string)', async () => {
  conforms('/api/v1/health', 'get', await ctx.get('/api/v1/health'), 200);
  conforms('/api/v1/health', 'get', await ctx.get('/api/v1/health?x=%FF'), 400, 'non-UTF-8 query');
});

test('ingest, ingest/batch and ingest/firehose: 200, 400, 401, 413, 415', async () => {
  const P = '/api/v1/ingest';
  const B = '/api/v1/ingest/batch';
  const rec = fullRecord({ function_name: 'openapi-fn' });
  conforms(P, 'post', await ctx.ingest(rec), 200);
  conforms(
    P,
    'post',
    await ctx.ingest(minimalRecord({ function_name: 'openapi-fn', invocation_id: undefined })),
    200,
    'generated invocation_id',
  );
  conforms(P, 'post', await ctx.ingest('{"function_name": ', JSON_CT), 400, 'malformed JSON');
  conforms(P, 'post', await ctx.ingest({ function_name: 'openapi-fn', cold_start: 'yes' }), 400, 'invalid record');
  conforms(P, 'post', await ctx.ingest(rec, { key: '' }), 401, 'no key');
  conforms(P, 'post', await ctx.ingest(rec, { key: FAKE_KEY }), 401, 'unknown key');
  conforms(P, 'post', await ctx.ingest(JSON.stringify(rec), { headers: { 'Content-Type': 'text/plain' } }), 415);
  conforms(P, 'post', await ctx.ingest('x'.repeat(1024 * 1024 + 1), JSON_CT), 413);

  conforms(
    B,
    'post',
    await ctx.batch({ invocations: [fullRecord({ function_name: 'openapi-fn' }), minimalRecord({ function_name: 'openapi-fn' })] }),
    200,
    'ok',
  );
  conforms(
    B,
    'post',
    await ctx.batch({ invocations: [minimalRecord({ function_name: 'openapi-fn' }), { cold_start: 'yes' }] }),
    200,
    'partial',
  );
  conforms(B, 'post', await ctx.batch('[1', JSON_CT), 400, 'malformed JSON');
  conforms(B, 'post', await ctx.batch({ invocations: [] }), 400, 'empty batch');
  conforms(B, 'post', await ctx.batch({ invocations: [rec] }, { key: '' }), 401);
  conforms(B, 'post', await ctx.batch(JSON.stringify({ invocations: [rec] }), { headers: { 'Content-Type': 'application/xml' } }), 415);
  conforms(B, 'post', await ctx.batch('x'.repeat(10 * 1024 * 1024 + 1), JSON_CT), 413);

  conforms(
    F,
    'post',
    await firehose(ctx.base, ctx.key, [minimalRecord({ function_name: 'openapi-fn' }), { cold_start: 'yes' }]),
    200,
    'one stored, one invalid',
  );
  conforms(
    F,
    'post',
    await firehose(ctx.base, ctx.key, [minimalRecord()], (r) => ({ ...r, body: Buffer.from('{"requestId": "x"}') })),
    400,
    'no records',
  );
  conforms(
    F,
    'post',
    await firehose(ctx.base, ctx.key, [minimalRecord()], (r) => ({ ...r, headers: { ...r.headers, 'Content-Encoding': 'gzip' } })),
    400,
    'not gzip',
  );
  conforms(F, 'post', await firehose(ctx.base, FAKE_KEY, [minimalRecord()]), 401, 'unknown key');
  conforms(F, 'post', await firehose(ctx.base, undefined, [minimalRecord()]), 401, 'no key');
  conforms(
    F,
    'post',
    await firehose(ctx.base, ctx.key, [minimalRecord()], (r) => ({ ...r, body: Buffer.alloc(10 * 1024 * 1024 + 1, 0x20) })),
    413,
  );
  conforms(
    F,
    'post',
    await firehose(ctx.base, ctx.key, [minimalRecord()], (r) => ({ ...r, headers: { ...r.headers, 'Content-Encoding': 'br' } })),
    415,
    'Content-Encoding',
  );
  conforms(
    F,
    'post',
    await firehose(ctx.base, ctx.key, [minimalRecord()], (r) => ({ ...r, headers: { ...r.headers, 'Content-Type': 'text/plain' } })),
    415,
    'Content-Type',
  );
  fnId = await ctx.sql("SELECT id FROM functions WHERE function_name = 'openapi-fn'");
});

test('functions and functions/{id}: 200, 400, 401, 404', async () => {
  const L = '/api/v1/functions';
  const D = '/api/v1/functions/{function_id}';
  const h = { headers: withKey(ctx.key) };
  conforms(L, 'get', await ctx.get('/api/v1/functions', h), 200);
  conforms(L, 'get', await ctx.get('/api/v1/functions?limit=1&name_prefix=openapi', h), 200, 'filtered');
  conforms(L, 'get', await ctx.get('/api/v1/functions?limit=0', h), 400, 'limit=0');
  conforms(L, 'get', await ctx.get('/api/v1/functions?cursor=zz', h), 400, 'bad cursor');
  conforms(L, 'get', await ctx.get('/api/v1/functions'), 401);
  assert.ok(fnId, 'the ingest test stored openapi-fn');
  conforms(D, 'get', await ctx.get(`/api/v1/functions/${fnId}`, h), 200);
  conforms(D, 'get', await ctx.get(`/api/v1/functions/${fnId}?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`, h), 200, 'empty window');
  conforms(D, 'get', await ctx.get(`/api/v1/functions/${fnId}?from=nope`, h), 400, 'bad from');
  conforms(D, 'get', await ctx.get(`/api/v1/functions/${fnId}?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, h), 400, 'from after to');
  conforms(D, 'get', await ctx.get(`/api/v1/functions/${fnId}`), 401);
  conforms(D, 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}`, h), 404, 'unknown id');
  conforms(D, 'get', await ctx.get('/api/v1/functions/not-a-uuid', h), 404, 'malformed id');
  const DL = '/api/v1/functions/{function_id}/deployments';
  const C = '/api/v1/functions/{function_id}/compare';
  const a = { function_name: 'openapi-fn', function_version: '$LATEST', timestamp: '2026-01-02T10:30:00Z' };
  assert.equal(
    (
      await ctx.batch({
        invocations: [fullRecord({ ...a, code_id: 'oa-one' }), fullRecord({ ...a, code_id: 'oa-two', timestamp: '2026-01-02T11:30:00Z' })],
      })
    ).status,
    200,
  );
  conforms(DL, 'get', await ctx.get(`/api/v1/functions/${fnId}/deployments`, h), 200);
  conforms(DL, 'get', await ctx.get(`/api/v1/functions/${fnId}/deployments?x=%FF`, h), 400, 'non-UTF-8 query');
  conforms(DL, 'get', await ctx.get(`/api/v1/functions/${fnId}/deployments`), 401);
  conforms(DL, 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/deployments`, h), 404, 'unknown id');
  conforms(C, 'get', await ctx.get(`/api/v1/functions/${fnId}/compare`, h), 200, 'not enough data');
  conforms(C, 'get', await ctx.get(`/api/v1/functions/${fnId}/compare?base=oa-two&head=oa-one`, h), 200, 'explicit');
  conforms(C, 'get', await ctx.get(`/api/v1/functions/${fnId}/compare?base=${'x'.repeat(81)}`, h), 400, 'base too long');
  conforms(C, 'get', await ctx.get(`/api/v1/functions/${fnId}/compare`), 401);
  conforms(C, 'get', await ctx.get(`/api/v1/functions/${fnId}/compare?head=nope`, h), 404, 'unknown deployment');
  conforms(DL, MNA, await ctx.request('POST', `/api/v1/functions/${fnId}/deployments`, h), 405);
  conforms(C, MNA, await ctx.request('DELETE', `/api/v1/functions/${fnId}/compare`, h), 405);
});

test('functions/{id}/cold-starts, /typical and /tree: 200, 400, 401, 404', async () => {
  const L = '/api/v1/functions/{function_id}/cold-starts';
  const T = '/api/v1/functions/{function_id}/cold-starts/typical';
  const O = '/api/v1/functions/{function_id}/cold-starts/tree';
  const h = { headers: withKey(ctx.key) };
  const at = new Date(Date.now() - 60000).toISOString();
  // the tree as the Node.js SDK sends it, with the CPU profile of COLDSTART_LOADING=profile
  const sdkTree = {
    load_ms: 212.5,
    loading_ms: 150.25,
    modules: 412,
    esm_timing: 'on',
    coverage: 'preload',
    truncated: false,
    children: [{ name: 'barrel-fns', version: '1.0.0', self_ms: 150.5, total_ms: 150.5, loading_ms: 148.25, evaluation_ms: 2.25 }],
    cpu_profile: {
      method: 'v8-cpu-profile',
      interval_us: 100,
      samples: 1804,
      exactness: 'sampled every 100 us',
      scripts: { 'barrel-fns': 1.75, './index': 10.5 },
      module_loader_ms: 60.25,
      garbage_collector_ms: 3.5,
      program_ms: 110.75,
      other_ms: 4.25,
    },
  };
  const withTree = fullRecord({
    function_name: 'openapi-fn',
    timestamp: at,
    code_id: 'oa-cs',
    function_version: '3',
    module_tree: sdkTree,
  });
  const bare = minimalRecord({ function_name: 'openapi-fn', timestamp: at, cold_start: true, init_duration_ms: 120 });
  assert.equal((await ctx.batch({ invocations: [withTree, bare] })).status, 200);
  const page = await ctx.get(`/api/v1/functions/${fnId}/cold-starts?limit=1`, h);
  conforms(L, 'get', page, 200, 'first page');
  assert.ok(page.json.next_cursor, 'two cold starts, pages of one');
  conforms(L, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts?limit=1&cursor=${page.json.next_cursor}`, h), 200, 'next page');
  conforms(
    L,
    'get',
    await ctx.get(`/api/v1/functions/${fnId}/cold-starts?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`, h),
    200,
    'empty window',
  );
  conforms(L, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts?limit=0`, h), 400, 'limit=0');
  conforms(L, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts?cursor=zz`, h), 400, 'bad cursor');
  conforms(L, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts`), 401);
  conforms(L, 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/cold-starts`, h), 404, 'unknown id');
  const typical = await ctx.get(`/api/v1/functions/${fnId}/cold-starts/typical`, h);
  conforms(T, 'get', typical, 200);
  assert.equal(typical.json.cold_start.invocation_id, withTree.invocation_id, 'the one with a tree');
  conforms(
    T,
    'get',
    await ctx.get(`/api/v1/functions/${fnId}/cold-starts/typical?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`, h),
    200,
    'none: null',
  );
  conforms(T, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts/typical?to=nope`, h), 400, 'bad to');
  conforms(T, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts/typical`), 401);
  conforms(T, 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/cold-starts/typical`, h), 404, 'unknown id');
  const detail = await ctx.get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=${withTree.invocation_id}`, h);
  conforms(O, 'get', detail, 200, 'with a tree');
  assert.deepEqual(detail.json.cold_start.module_tree, sdkTree, 'the tree (and its cpu_profile) stored as sent');
  conforms(O, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=${bare.invocation_id}`, h), 200, 'without');
  conforms(O, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts/tree`, h), 400, 'no invocation_id');
  conforms(O, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=x`), 401);
  conforms(O, 'get', await ctx.get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=no-such`, h), 404, 'unknown invocation');
});

test('api-keys: 200, 201, 400, 401, 404, 409, 413, 415', async () => {
  const K = '/api/v1/api-keys';
  const KD = '/api/v1/api-keys/{key_id}';
  const h = (extra) => ({ headers: withKey(ctx.key, extra) });
  conforms(K, 'get', await ctx.get('/api/v1/api-keys', h()), 200);
  conforms(K, 'get', await ctx.get('/api/v1/api-keys?x=%FF', h()), 400, 'non-UTF-8 query');
  conforms(K, 'get', await ctx.get('/api/v1/api-keys'), 401);
  const created = await ctx.request('POST', '/api/v1/api-keys', { body: { name: 'openapi' }, ...h() });
  conforms(K, 'post', created, 201);
  conforms(K, 'post', await ctx.request('POST', '/api/v1/api-keys', h()), 201, 'no body');
  conforms(K, 'post', await ctx.request('POST', '/api/v1/api-keys', { body: { name: 7 }, ...h() }), 400);
  conforms(K, 'post', await ctx.request('POST', '/api/v1/api-keys', { body: { name: 'x' } }), 401);
  conforms(
    K,
    'post',
    await ctx.request('POST', '/api/v1/api-keys', { body: 'name=x', ...h({ 'Content-Type': 'application/x-www-form-urlencoded' }) }),
    415,
  );
  conforms(
    K,
    'post',
    await ctx.request('POST', '/api/v1/api-keys', { body: 'x'.repeat(1024 * 1024 + 1), ...h({ 'Content-Type': 'application/json' }) }),
    413,
  );

  conforms(KD, 'delete', await ctx.request('DELETE', `/api/v1/api-keys/${created.json.id}`, h()), 200);
  conforms(KD, 'delete', await ctx.request('DELETE', `/api/v1/api-keys/${created.json.id}?x=%FF`, h()), 400, 'non-UTF-8 query');
  conforms(KD, 'delete', await ctx.request('DELETE', `/api/v1/api-keys/${created.json.id}`), 401);
  conforms(KD, 'delete', await ctx.request('DELETE', `/api/v1/api-keys/${NO_SUCH_ID}`, h()), 404);
  const lone = await createProject(ctx.db.url, 'Lone', 'oa-lone-' + randomBytes(3).toString('hex'));
  const loneId = (await ctx.get('/api/v1/api-keys', { headers: withKey(lone) })).json.api_keys.find((k) => k.name === 'admin').id;
  conforms(
    KD,
    'delete',
    await ctx.request('DELETE', `/api/v1/api-keys/${loneId}`, { headers: withKey(lone) }),
    409,
    'last active admin key',
  );
});

test('alerts: 200, 201, 400, 401, 404, 409, 413, 415', async () => {
  const A = '/api/v1/alerts';
  const AD = '/api/v1/alerts/{alert_id}';
  const h = (extra) => ({ headers: withKey(ctx.key, extra) });
  const rule = (n) => ({ name: `openapi ${n}`, metric: 'cold_start_rate', threshold: 99.5, webhook_url: 'http://203.0.113.5/hook' });
  assert.deepEqual(validate(requestSchema(A, 'post'), rule(0), doc), []);
  assert.notDeepEqual(validate(requestSchema(A, 'post'), { ...rule(0), extra: 1 }, doc), []);
  assert.deepEqual(validate(requestSchema(A, 'post'), { ...rule(0), webhook_url: 'https://hooks.slack.com/services/T/B/X' }, doc), []);
  assert.notDeepEqual(validate(requestSchema(A, 'post'), { ...rule(0), webhook_url: 'ftp://203.0.113.5/' }, doc), []);
  const created = await ctx.request('POST', A, { body: rule(0), ...h() });
  conforms(A, 'post', created, 201);
  conforms(A, 'get', await ctx.get(A, h()), 200);
  conforms(A, 'get', await ctx.get(`${A}?x=%FF`, h()), 400, 'non-UTF-8 query');
  conforms(A, 'get', await ctx.get(A), 401);
  conforms(A, 'post', await ctx.request('POST', A, { body: { ...rule(1), metric: 'p99' }, ...h() }), 400);
  conforms(A, 'post', await ctx.request('POST', A, { body: rule(1) }), 401);
  conforms(A, 'post', await ctx.request('POST', A, { body: { ...rule(1), function_id: NO_SUCH_ID }, ...h() }), 404, 'unknown function');
  conforms(A, 'post', await ctx.request('POST', A, { body: 'x=1', ...h({ 'Content-Type': 'text/plain' }) }), 415);
  conforms(
    A,
    'post',
    await ctx.request('POST', A, { body: 'x'.repeat(1024 * 1024 + 1), ...h({ 'Content-Type': 'application/json' }) }),
    413,
  );
  conforms(AD, 'delete', await ctx.request('DELETE', `${A}/${created.json.id}?x=%FF`, h()), 400, 'non-UTF-8 query');
  conforms(AD, 'delete', await ctx.request('DELETE', `${A}/${created.json.id}`), 401);
  conforms(AD, 'delete', await ctx.request('DELETE', `${A}/${created.json.id}`, h()), 200);
  conforms(AD, 'delete', await ctx.request('DELETE', `${A}/${created.json.id}`, h()), 404);
  // a project holds at most 100 rules
  let last;
  for (let i = 0; i < 101; i++) {
    last = await ctx.request('POST', A, { body: rule(i), ...h() });
    if (last.status !== 201) break;
  }
  conforms(A, 'post', last, 409, 'the 101st rule');
  await ctx.sql('DELETE FROM alert_rules');
});

test('403 on every scoped operation with a key that lacks its scope', async () => {
  const readKey = (await ctx.request('POST', '/api/v1/api-keys', { body: { scopes: ['read'] }, headers: withKey(ctx.key) })).json.key;
  const ing = { headers: withKey(ctx.ingestKey) };
  conforms('/api/v1/ingest', 'post', await ctx.ingest(minimalRecord({ function_name: 'openapi-fn' }), { key: readKey }), 403);
  conforms(
    '/api/v1/ingest/batch',
    'post',
    await ctx.batch({ invocations: [minimalRecord({ function_name: 'openapi-fn' })] }, { key: readKey }),
    403,
  );
  conforms(F, 'post', await firehose(ctx.base, readKey, [minimalRecord({ function_name: 'openapi-fn' })]), 403);
  conforms('/api/v1/functions', 'get', await ctx.get('/api/v1/functions', ing), 403);
  conforms('/api/v1/functions/{function_id}/deployments', 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/deployments`, ing), 403);
  conforms('/api/v1/functions/{function_id}/compare', 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/compare`, ing), 403);
  conforms('/api/v1/functions/{function_id}/cold-starts', 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/cold-starts`, ing), 403);
  conforms(
    '/api/v1/functions/{function_id}/cold-starts/typical',
    'get',
    await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/cold-starts/typical`, ing),
    403,
  );
  conforms(
    '/api/v1/functions/{function_id}/cold-starts/tree',
    'get',
    await ctx.get(`/api/v1/functions/${NO_SUCH_ID}/cold-starts/tree?invocation_id=x`, ing),
    403,
  );
  conforms('/api/v1/functions/{function_id}', 'get', await ctx.get(`/api/v1/functions/${NO_SUCH_ID}`, ing), 403);
  conforms('/api/v1/api-keys', 'get', await ctx.get('/api/v1/api-keys', ing), 403);
  conforms('/api/v1/api-keys', 'post', await ctx.request('POST', '/api/v1/api-keys', { body: { scopes: ['ingest'] }, ...ing }), 403);
  conforms(
    '/api/v1/api-keys',
    'post',
    await ctx.request('POST', '/api/v1/api-keys', { body: { scopes: ['read'] }, headers: withKey(readKey) }),
    403,
    'read key',
  );
  conforms('/api/v1/api-keys/{key_id}', 'delete', await ctx.request('DELETE', `/api/v1/api-keys/${NO_SUCH_ID}`, ing), 403);
  conforms('/api/v1/alerts', 'get', await ctx.get('/api/v1/alerts', ing), 403);
  conforms('/api/v1/alerts', 'post', await ctx.request('POST', '/api/v1/alerts', { body: {}, headers: withKey(readKey) }), 403, 'read key');
  conforms(
    '/api/v1/alerts/{alert_id}',
    'delete',
    await ctx.request('DELETE', `/api/v1/alerts/${NO_SUCH_ID}`, { headers: withKey(readKey) }),
    403,
  );
});

test('projects: 201, 400, 401, 409, 413, 415', async () => {
  const P = '/api/v1/projects';
  const slug = 'oa-' + randomBytes(3).toString('hex');
  const post = (body, headers = bearer(ADMIN_SECRET)) => ctx.request('POST', '/api/v1/projects', { body, headers });
  conforms(P, 'post', await post({ name: 'OpenAPI project', slug }), 201);
  conforms(P, 'post', await post({ name: 'Again', slug }), 409, 'taken slug');
  conforms(P, 'post', await post({ name: 'Bad', slug: 'Not A Slug' }), 400);
  conforms(P, 'post', await post({ name: 'X', slug: 'x-' + slug }, bearer('wrong')), 401);
  conforms(P, 'post', await post({ name: 'X', slug: 'x-' + slug }, {}), 401, 'no token');
  conforms(P, 'post', await post('name=x', { ...bearer(ADMIN_SECRET), 'Content-Type': 'text/plain' }), 415);
  conforms(P, 'post', await post('x'.repeat(1024 * 1024 + 1), { ...bearer(ADMIN_SECRET), 'Content-Type': 'application/json' }), 413);
});

test('every path: 204 preflight, 405 with Allow for other methods; unknown paths 404', async () => {
  for (const [p, item] of Object.entries(doc.paths)) {
    const concrete = p
      .replace('{function_id}', fnId || NO_SUCH_ID)
      .replace('{key_id}', NO_SUCH_ID)
      .replace('{alert_id}', NO_SUCH_ID);
    const pre = await ctx.request('OPTIONS', concrete, { headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET' } });
    conforms(p, 'options', pre, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN, `${p}: preflight origin`);
    const allow = item[MNA].allow;
    for (const m of ['PUT', 'PATCH', 'GET', 'POST', 'DELETE']) {
      if (allow.includes(m)) continue;
      const res = await ctx.request(m, concrete, { headers: withKey(ctx.key) });
      conforms(p, MNA, res, 405, m);
      assert.deepEqual(
        (res.headers.get('allow') || '')
          .split(',')
          .map((s) => s.trim())
          .sort(),
        [...allow].sort(),
        `${m} ${p}: Allow`,
      );
    }
  }
  // (GET / and /assets/... are the web UI's files, not this API: ui.test.mjs)
  for (const p of ['/no-such-page', '/api/v1/nope', '/api/v1/functions/a/b', '/api/v2/health']) {
    conforms(UNKNOWN, 'any', await ctx.get(p, { headers: withKey(ctx.key) }), 404, p);
  }
});

// ---------------------------------------------------------------------------------------------
// Other servers: 403 (no admin secret), 429 (tiny limits), 503 (no database), 500 (broken schema)

test('projects: 403 while APP_SECRET_KEY is unset', async () => {
  const s = await startServer({ dbUrl: ctx.db.url, env: { APP_SECRET_KEY: undefined } });
  try {
    const res = await http(s.base, 'POST', '/api/v1/projects', { body: { name: 'F', slug: 'forbidden' }, headers: bearer(ADMIN_SECRET) });
    conforms('/api/v1/projects', 'post', res, 403);
  } finally {
    await stopOk(s);
  }
});

test('429 on every rate-limited operation (RATE_LIMIT_QUERY=1, RATE_LIMIT_INGEST=1)', async () => {
  const s = await startServer({ dbUrl: ctx.db.url, env: { RATE_LIMIT_QUERY: 1, RATE_LIMIT_INGEST: 1, RATE_LIMIT_WINDOW: 3600 } });
  const call = (method, p, body) => http(s.base, method, p, { body, headers: withKey(ctx.key) });
  try {
    conforms('/api/v1/ingest', 'post', await call('POST', '/api/v1/ingest', minimalRecord({ function_name: 'openapi-fn' })), 200, 'first');
    conforms('/api/v1/ingest', 'post', await call('POST', '/api/v1/ingest', minimalRecord({ function_name: 'openapi-fn' })), 429);
    conforms('/api/v1/ingest/batch', 'post', await call('POST', '/api/v1/ingest/batch', { invocations: [minimalRecord()] }), 429);
    conforms(F, 'post', await firehose(s.base, ctx.key, [minimalRecord()]), 429);
    conforms('/api/v1/functions', 'get', await call('GET', '/api/v1/functions'), 200, 'first');
    conforms('/api/v1/functions', 'get', await call('GET', '/api/v1/functions'), 429);
    conforms('/api/v1/functions/{function_id}', 'get', await call('GET', `/api/v1/functions/${fnId}`), 429);
    conforms('/api/v1/functions/{function_id}/deployments', 'get', await call('GET', `/api/v1/functions/${fnId}/deployments`), 429);
    conforms('/api/v1/functions/{function_id}/compare', 'get', await call('GET', `/api/v1/functions/${fnId}/compare`), 429);
    conforms('/api/v1/functions/{function_id}/cold-starts', 'get', await call('GET', `/api/v1/functions/${fnId}/cold-starts`), 429);
    conforms(
      '/api/v1/functions/{function_id}/cold-starts/typical',
      'get',
      await call('GET', `/api/v1/functions/${fnId}/cold-starts/typical`),
      429,
    );
    conforms(
      '/api/v1/functions/{function_id}/cold-starts/tree',
      'get',
      await call('GET', `/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=x`),
      429,
    );
    conforms('/api/v1/api-keys', 'get', await call('GET', '/api/v1/api-keys'), 429);
    conforms('/api/v1/api-keys', 'post', await call('POST', '/api/v1/api-keys', { name: 'x' }), 429);
    conforms('/api/v1/api-keys/{key_id}', 'delete', await call('DELETE', `/api/v1/api-keys/${NO_SUCH_ID}`), 429);
    conforms('/api/v1/alerts', 'get', await call('GET', '/api/v1/alerts'), 429);
    conforms('/api/v1/alerts', 'post', await call('POST', '/api/v1/alerts', {}), 429);
    conforms('/api/v1/alerts/{alert_id}', 'delete', await call('DELETE', `/api/v1/alerts/${NO_SUCH_ID}`), 429);
  } finally {
    await stopOk(s);
  }
});

test('503 on every operation while PostgreSQL is unreachable', async () => {
  const port = await closedPort();
  const s = await startServer({
    dbUrl: `postgresql://postgres:x@127.0.0.1:${port}/coldstart?connect_timeout=2`,
    env: { APP_SECRET_KEY: ADMIN_SECRET },
    ready: 'any',
  });
  const call = (method, p, body, headers = withKey(FAKE_KEY)) => http(s.base, method, p, { body, headers });
  try {
    conforms('/api/v1/health', 'get', await call('GET', '/api/v1/health'), 503);
    conforms('/api/v1/ingest', 'post', await call('POST', '/api/v1/ingest', minimalRecord()), 503);
    conforms('/api/v1/ingest/batch', 'post', await call('POST', '/api/v1/ingest/batch', { invocations: [minimalRecord()] }), 503);
    conforms(F, 'post', await firehose(s.base, FAKE_KEY, [minimalRecord()]), 503);
    conforms('/api/v1/functions', 'get', await call('GET', '/api/v1/functions'), 503);
    conforms('/api/v1/functions/{function_id}', 'get', await call('GET', `/api/v1/functions/${NO_SUCH_ID}`), 503);
    conforms('/api/v1/functions/{function_id}/deployments', 'get', await call('GET', `/api/v1/functions/${NO_SUCH_ID}/deployments`), 503);
    conforms('/api/v1/functions/{function_id}/compare', 'get', await call('GET', `/api/v1/functions/${NO_SUCH_ID}/compare`), 503);
    conforms('/api/v1/functions/{function_id}/cold-starts', 'get', await call('GET', `/api/v1/functions/${NO_SUCH_ID}/cold-starts`), 503);
    conforms(
      '/api/v1/functions/{function_id}/cold-starts/typical',
      'get',
      await call('GET', `/api/v1/functions/${NO_SUCH_ID}/cold-starts/typical`),
      503,
    );
    conforms(
      '/api/v1/functions/{function_id}/cold-starts/tree',
      'get',
      await call('GET', `/api/v1/functions/${NO_SUCH_ID}/cold-starts/tree?invocation_id=x`),
      503,
    );
    conforms('/api/v1/api-keys', 'get', await call('GET', '/api/v1/api-keys'), 503);
    conforms('/api/v1/api-keys', 'post', await call('POST', '/api/v1/api-keys', { name: 'x' }), 503);
    conforms('/api/v1/api-keys/{key_id}', 'delete', await call('DELETE', `/api/v1/api-keys/${NO_SUCH_ID}`), 503);
    conforms('/api/v1/alerts', 'get', await call('GET', '/api/v1/alerts'), 503);
    conforms('/api/v1/alerts', 'post', await call('POST', '/api/v1/alerts', {}), 503);
    conforms('/api/v1/alerts/{alert_id}', 'delete', await call('DELETE', `/api/v1/alerts/${NO_SUCH_ID}`), 503);
    conforms('/api/v1/projects', 'post', await call('POST', '/api/v1/projects', { name: 'X', slug: 'x' }, bearer(ADMIN_SECRET)), 503);
  } finally {
    await stopOk(s);
  }
});

test('500 on every database operation when a statement fails (a broken schema in a scratch database)', async () => {
  const db = await createMigratedDatabase();
  let s = null;
  try {
    const key = await createProject(db.url, 'Broken', 'broken');
    s = await startServer({ dbUrl: db.url, env: { KEY_CACHE_TTL: 3600, APP_SECRET_KEY: ADMIN_SECRET } });
    const call = (method, p, body, headers = withKey(key)) => http(s.base, method, p, { body, headers });
    // before the damage: a function, a second key to revoke, and the key cached by the server
    assert.equal((await call('POST', '/api/v1/ingest', minimalRecord({ function_name: 'broken-fn' }))).status, 200);
    const second = await call('POST', '/api/v1/api-keys', { name: 'second' });
    assert.equal(second.status, 201, second.text);
    const id = (await call('GET', '/api/v1/functions')).json.functions[0].id;
    await http(s.base, 'GET', '/api/v1/health');
    const { psql } = await import('./harness.mjs');
    // invocations.request_id is written by every ingest statement (the writer skips the function
    // upsert for functions it touched in the last second, so breaking functions alone is not enough)
    await psql(
      db.url,
      `ALTER TABLE functions RENAME COLUMN runtime TO runtime_broken;
      ALTER TABLE invocations RENAME COLUMN request_id TO request_id_broken;
      ALTER TABLE api_keys RENAME COLUMN key_prefix TO key_prefix_broken;
      ALTER TABLE projects RENAME COLUMN slug TO slug_broken;
      ALTER TABLE function_deployments RENAME COLUMN deployment TO deployment_broken;
      ALTER TABLE alert_rules RENAME COLUMN project_id TO project_id_broken`,
    );
    conforms(
      '/api/v1/ingest',
      'post',
      await call('POST', '/api/v1/ingest', minimalRecord({ function_name: 'broken-fn', invocation_id: uid() })),
      500,
    );
    conforms(
      '/api/v1/ingest/batch',
      'post',
      await call('POST', '/api/v1/ingest/batch', { invocations: [minimalRecord({ function_name: 'broken-fn' })] }),
      500,
    );
    conforms(F, 'post', await firehose(s.base, key, [minimalRecord({ function_name: 'broken-fn', invocation_id: uid() })]), 500);
    conforms('/api/v1/functions', 'get', await call('GET', '/api/v1/functions'), 500);
    conforms('/api/v1/functions/{function_id}', 'get', await call('GET', `/api/v1/functions/${id}`), 500);
    conforms('/api/v1/functions/{function_id}/deployments', 'get', await call('GET', `/api/v1/functions/${id}/deployments`), 500);
    conforms('/api/v1/functions/{function_id}/compare', 'get', await call('GET', `/api/v1/functions/${id}/compare`), 500);
    conforms('/api/v1/functions/{function_id}/cold-starts', 'get', await call('GET', `/api/v1/functions/${id}/cold-starts`), 500);
    conforms(
      '/api/v1/functions/{function_id}/cold-starts/typical',
      'get',
      await call('GET', `/api/v1/functions/${id}/cold-starts/typical`),
      500,
    );
    conforms(
      '/api/v1/functions/{function_id}/cold-starts/tree',
      'get',
      await call('GET', `/api/v1/functions/${id}/cold-starts/tree?invocation_id=x`),
      500,
    );
    conforms('/api/v1/api-keys', 'get', await call('GET', '/api/v1/api-keys'), 500);
    conforms('/api/v1/api-keys', 'post', await call('POST', '/api/v1/api-keys', { name: 'x' }), 500);
    conforms('/api/v1/api-keys/{key_id}', 'delete', await call('DELETE', `/api/v1/api-keys/${second.json.id}`), 500);
    conforms('/api/v1/alerts', 'get', await call('GET', '/api/v1/alerts'), 500);
    conforms(
      '/api/v1/alerts',
      'post',
      await call('POST', '/api/v1/alerts', { name: 'x', metric: 'init_p95_ms', threshold: 1, webhook_url: 'http://203.0.113.5/' }),
      500,
    );
    conforms('/api/v1/alerts/{alert_id}', 'delete', await call('DELETE', `/api/v1/alerts/${NO_SUCH_ID}`), 500);
    conforms('/api/v1/projects', 'post', await call('POST', '/api/v1/projects', { name: 'X', slug: 'x' }, bearer(ADMIN_SECRET)), 500);
    // and it still answers what does not need the broken columns
    assert.equal((await http(s.base, 'GET', '/api/v1/health')).status, 200);
  } finally {
    if (s) await stopOk(s);
    await dropDatabase(db.name);
  }
});

// ---------------------------------------------------------------------------------------------

test('every documented (path, method, status) was exercised against the live server', () => {
  const missing = [...documentedTriples()].filter((t) => !exercised.has(t));
  assert.deepEqual(missing, [], `documented but never provoked: ${missing.join('; ')}`);
  const extra = [...exercised].filter((t) => !documentedTriples().has(t));
  assert.deepEqual(extra, [], `provoked but not documented: ${extra.join('; ')}`);
});
