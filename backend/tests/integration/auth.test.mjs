// API keys: refusals, revocation within KEY_CACHE_TTL, tenancy, hashes only, never in logs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { useServer, minimalRecord, assertErrorBody, runCli, cliKey, createProject, lit, sleep, KEY_RE } from './harness.mjs';

const ctx = useServer({ env: { KEY_CACHE_TTL: 1 } });
const sentKeys = []; // every key-like string sent to the server, to look for in the logs

const randomAlnum = (n) => {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(n), (b) => abc[b % abc.length]).join('');
};
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const ingestAs = (key, rec) => {
  if (key) sentKeys.push(key);
  return ctx.request('POST', '/api/v1/ingest', { body: rec, headers: key === undefined ? {} : { 'X-API-Key': key } });
};
const countId = (id) => ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id = ${lit(id)}`);

test('the project key is csa_ + 32 alphanumerics', () => {
  assert.match(ctx.key, KEY_RE);
  sentKeys.push(ctx.key);
});

for (const [name, key] of [
  ['no X-API-Key header', undefined],
  ['an empty key', ''],
  ['a key without the csa_ prefix', randomAlnum(36)],
  ['a short key', 'csa_' + randomAlnum(8)],
  ['a long key', 'csa_' + randomAlnum(40)],
  ['a key with punctuation', 'csa_' + randomAlnum(30) + '-_'],
  ['a well-formed unknown key', 'csa_' + randomAlnum(32)],
  ['the real key with a changed last character', null],
]) {
  test(`${name} is refused with 401 AUTHENTICATION_ERROR and stores nothing`, async () => {
    const sent = key === null ? ctx.key.slice(0, -1) + (ctx.key.endsWith('a') ? 'b' : 'a') : key;
    const rec = minimalRecord({ function_name: 'auth-refused' });
    const res = await ingestAs(sent, rec);
    assertErrorBody(res, 401, 'AUTHENTICATION_ERROR', name);
    assert.equal(await countId(rec.invocation_id), 0);
  });
}

test('the valid key is accepted', async () => {
  const rec = minimalRecord({ function_name: 'auth-ok' });
  const res = await ingestAs(ctx.key, rec);
  assert.equal(res.status, 200, res.text);
  assert.equal(await countId(rec.invocation_id), 1);
});

test('the database keeps only the SHA-256 and the 8-character prefix of a key', async () => {
  const rows = await ctx.rows(
    `SELECT k.key_hash, k.key_prefix, k.is_active FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE p.slug = ${lit(ctx.projectSlug)} AND k.name = 'admin'`,
  );
  assert.equal(rows.length, 1);
  assert.equal(rows[0].key_hash, sha256(ctx.key));
  assert.equal(rows[0].key_prefix, ctx.key.slice(0, 8));
  assert.equal(rows[0].is_active, true);
  for (const secret of [ctx.key.slice(4), ctx.ingestKey.slice(4)]) {
    for (const table of ['projects', 'api_keys', 'functions', 'invocations', 'schema_migrations']) {
      const n = await ctx.count(`SELECT count(*) FROM ${table} t WHERE row_to_json(t)::text LIKE ${lit('%' + secret.slice(0, 16) + '%')}`);
      assert.equal(n, 0, `the key appears in table ${table}`);
    }
  }
});

test('last_used_at is set once the key is used', async () => {
  let v = null;
  for (let i = 0; i < 50 && !v; i++) {
    v = await ctx.sql(`SELECT last_used_at FROM api_keys WHERE key_hash = ${lit(sha256(ctx.key))}`);
    if (!v) await sleep(200);
  }
  assert.ok(v, 'last_used_at still NULL 10 s after the key was used');
  assert.ok(
    Math.abs(Date.parse(v.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')) - Date.now()) < 120000,
    `last_used_at ${v} is not recent`,
  );
});

test('last_used_at is coalesced: more requests within the minute do not rewrite it', async () => {
  const read = () => ctx.sql(`SELECT last_used_at FROM api_keys WHERE key_hash = ${lit(sha256(ctx.key))}`);
  const first = await read();
  assert.ok(first, 'last_used_at is set');
  for (let i = 0; i < 5; i++) assert.equal((await ingestAs(ctx.key, minimalRecord({ function_name: 'coalesce' }))).status, 200);
  await sleep(1500); // room for an asynchronous update, if the server (wrongly) made one
  assert.equal(await read(), first, 'last_used_at was rewritten within the same minute');
});

test("a key of project A stores into project A only; B's key into B", async () => {
  const keyB = await createProject(ctx.db.url, 'Tenant B', 'tenant-b');
  sentKeys.push(keyB);
  const recA = minimalRecord({ function_name: 'shared-name' });
  const recB = minimalRecord({ function_name: 'shared-name' });
  assert.equal((await ingestAs(ctx.key, recA)).status, 200);
  const resB = await ingestAs(keyB, recB);
  assert.equal(resB.status, 200, resB.text);
  const rows = await ctx.rows(`SELECT i.invocation_id, p.slug, fp.slug AS function_slug
      FROM invocations i JOIN projects p ON p.id = i.project_id JOIN functions f ON f.id = i.function_id JOIN projects fp ON fp.id = f.project_id
     WHERE i.invocation_id IN (${lit(recA.invocation_id)}, ${lit(recB.invocation_id)}) ORDER BY p.slug`);
  const bySlug = Object.fromEntries(rows.map((r) => [r.invocation_id, r]));
  assert.equal(bySlug[recA.invocation_id].slug, ctx.projectSlug);
  assert.equal(bySlug[recA.invocation_id].function_slug, ctx.projectSlug);
  assert.equal(bySlug[recB.invocation_id].slug, 'tenant-b');
  assert.equal(bySlug[recB.invocation_id].function_slug, 'tenant-b');
  assert.equal(await ctx.count(`SELECT count(*) FROM functions WHERE function_name = 'shared-name'`), 2, 'one function row per project');
});

test('a key made by create-key works for its project, and revoke-key stops it within KEY_CACHE_TTL', async () => {
  const key2 = await cliKey(['create-key', '--project', ctx.projectSlug, '--name', 'second'], ctx.db.url);
  sentKeys.push(key2);
  assert.notEqual(key2, ctx.key);
  const rec = minimalRecord({ function_name: 'second-key' });
  const ok = await ingestAs(key2, rec);
  assert.equal(ok.status, 200, ok.text);
  const [row] = await ctx.rows(
    `SELECT p.slug FROM invocations i JOIN projects p ON p.id = i.project_id WHERE invocation_id = ${lit(rec.invocation_id)}`,
  );
  assert.equal(row.slug, ctx.projectSlug);

  const r = await runCli(['revoke-key', '--prefix', key2.slice(0, 8)], { env: { DATABASE_URL: ctx.db.url } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await ctx.sql(`SELECT is_active FROM api_keys WHERE key_hash = ${lit(sha256(key2))}`), 'f');

  // KEY_CACHE_TTL=1: give it a generous margin on a loaded machine, but it must stop.
  const t0 = Date.now();
  let res;
  const refusedIds = [];
  for (;;) {
    const rr = minimalRecord({ function_name: 'revoked-key' });
    res = await ingestAs(key2, rr);
    if (res.status === 401) {
      refusedIds.push(rr.invocation_id);
      break;
    }
    if (Date.now() - t0 > 8000) break;
    await sleep(250);
  }
  assertErrorBody(res, 401, 'AUTHENTICATION_ERROR', `revoked key still accepted ${Date.now() - t0} ms after revoke-key`);
  assert.equal(await countId(refusedIds[0]), 0);
  // the project's other key is untouched
  const still = await ingestAs(ctx.key, minimalRecord({ function_name: 'first-key-still-works' }));
  assert.equal(still.status, 200, still.text);
});

test('an API key never appears in the server log, and every log line is JSON', async () => {
  await sleep(300); // let the last lines arrive
  const all = ctx.server.stderrLines.join('\n');
  assert.ok(ctx.server.stderrLines.length > 0, 'the server logged nothing');
  for (const k of sentKeys) {
    if (k.length < 12) continue;
    assert.ok(!all.includes(k), `API key ${k.slice(0, 8)}... appears in the server log`);
    assert.ok(!all.includes(k.slice(4)), `the secret part of ${k.slice(0, 8)}... appears in the server log`);
  }
  assert.deepEqual(
    ctx.server.logs.filter((l) => l._raw !== undefined).map((l) => l._raw),
    [],
  );
  const refused = ctx.server.logs.filter((l) => Number(l.status) === 401);
  assert.ok(refused.length >= 8, `expected the 401s to be logged as request lines, found ${refused.length}`);
});
