// A function's cold starts one by one (issue 18: the icicle graph of a chosen cold start or of the
// window's typical one), over real HTTP and a real PostgreSQL: the list newest first and
// keyset-paged (ties on the timestamp included, invocation ids with '|', '/', '?' and non-ASCII
// characters), the typical cold start (nearest the median init of the on-demand cold starts, ties
// to the newest), one cold start's tree by its invocation_id; another project's key sees 404; bad
// parameters are 400 naming the parameter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, createProject, fullRecord, minimalRecord, lit, assertErrorBody, assertValidationError } from './harness.mjs';

const ctx = useServer();
const FN = 'cs-fn';
const NOW = Date.now();
const at = (minutesAgo) => new Date(NOW - minutesAgo * 60000).toISOString();
const tree = (label, ms) => ({
  name: 'root',
  load_ms: ms,
  children: [
    { name: label, version: '1.2.3', self: ms - 5, inclusive: ms, children: [{ name: 'tslib', version: '2.6.0', self: 5, inclusive: 5 }] },
  ],
});

// on-demand cold starts (start_kind cold or absent); init 300 has no tree; 200 and 400 are equally
// near the median (300): 400 is the newer, so it is the typical one
const ON_DEMAND = [
  { id: 'od-100', init: 100, min: 50 },
  { id: 'od-200', init: 200, min: 40 },
  { id: 'od-300|no/tree?', init: 300, min: 30, noTree: true, kind: null },
  { id: 'od-400 é', init: 400, min: 20 },
  { id: 'od-500', init: 500, min: 10 },
];
const SAME_TIME = ['tie-a', 'tie-b', 'tie-c']; // three cold starts at one timestamp: the keyset's tie-break
let fnId;
let otherKey;
let otherFnId;

function coldRecord({ id, init, min, noTree, kind = 'cold', ...extra }) {
  const r = fullRecord({
    function_name: FN,
    invocation_id: id,
    timestamp: at(min),
    init_duration_ms: init,
    start_kind: kind ?? undefined,
    module_tree: noTree ? undefined : tree(`pkg-${id}`, init - 20),
    function_version: '7',
    code_id: 'code-7',
    ...extra,
  });
  if (kind === null) delete r.start_kind;
  if (noTree) delete r.module_tree;
  return r;
}

const get = (path, key = ctx.key) => ctx.get(path, { headers: { 'X-API-Key': key } });
const list = (query = '', key) => get(`/api/v1/functions/${fnId}/cold-starts${query}`, key);

test('set-up: cold starts of every kind, warm invocations, one outside the window, another project', async () => {
  const records = [
    ...ON_DEMAND.map(coldRecord),
    coldRecord({ id: 'proactive-300', init: 300, min: 25, kind: 'proactive' }),
    coldRecord({ id: 'provisioned-290', init: 290, min: 24, kind: 'provisioned', init_type: 'provisioned-concurrency' }),
    ...SAME_TIME.map((id) => coldRecord({ id, init: 900, min: 5 })),
    coldRecord({ id: 'old-300', init: 300, min: 8 * 24 * 60 }), // 8 days ago: outside the default window
    minimalRecord({ function_name: FN, invocation_id: 'warm-1', timestamp: at(15) }),
    minimalRecord({ function_name: FN, invocation_id: 'warm-2', timestamp: at(1) }),
  ];
  const res = await ctx.batch({ invocations: records });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.processed, records.length, res.text);
  fnId = (await ctx.rows(`SELECT id FROM functions WHERE function_name = ${lit(FN)}`))[0].id;
  otherKey = await createProject(ctx.db.url, 'Other', 'cs-other');
  const o = await ctx.batch({ invocations: [coldRecord({ id: 'other-1', init: 100, min: 5 })] }, { key: otherKey });
  assert.equal(o.status, 200, o.text);
  otherFnId = (await ctx.rows(`SELECT f.id FROM functions f JOIN projects p ON p.id = f.project_id WHERE p.slug = 'cs-other'`))[0].id;
});

