// Validation of single records and malformed JSON: exact status, error_code, loc and type.
// Every rejected record must leave no row behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, minimalRecord, fullRecord, assertValidationError, assertErrorBody, lit } from './harness.mjs';

const ctx = useServer();
const rejectedIds = [];

const hoursFromNow = (h) => new Date(Date.now() + h * 3600 * 1000).toISOString();
const without = (field) => {
  const r = minimalRecord();
  delete r[field];
  return r;
};

// [name, record, loc, type]  (type: exact string, RegExp, or null for "any non-empty")
const INVALID = [
  // required fields
  ['missing function_name', without('function_name'), ['body', 'function_name'], 'missing'],
  ['missing timestamp', without('timestamp'), ['body', 'timestamp'], 'missing'],
  ['missing cold_start', without('cold_start'), ['body', 'cold_start'], 'missing'],
  ['missing execution_duration_ms', without('execution_duration_ms'), ['body', 'execution_duration_ms'], 'missing'],
  // function_name
  ['function_name a number', minimalRecord({ function_name: 123 }), ['body', 'function_name'], 'string_type'],
  ['function_name null', minimalRecord({ function_name: null }), ['body', 'function_name'], null],
  ['function_name empty', minimalRecord({ function_name: '' }), ['body', 'function_name'], 'string_too_short'],
  ['function_name 256 chars', minimalRecord({ function_name: 'f'.repeat(256) }), ['body', 'function_name'], 'string_too_long'],
  ['function_name with newline', minimalRecord({ function_name: 'bad\nname' }), ['body', 'function_name'], null],
  ['function_name with \\u0001', minimalRecord({ function_name: 'bad\u0001name' }), ['body', 'function_name'], null],
  ['function_name with DEL', minimalRecord({ function_name: 'bad\u007fname' }), ['body', 'function_name'], null],
  // timestamp
  ['timestamp without zone', minimalRecord({ timestamp: '2026-01-02T10:30:00' }), ['body', 'timestamp'], 'datetime_format'],
  ['timestamp date only', minimalRecord({ timestamp: '2026-01-02' }), ['body', 'timestamp'], 'datetime_format'],
  ['timestamp words', minimalRecord({ timestamp: 'yesterday' }), ['body', 'timestamp'], 'datetime_format'],
  ['timestamp Feb 30', minimalRecord({ timestamp: '2026-02-30T10:00:00Z' }), ['body', 'timestamp'], 'datetime_format'],
  ['timestamp hour 24', minimalRecord({ timestamp: '2026-01-02T24:00:01Z' }), ['body', 'timestamp'], 'datetime_format'],
  ['timestamp a number', minimalRecord({ timestamp: 1767349800 }), ['body', 'timestamp'], null],
  ['timestamp 48 h in the future', minimalRecord({ timestamp: hoursFromNow(48) }), ['body', 'timestamp'], null],
  // cold_start
  ['cold_start "yes"', minimalRecord({ cold_start: 'yes' }), ['body', 'cold_start'], 'bool_type'],
  ['cold_start "true"', minimalRecord({ cold_start: 'true' }), ['body', 'cold_start'], 'bool_type'],
  ['cold_start 1', minimalRecord({ cold_start: 1 }), ['body', 'cold_start'], 'bool_type'],
  ['cold_start null', minimalRecord({ cold_start: null }), ['body', 'cold_start'], null],
  // execution_duration_ms
  ['execution_duration_ms a string', minimalRecord({ execution_duration_ms: '145' }), ['body', 'execution_duration_ms'], 'int_type'],
  ['execution_duration_ms a fraction', minimalRecord({ execution_duration_ms: 145.5 }), ['body', 'execution_duration_ms'], /^int_/],
  ['execution_duration_ms a boolean', minimalRecord({ execution_duration_ms: true }), ['body', 'execution_duration_ms'], 'int_type'],
  ['execution_duration_ms -1', minimalRecord({ execution_duration_ms: -1 }), ['body', 'execution_duration_ms'], 'greater_than_equal'],
  ['execution_duration_ms 900001', minimalRecord({ execution_duration_ms: 900001 }), ['body', 'execution_duration_ms'], 'less_than_equal'],
  // other integers
  ['init_duration_ms a string', minimalRecord({ init_duration_ms: 'slow' }), ['body', 'init_duration_ms'], 'int_type'],
  ['init_duration_ms -5', minimalRecord({ init_duration_ms: -5 }), ['body', 'init_duration_ms'], 'greater_than_equal'],
  ['init_duration_ms 900001', minimalRecord({ init_duration_ms: 900001 }), ['body', 'init_duration_ms'], 'less_than_equal'],
  ['billed_duration_ms -1', minimalRecord({ billed_duration_ms: -1 }), ['body', 'billed_duration_ms'], 'greater_than_equal'],
  ['billed_duration_ms 900001', minimalRecord({ billed_duration_ms: 900001 }), ['body', 'billed_duration_ms'], 'less_than_equal'],
  ['memory_used_mb -1', minimalRecord({ memory_used_mb: -1 }), ['body', 'memory_used_mb'], 'greater_than_equal'],
  ['memory_used_mb 10241', minimalRecord({ memory_used_mb: 10241 }), ['body', 'memory_used_mb'], 'less_than_equal'],
  ['memory_allocated_mb 127', minimalRecord({ memory_allocated_mb: 127 }), ['body', 'memory_allocated_mb'], 'greater_than_equal'],
  ['memory_allocated_mb 10241', minimalRecord({ memory_allocated_mb: 10241 }), ['body', 'memory_allocated_mb'], 'less_than_equal'],
  ['memory_allocated_mb a string', minimalRecord({ memory_allocated_mb: '512' }), ['body', 'memory_allocated_mb'], 'int_type'],
  // strings and literals
  ['invocation_id empty', minimalRecord({ invocation_id: '' }), ['body', 'invocation_id'], 'string_too_short'],
  ['invocation_id 256 chars', minimalRecord({ invocation_id: 'i'.repeat(256) }), ['body', 'invocation_id'], 'string_too_long'],
  ['invocation_id a number', minimalRecord({ invocation_id: 12345 }), ['body', 'invocation_id'], 'string_type'],
  ['request_id a number', minimalRecord({ request_id: 42 }), ['body', 'request_id'], 'string_type'],
  ['request_id 256 chars', minimalRecord({ request_id: 'r'.repeat(256) }), ['body', 'request_id'], 'string_too_long'],
  ['runtime_version a number', minimalRecord({ runtime_version: 18 }), ['body', 'runtime_version'], 'string_type'],
  ['architecture x86', minimalRecord({ architecture: 'x86' }), ['body', 'architecture'], 'literal_error'],
  ['architecture ARM64', minimalRecord({ architecture: 'ARM64' }), ['body', 'architecture'], 'literal_error'],
  ['start_kind hot', minimalRecord({ start_kind: 'hot' }), ['body', 'start_kind'], 'literal_error'],
  ['region upper case', minimalRecord({ region: 'EU-WEST-1' }), ['body', 'region'], null],
  ['region with a space', minimalRecord({ region: 'eu west' }), ['body', 'region'], null],
  ['region 51 chars', minimalRecord({ region: 'a'.repeat(51) }), ['body', 'region'], null],
  ['sdk_overhead_ms a string', minimalRecord({ sdk_overhead_ms: 'fast' }), ['body', 'sdk_overhead_ms'], null],
  ['sdk_overhead_ms -1', minimalRecord({ sdk_overhead_ms: -1 }), ['body', 'sdk_overhead_ms'], 'greater_than_equal'],
  ['sdk_overhead_ms 900001', minimalRecord({ sdk_overhead_ms: 900001 }), ['body', 'sdk_overhead_ms'], 'less_than_equal'],
  ['runtime_version 51 chars', minimalRecord({ runtime_version: 'n'.repeat(51) }), ['body', 'runtime_version'], 'string_too_long'],
  ['init_type 51 chars', minimalRecord({ init_type: 'i'.repeat(51) }), ['body', 'init_type'], 'string_too_long'],
  ['sdk_version 51 chars', minimalRecord({ sdk_version: '1'.repeat(51) }), ['body', 'sdk_version'], 'string_too_long'],
  ['init_type a number', minimalRecord({ init_type: 1 }), ['body', 'init_type'], 'string_type'],
  // objects
  ['module_timings an array', minimalRecord({ module_timings: [1, 2] }), ['body', 'module_timings'], null],
  ['module_timings a string', minimalRecord({ module_timings: 'aws-sdk=5' }), ['body', 'module_timings'], null],
  ['module_tree a string', minimalRecord({ module_tree: 'tree' }), ['body', 'module_tree'], null],
  [
    'module_timings 2001 entries',
    minimalRecord({ module_timings: Object.fromEntries(Array.from({ length: 2001 }, (_, i) => [`m${i}`, 1])) }),
    ['body', 'module_timings'],
    null,
  ],
];

