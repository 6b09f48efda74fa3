// POST /api/v1/ingest/batch: per-item validation, partial results, the envelope, 1000-item limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, minimalRecord, fullRecord, assertErrorBody, lit, uid } from './harness.mjs';

const ctx = useServer();

const countIds = (ids) => ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${ids.map(lit).join(',')})`);

function failuresOf(res) {
  return res.json.failures || [];
}

test('a batch of valid records is stored whole and answered ok', async () => {
  const items = [
    fullRecord({ function_name: 'batch-a' }),
    minimalRecord({ function_name: 'batch-b' }),
    minimalRecord({ function_name: 'batch-a' }),
  ];
  const res = await ctx.batch({ invocations: items });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'ok');
  assert.equal(res.json.processed, 3);
  assert.equal(res.json.failed, 0);
  assert.deepEqual(failuresOf(res), []);
  assert.ok(res.headers.get('x-request-id'));
  assert.equal(await countIds(items.map((i) => i.invocation_id)), 3);
  // the full record's columns went through the batch path too
  const [row] = await ctx.rows(
    `SELECT init_duration_ms, memory_allocated_mb, architecture, module_timings FROM invocations WHERE invocation_id = ${lit(items[0].invocation_id)}`,
  );
  assert.equal(row.init_duration_ms, 2850);
  assert.equal(row.memory_allocated_mb, 512);
  assert.equal(row.architecture, 'x86_64');
  assert.deepEqual(row.module_timings, items[0].module_timings);
  const fns = await ctx.rows(
    `SELECT function_name, region, runtime FROM functions WHERE function_name IN ('batch-a','batch-b') ORDER BY 1`,
  );
  assert.deepEqual(
    fns.map((f) => f.function_name),
    ['batch-a', 'batch-b'],
    'one functions row per name',
  );
});

test('a mixed batch stores the valid items and lists each invalid one with its index and errors', async () => {
  const items = [
    minimalRecord({ function_name: 'mixed' }),
    minimalRecord({ function_name: 'mixed', cold_start: 'yes' }),
    minimalRecord({ function_name: 'mixed' }),
    (() => {
      const r = minimalRecord({ architecture: 'sparc' });
      delete r.function_name;
      return r;
    })(),
    minimalRecord({ function_name: 'mixed', execution_duration_ms: 900001 }),
    fullRecord({ function_name: 'mixed' }),
  ];
  const res = await ctx.batch({ invocations: items });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'partial');
  assert.equal(res.json.processed, 3);
  assert.equal(res.json.failed, 3);
  const failures = failuresOf(res);
  assert.deepEqual(
    failures.map((f) => f.index),
    [1, 3, 4],
  );
  const find = (i, field) =>
    failures.find((f) => f.index === i).errors.find((e) => JSON.stringify(e.loc) === JSON.stringify(['body', 'invocations', i, field]));
  assert.equal(find(1, 'cold_start')?.type, 'bool_type', JSON.stringify(failures[0]));
  assert.equal(find(3, 'function_name')?.type, 'missing', JSON.stringify(failures[1]));
  assert.equal(find(3, 'architecture')?.type, 'literal_error', JSON.stringify(failures[1]));
  assert.equal(find(4, 'execution_duration_ms')?.type, 'less_than_equal', JSON.stringify(failures[2]));
  for (const f of failures) for (const e of f.errors) assert.equal(typeof e.msg, 'string');
  assert.equal(await countIds([0, 2, 5].map((i) => items[i].invocation_id)), 3, 'valid items stored');
  assert.equal(await countIds([1, 3, 4].map((i) => items[i].invocation_id)), 0, 'invalid items not stored');
});

test('a batch whose items are all invalid is "partial" with processed 0', async () => {
  const items = [minimalRecord({ timestamp: 'nope' }), minimalRecord({ memory_allocated_mb: 1 })];
  const res = await ctx.batch({ invocations: items });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'partial');
  assert.equal(res.json.processed, 0);
  assert.equal(res.json.failed, 2);
  assert.deepEqual(
    failuresOf(res).map((f) => f.index),
    [0, 1],
  );
  assert.equal(await countIds(items.map((i) => i.invocation_id)), 0);
});

test('items that are not objects fail on their own', async () => {
  const ok = minimalRecord({ function_name: 'non-object-neighbours' });
  const res = await ctx.batch({ invocations: [42, ok, 'text', null, [ok]] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'partial');
  assert.equal(res.json.processed, 1);
  assert.equal(res.json.failed, 4);
  assert.deepEqual(
    failuresOf(res).map((f) => f.index),
    [0, 2, 3, 4],
  );
  for (const f of failuresOf(res)) {
    assert.ok(f.errors.length > 0);
    for (const e of f.errors) assert.deepEqual(e.loc.slice(0, 3), ['body', 'invocations', f.index]);
  }
  assert.equal(await countIds([ok.invocation_id]), 1);
});

test('1000 items are accepted and all stored', async () => {
  const items = Array.from({ length: 1000 }, (_, i) => minimalRecord({ function_name: `bulk-${i % 10}`, cold_start: i % 3 === 0 }));
  const res = await ctx.batch({ invocations: items });
  assert.equal(res.status, 200, res.text.slice(0, 500));
  assert.deepEqual(
    { status: res.json.status, processed: res.json.processed, failed: res.json.failed },
    { status: 'ok', processed: 1000, failed: 0 },
  );
  assert.equal(
    await ctx.count(`SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name LIKE 'bulk-%'`),
    1000,
  );
  assert.equal(await ctx.count(`SELECT count(*) FROM functions WHERE function_name LIKE 'bulk-%'`), 10);
  assert.equal(
    await ctx.count(
      `SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name LIKE 'bulk-%' AND cold_start`,
    ),
    334,
  );
});

test('more distinct functions than a writer remembers: every record stored, each function once', async () => {
  // Each writer thread remembers the functions it upserted in the last second (1,024 of them, a
  // hash table cleared when full) and skips their upsert. 2,500 functions in 1,000-item batches
  // fill and clear that table; the same functions again within the second take the lookup-only
  // path for those still remembered and the upsert for the rest: nothing may be dropped either way.
  const names = Array.from({ length: 2500 }, (_, i) => `touch-${i}`);
  const round = async () => {
    const items = names.map((function_name) => minimalRecord({ function_name }));
    for (let i = 0; i < items.length; i += 1000) {
      const res = await ctx.batch({ invocations: items.slice(i, i + 1000) });
      assert.equal(res.status, 200, res.text.slice(0, 300));
      assert.equal(res.json.failed, 0);
    }
    return items;
  };
  const first = await round();
  const second = await round();
  assert.equal(first.length + second.length, 5000);
  assert.equal(
    await ctx.count(`SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name LIKE 'touch-%'`),
    5000,
  );
  assert.equal(await ctx.count(`SELECT count(*) FROM functions WHERE function_name LIKE 'touch-%'`), 2500);
  assert.equal(
    await ctx.count(
      `SELECT count(DISTINCT f.function_name) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name LIKE 'touch-%'`,
    ),
    2500,
  );
});

test('the same batch sent again adds no rows', async () => {
  const items = Array.from({ length: 50 }, () => minimalRecord({ function_name: 'replayed-batch' }));
  const a = await ctx.batch({ invocations: items });
  const b = await ctx.batch({ invocations: items });
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.equal(b.json.failed, 0);
  assert.equal(await countIds(items.map((i) => i.invocation_id)), 50);
});

test('a record repeated inside one batch is stored once', async () => {
  const rec = minimalRecord({ function_name: 'dup-in-batch' });
  const other = minimalRecord({ function_name: 'dup-in-batch' });
  const res = await ctx.batch({ invocations: [rec, other, rec] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.failed, 0);
  assert.equal(await countIds([rec.invocation_id]), 1);
  assert.equal(await countIds([other.invocation_id]), 1);
});

test('records without invocation_id get distinct generated ids in a batch', async () => {
  const items = Array.from({ length: 5 }, () => {
    const r = minimalRecord({ function_name: 'batch-generated' });
    delete r.invocation_id;
    return r;
  });
  const res = await ctx.batch({ invocations: items });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.processed, 5);
  assert.equal(
    await ctx.count(
      `SELECT count(DISTINCT i.invocation_id) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = 'batch-generated'`,
    ),
    5,
  );
});

test('1001 items are refused with 400 and nothing is stored', async () => {
  const items = Array.from({ length: 1001 }, () => minimalRecord({ function_name: 'too-many' }));
  const res = await ctx.batch({ invocations: items });
  assertErrorBody(res, 400, 'VALIDATION_ERROR', '1001 items');
  assert.equal(
    await ctx.count(`SELECT count(*) FROM functions f JOIN invocations i ON i.function_id = f.id WHERE f.function_name = 'too-many'`),
    0,
  );
});

for (const [name, body, loc] of [
  ['a missing invocations array', {}, ['body', 'invocations']],
  ['an empty invocations array', { invocations: [] }, ['body', 'invocations']],
  ['invocations as a string', { invocations: 'x' }, ['body', 'invocations']],
  ['invocations as an object', { invocations: { 0: minimalRecord() } }, ['body', 'invocations']],
  ['a bare array body', [minimalRecord()], null],
  ['a number body', 7, null],
]) {
  test(`the envelope: ${name} is 400 VALIDATION_ERROR`, async () => {
    const res = await ctx.batch(JSON.stringify(body), { headers: { 'Content-Type': 'application/json' } });
    assertErrorBody(res, 400, 'VALIDATION_ERROR', name);
    assert.ok(Array.isArray(res.json.errors) && res.json.errors.length > 0, res.text);
    if (loc)
      assert.ok(
        res.json.errors.some((e) => JSON.stringify(e.loc) === JSON.stringify(loc)),
        `no error at ${loc}: ${res.text}`,
      );
  });
}

test('malformed JSON in a batch is 400', async () => {
  const res = await ctx.batch('{"invocations":[{"function_name":"x",}]}', { headers: { 'Content-Type': 'application/json' } });
  assertErrorBody(res, 400, 'VALIDATION_ERROR');
});

test('a batch needs an API key', async () => {
  const rec = minimalRecord({ function_name: 'batch-no-key' });
  const res = await ctx.request('POST', '/api/v1/ingest/batch', { body: { invocations: [rec] } });
  assertErrorBody(res, 401, 'AUTHENTICATION_ERROR');
  assert.equal(await countIds([rec.invocation_id]), 0);
});

test('concurrent batches for one function all land', async () => {
  const batches = Array.from({ length: 8 }, () =>
    Array.from({ length: 100 }, () => minimalRecord({ function_name: 'concurrent-batches', invocation_id: uid('cb') })),
  );
  const results = await Promise.all(batches.map((b) => ctx.batch({ invocations: b })));
  for (const r of results) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.processed, 100);
  }
  assert.equal(
    await ctx.count(
      `SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = 'concurrent-batches'`,
    ),
    800,
  );
});