test('the list: cold starts of the last 7 days, newest first, with their figures; warm invocations are not in it', async () => {
  const res = await list();
  assert.equal(res.status, 200, res.text);
  const ids = res.json.cold_starts.map((c) => c.invocation_id);
  const expected = [
    'tie-c',
    'tie-b',
    'tie-a',
    'od-500',
    'od-400 é',
    'provisioned-290',
    'proactive-300',
    'od-300|no/tree?',
    'od-200',
    'od-100',
  ];
  assert.deepEqual(ids, expected);
  assert.equal(res.json.next_cursor, null);
  assert.match(res.json.window.from, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(
    Math.abs(Date.parse(res.json.window.to) - Date.parse(res.json.window.from) - 7 * 86400000) < 1000,
    JSON.stringify(res.json.window),
  );
  const c400 = res.json.cold_starts.find((c) => c.invocation_id === 'od-400 é');
  assert.deepEqual(c400, {
    invocation_id: 'od-400 é',
    request_id: c400.request_id,
    timestamp: at(20),
    start_kind: 'cold',
    init_type: 'on-demand',
    init_duration_ms: 400,
    function_version: '7',
    code_id: 'code-7',
    runtime_version: 'nodejs18.x',
    memory_allocated_mb: 512,
    has_module_tree: true,
  });
  assert.match(c400.request_id, /^req-/);
  const noTree = res.json.cold_starts.find((c) => c.invocation_id === 'od-300|no/tree?');
  assert.equal(noTree.has_module_tree, false);
  assert.equal(noTree.start_kind, 'cold', 'a record without start_kind is an on-demand cold start');
  const prov = res.json.cold_starts.find((c) => c.invocation_id === 'provisioned-290');
  assert.equal(prov.start_kind, 'provisioned');
  assert.equal(prov.init_type, 'provisioned-concurrency');
  // a window that holds the 8-day-old one only
  const old = await list(`?from=${encodeURIComponent(at(8 * 24 * 60 + 1))}&to=${encodeURIComponent(at(7 * 24 * 60 + 1))}`);
  assert.equal(old.status, 200, old.text);
  assert.deepEqual(
    old.json.cold_starts.map((c) => c.invocation_id),
    ['old-300'],
  );
  // a window with none
  const none = await list('?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z');
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.json, {
    window: { from: '2020-01-01T00:00:00.000Z', to: '2020-01-02T00:00:00.000Z' },
    cold_starts: [],
    next_cursor: null,
  });
});