for (const [name, record, loc, type] of INVALID) {
  test(`rejects ${name}: 400 at ${loc.join('.')}${type ? ' (' + type + ')' : ''}`, async () => {
    if (typeof record.invocation_id === 'string') rejectedIds.push(record.invocation_id);
    const res = await ctx.ingest(record);
    assertValidationError(res, loc, type, name);
    assert.equal(res.json.detail, 'Validation error');
  });
}

// module_timings values: the error sits at module_timings or at the entry's key.
for (const [name, timings] of [
  ['a negative module timing', { 'aws-sdk': -1 }],
  ['a string module timing', { 'aws-sdk': 'slow' }],
  ['a null module timing', { 'aws-sdk': null }],
  ['a boolean module timing', { 'aws-sdk': true }],
  ['an object module timing', { 'aws-sdk': { self: 1 } }],
  ['a module timing over 900000', { 'aws-sdk': 900001 }],
  ['an empty module name', { '': 1 }],
  ['a 256-character module name', { ['m'.repeat(256)]: 1 }],
]) {
  test(`rejects ${name}: 400 at body.module_timings`, async () => {
    const rec = minimalRecord({ module_timings: { ok: 1, ...timings } });
    rejectedIds.push(rec.invocation_id);
    const res = await ctx.ingest(rec);
    assertErrorBody(res, 400, 'VALIDATION_ERROR', name);
    const hit = (res.json.errors || []).find((e) => Array.isArray(e.loc) && e.loc[0] === 'body' && e.loc[1] === 'module_timings');
    assert.ok(hit, `no error located in body.module_timings: ${res.text}`);
    const badKey = Object.keys(timings)[0];
    assert.ok(hit.loc.length === 2 || (hit.loc.length === 3 && hit.loc[2] === badKey), `loc ${JSON.stringify(hit.loc)}`);
  });
}

test('reports every bad field of a record at once', async () => {
  const rec = {
    invocation_id: 'multi-error-1',
    function_name: 7,
    timestamp: 'soon',
    cold_start: 'no',
    execution_duration_ms: -3,
    architecture: 'sparc',
  };
  rejectedIds.push(rec.invocation_id);
  const res = await ctx.ingest(rec);
  assertErrorBody(res, 400, 'VALIDATION_ERROR');
  const locs = res.json.errors.map((e) => e.loc.join('.')).sort();
  assert.deepEqual(locs, ['body.architecture', 'body.cold_start', 'body.execution_duration_ms', 'body.function_name', 'body.timestamp']);
});

test('an empty object reports the four required fields as missing', async () => {
  const res = await ctx.ingest({});
  assertErrorBody(res, 400, 'VALIDATION_ERROR');
  const missing = res.json.errors
    .filter((e) => e.type === 'missing')
    .map((e) => e.loc.join('.'))
    .sort();
  assert.deepEqual(missing, ['body.cold_start', 'body.execution_duration_ms', 'body.function_name', 'body.timestamp']);
});

for (const [name, body] of [
  ['a JSON array', '[]'],
  ['a JSON number', '42'],
  ['a JSON string', '"record"'],
  ['JSON null', 'null'],
]) {
  test(`rejects ${name} as the body: 400 VALIDATION_ERROR`, async () => {
    const res = await ctx.ingest(body, { headers: { 'Content-Type': 'application/json' } });
    assertErrorBody(res, 400, 'VALIDATION_ERROR', name);
  });
}