test('keyset paging: every page size walks the same list, no cold start twice or skipped, ties on the timestamp too', async () => {
  const all = (await list('?limit=200')).json.cold_starts.map((c) => c.invocation_id);
  assert.equal(all.length, 10);
  for (const size of [1, 2, 3, 4, 9]) {
    const seen = [];
    let cursor = null;
    let pages = 0;
    do {
      const res = await list(`?limit=${size}${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.cold_starts.length <= size);
      seen.push(...res.json.cold_starts.map((c) => c.invocation_id));
      cursor = res.json.next_cursor;
      if (cursor) assert.match(cursor, /^[0-9a-f]+$/, 'an opaque cursor safe in a URL');
      assert.ok(++pages <= 11, 'paging ends');
    } while (cursor);
    assert.deepEqual(seen, all, `pages of ${size}`);
    assert.equal(pages, Math.ceil(all.length / size));
  }
  // the cursor belongs to the window it was made in: a narrower window continues within itself
  const first = await list(`?limit=2&from=${encodeURIComponent(at(45))}`);
  assert.deepEqual(
    first.json.cold_starts.map((c) => c.invocation_id),
    ['tie-c', 'tie-b'],
  );
  const second = await list(`?limit=100&from=${encodeURIComponent(at(45))}&cursor=${first.json.next_cursor}`);
  assert.deepEqual(
    second.json.cold_starts.map((c) => c.invocation_id),
    ['tie-a', 'od-500', 'od-400 é', 'provisioned-290', 'proactive-300', 'od-300|no/tree?', 'od-200'],
  );
});

test('the typical cold start: the on-demand one with a tree nearest the median init, ties to the newest', async () => {
  const res = await get(`/api/v1/functions/${fnId}/cold-starts/typical?from=${encodeURIComponent(at(60))}&to=${encodeURIComponent(at(6))}`);
  assert.equal(res.status, 200, res.text);
  // on-demand in the window: 100, 200, 300 (no tree), 400, 500: median 300; 200 and 400 are 100 ms away
  assert.equal(res.json.median_init_duration_ms, 300);
  assert.equal(res.json.on_demand_cold_starts, 5);
  assert.equal(res.json.with_module_tree, 4);
  const c = res.json.cold_start;
  assert.equal(c.invocation_id, 'od-400 é');
  assert.equal(c.init_duration_ms, 400);
  assert.equal(c.has_module_tree, true);
  assert.deepEqual(c.module_tree, tree('pkg-od-400 é', 380));
  // the default window (7 days) adds the three at 900 ms: median of 100..500 and 900 x3 is 450
  const wide = await get(`/api/v1/functions/${fnId}/cold-starts/typical`);
  assert.equal(wide.status, 200, wide.text);
  assert.equal(wide.json.median_init_duration_ms, 450);
  assert.equal(wide.json.on_demand_cold_starts, 8);
  assert.equal(wide.json.cold_start.invocation_id, 'od-500', '400 and 500 are both 50 ms away: the newer one');
});

test('no cold start with a tree in the window: cold_start is null, the counts say why', async () => {
  const only300 = await get(
    `/api/v1/functions/${fnId}/cold-starts/typical?from=${encodeURIComponent(at(31))}&to=${encodeURIComponent(at(29))}`,
  );
  assert.equal(only300.status, 200, only300.text);
  assert.deepEqual(
    { ...only300.json, window: undefined },
    { window: undefined, median_init_duration_ms: 300, on_demand_cold_starts: 1, with_module_tree: 0, cold_start: null },
  );
  const empty = await get(`/api/v1/functions/${fnId}/cold-starts/typical?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`);
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.json, {
    window: { from: '2020-01-01T00:00:00.000Z', to: '2020-01-02T00:00:00.000Z' },
    median_init_duration_ms: null,
    on_demand_cold_starts: 0,
    with_module_tree: 0,
    cold_start: null,
  });
});

test('one cold start by its invocation_id, with its module tree; a warm or unknown id is 404', async () => {
  const one = (id, key) => get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=${encodeURIComponent(id)}`, key);
  for (const c of ON_DEMAND) {
    const res = await one(c.id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.cold_start.invocation_id, c.id);
    assert.equal(res.json.cold_start.init_duration_ms, c.init);
    assert.deepEqual(res.json.cold_start.module_tree, c.noTree ? null : tree(`pkg-${c.id}`, c.init - 20));
  }
  const prov = await one('provisioned-290');
  assert.equal(prov.json.cold_start.start_kind, 'provisioned');
  assert.equal((await one('old-300')).status, 200, 'not bound to a window');
  assertErrorBody(await one('warm-1'), 404, 'NOT_FOUND', 'a warm invocation');
  const unknown = await one('no-such-invocation');
  assertErrorBody(unknown, 404, 'NOT_FOUND', 'unknown id');
  assert.match(unknown.json.detail, /Cold start not found/);
});

test("another project's key sees 404 for each read, and its own function is not reachable through this one", async () => {
  for (const suffix of ['/cold-starts', '/cold-starts/typical', `/cold-starts/tree?invocation_id=od-100`]) {
    const res = await get(`/api/v1/functions/${fnId}${suffix}`, otherKey);
    assertErrorBody(res, 404, 'NOT_FOUND', `other project: ${suffix}`);
    assert.equal(res.json.detail, 'Function not found');
    // and the other way round: this key, the other project's function
    assertErrorBody(
      await get(`/api/v1/functions/${otherFnId}${suffix.replace('od-100', 'other-1')}`),
      404,
      'NOT_FOUND',
      `this key, other function: ${suffix}`,
    );
  }
  // the other project sees its own
  const own = await get(`/api/v1/functions/${otherFnId}/cold-starts/tree?invocation_id=other-1`, otherKey);
  assert.equal(own.status, 200, own.text);
  // malformed and unknown function ids
  for (const id of ['not-a-uuid', '00000000-0000-4000-8000-000000000000']) {
    assertErrorBody(await get(`/api/v1/functions/${id}/cold-starts`), 404, 'NOT_FOUND', id);
    assertErrorBody(await get(`/api/v1/functions/${id}/cold-starts/typical`), 404, 'NOT_FOUND', id);
    assertErrorBody(await get(`/api/v1/functions/${id}/cold-starts/tree?invocation_id=x`), 404, 'NOT_FOUND', id);
  }
});

test('bad parameters are 400 VALIDATION_ERROR naming the parameter', async () => {
  const hex = (s) => Buffer.from(s).toString('hex');
  const cases = [
    ['/cold-starts?limit=0', 'limit', 'int_parsing'],
    ['/cold-starts?limit=201', 'limit', 'int_parsing'],
    ['/cold-starts?limit=ten', 'limit', 'int_parsing'],
    ['/cold-starts?cursor=zz', 'cursor', 'value_error'],
    [`/cold-starts?cursor=${hex('yesterday|od-100')}`, 'cursor', 'value_error'],
    [`/cold-starts?cursor=${hex('2026-01-01T00:00:00Z')}`, 'cursor', 'value_error'],
    [`/cold-starts?cursor=${hex('2026-01-01T00:00:00Z|')}`, 'cursor', 'value_error'],
    [`/cold-starts?cursor=${hex('2026-01-01T00:00:00Z|a\tb')}`, 'cursor', 'value_error'],
    [`/cold-starts?cursor=${hex('2026-01-01T00:00:00Z|od-100').toUpperCase()}`, 'cursor', 'value_error'],
    ['/cold-starts?from=nope', 'from', 'datetime_format'],
    ['/cold-starts?to=2026-13-01T00:00:00Z', 'to', 'datetime_format'],
    ['/cold-starts?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'from', 'value_error'],
    ['/cold-starts?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'from', 'value_error'],
    ['/cold-starts?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'from', 'window_too_wide'],
    ['/cold-starts/typical?from=2026-01-01', 'from', 'datetime_format'],
    ['/cold-starts/typical?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'from', 'window_too_wide'],
    ['/cold-starts/tree', 'invocation_id', 'missing'],
    [`/cold-starts/tree?invocation_id=${'x'.repeat(256)}`, 'invocation_id', 'string_type'],
    ['/cold-starts/tree?invocation_id=', 'invocation_id', 'string_type'],
    ['/cold-starts/tree?invocation_id=a%0Ab', 'invocation_id', 'string_type'],
    ['/cold-starts/tree?invocation_id=a%C2%85b', 'invocation_id', 'string_type'], // C1, which ingest refuses too
  ];
  for (const [suffix, param, type] of cases) {
    const res = await get(`/api/v1/functions/${fnId}${suffix}`);
    assertValidationError(res, ['query', param], type, suffix);
  }
  // 255 characters is the longest id, and valid (not found)
  assertErrorBody(
    await get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=${encodeURIComponent('é'.repeat(255))}`),
    404,
    'NOT_FOUND',
    '255 characters',
  );
  // several errors at once, each named
  const both = await get(`/api/v1/functions/${fnId}/cold-starts?limit=0&to=x`);
  assertValidationError(both, ['query', 'limit'], 'int_parsing');
  assertValidationError(both, ['query', 'to'], 'datetime_format');
  // the tree reads no window: from and to are not checked there
  const ignored = await get(`/api/v1/functions/${fnId}/cold-starts/tree?invocation_id=od-100&from=nope`);
  assert.equal(ignored.status, 200, ignored.text);
});

test('the errors are those of the other read routes: the same parameter breaking the same rule reads the same', async () => {
  const wide = 'from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z';
  const same = [
    ['from=nope', `/api/v1/functions/${fnId}`, `/api/v1/functions/${fnId}/cold-starts`],
    ['to=2026-13-01T00:00:00Z', `/api/v1/functions/${fnId}`, `/api/v1/functions/${fnId}/cold-starts/typical`],
    [wide, `/api/v1/functions/${fnId}`, `/api/v1/functions/${fnId}/cold-starts`],
    [wide, `/api/v1/functions/${fnId}`, `/api/v1/functions/${fnId}/cold-starts/typical`],
    ['limit=0', '/api/v1/functions', `/api/v1/functions/${fnId}/cold-starts`],
    ['cursor=zz', '/api/v1/functions', `/api/v1/functions/${fnId}/cold-starts`],
  ];
  for (const [query, other, coldStarts] of same) {
    const a = await get(`${other}?${query}`);
    const b = await get(`${coldStarts}?${query}`);
    assertErrorBody(a, 400, 'VALIDATION_ERROR', `${other}?${query}`);
    assertErrorBody(b, 400, 'VALIDATION_ERROR', `${coldStarts}?${query}`);
    assert.deepEqual(b.json.errors, a.json.errors, query);
    assert.equal(b.json.detail, a.json.detail, query);
  }
});