// Malformed JSON: [name, raw body (string or Buffer), detail must match]
const good = JSON.stringify(minimalRecord());
const deep = (n) => '['.repeat(n) + ']'.repeat(n);
const MALFORMED = [
  [
    'invalid UTF-8',
    Buffer.concat([
      Buffer.from('{"function_name":"bad'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","timestamp":"2026-01-02T10:30:00Z","cold_start":false,"execution_duration_ms":1}'),
    ]),
    /utf-?8|decode|byte|encoding/i,
  ],
  [
    'an overlong UTF-8 sequence',
    Buffer.concat([Buffer.from('{"function_name":"x'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),
    /utf-?8|decode|byte|encoding/i,
  ],
  ['an escaped NUL', good.replace('"function_name":"checkout-api"', '"function_name":"a\\u0000b"'), /nul|\\u0000|zero|null (byte|char)/i],
  [
    'a raw NUL byte',
    Buffer.from(good.replace('"function_name":"checkout-api"', '"function_name":"a\u0000b"')),
    /nul|\\u0000|zero|null (byte|char)|control/i,
  ],
  ['NaN', good.replace('"execution_duration_ms":12', '"execution_duration_ms":NaN'), /nan|invalid|token|unexpected/i],
  ['Infinity', good.replace('"execution_duration_ms":12', '"execution_duration_ms":Infinity'), /infinity|invalid|token|unexpected/i],
  ['trailing garbage', good + ' xyz', /trailing|garbage|end of (file|input)|extra|after/i],
  ['two JSON documents', good + good, /trailing|garbage|end of (file|input)|extra|after/i],
  ['a duplicate key', good.replace('{', '{"function_name":"dup",'), /duplicate/i],
  ['nesting deeper than 32', good.replace('{', `{"module_tree":${deep(40)},`), /nest|depth|deep/i],
  ['an integer beyond int64', good.replace('"execution_duration_ms":12', '"execution_duration_ms":99999999999999999999'), /./],
  ['a truncated document', good.slice(0, -5), /./],
  ['an empty body', '', /./],
  ['a single quote string', "{'function_name':'x'}", /./],
];

for (const [name, body, detailRe] of MALFORMED) {
  test(`rejects malformed JSON (${name}): 400 VALIDATION_ERROR naming the problem`, async () => {
    const res = await ctx.ingest(body, { headers: { 'Content-Type': 'application/json' } });
    assertErrorBody(res, 400, 'VALIDATION_ERROR', name);
    assert.match(res.json.detail, detailRe, `detail should name the problem (${name}): ${res.json.detail}`);
  });
}

// Boundaries that must be accepted.
const VALID = [
  ['execution_duration_ms 0', { execution_duration_ms: 0 }],
  ['execution_duration_ms 900000', { execution_duration_ms: 900000 }],
  ['every duration at its limits', { init_duration_ms: 0, billed_duration_ms: 900000 }],
  ['memory_allocated_mb 128 and memory_used_mb 0', { memory_allocated_mb: 128, memory_used_mb: 0 }],
  ['memory at 10240', { memory_allocated_mb: 10240, memory_used_mb: 10240 }],
  ['a 255-character function_name', { function_name: 'n'.repeat(255) }],
  ['a 255-character invocation_id', { invocation_id: 'x'.repeat(247) + Math.random().toString(36).slice(2, 10).padEnd(8, '0') }],
  ['a timestamp 23 h in the future', { timestamp: hoursFromNow(23) }],
  ['a timestamp with lower-case t and z', { timestamp: '2026-01-02t10:30:00.123456z' }],
  ['a timestamp with a negative offset', { timestamp: '2026-01-02T05:30:00-05:00' }],
  ['a leap day', { timestamp: '2024-02-29T23:59:59Z' }],
  ['architecture arm64', { architecture: 'arm64' }],
  ['region eu-central-1', { region: 'eu-central-1' }],
  ['a 50-character region', { region: 'a'.repeat(50) }],
  ['every start_kind', { start_kind: 'proactive' }],
  ['start_kind provisioned', { start_kind: 'provisioned' }],
  ['start_kind warm', { start_kind: 'warm' }],
  [
    'module_timings with 2000 entries',
    { module_timings: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`m${i}`, i % 7 === 0 ? 0 : i / 3])) },
  ],
  ['an empty module_timings', { module_timings: {} }],
  ['module_tree as an array nested 20 deep', { module_tree: JSON.parse(deep(20)) }],
  ['cold_start true', { cold_start: true }],
];
const acceptedIds = [];

for (const [name, overrides] of VALID) {
  test(`accepts ${name}`, async () => {
    const rec = minimalRecord({ function_name: 'boundaries', ...overrides });
    const res = await ctx.ingest(rec);
    assert.equal(res.status, 200, `${name}: ${res.text.slice(0, 500)}`);
    assert.equal(res.json.invocation_id, rec.invocation_id);
    acceptedIds.push(rec.invocation_id);
  });
}

test('rejected records left no rows; accepted boundary records are all stored', async () => {
  const ids = rejectedIds.map(lit).join(',');
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${ids})`), 0);
  assert.ok(acceptedIds.length === VALID.length, 'every boundary case was accepted');
  const accepted = acceptedIds.map(lit).join(',');
  assert.equal(await ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${accepted})`), VALID.length);
  // only valid records ever reached the table
  const total = await ctx.count('SELECT count(*) FROM invocations');
  assert.equal(total, VALID.length, 'rows other than the accepted boundary records were stored');
});

test('a full record still validates after all that (sanity)', async () => {
  const res = await ctx.ingest(fullRecord());
  assert.equal(res.status, 200, res.text);
});
