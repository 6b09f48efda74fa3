// The web UI's files (backend/src/ui.c): served at / without a key, with the strict
// Content-Security-Policy, content-hashed immutable assets, a revalidated index.html, ETags and
// 304s, gzip when asked; nothing of the API changes. The UI itself in a real browser:
// ui/test/browser.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { useServer, rawRequest, REPO } from './harness.mjs';

const ctx = useServer({ env: { LOG_REQUESTS: 'true' } });
const DIST = path.join(REPO, 'ui/dist');
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function assetPaths() {
  return readdirSync(path.join(DIST, 'assets')).map((f) => `/assets/${f}`);
}

async function raw(pathname, headers = {}) {
  const res = await fetch(ctx.base + pathname, { headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

test('GET / is index.html, without a key, revalidated every time, under the strict policy', async () => {
  const res = await ctx.get('/');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, readFileSync(path.join(DIST, 'index.html'), 'utf8'));
  assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('content-security-policy'), CSP);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.match(res.headers.get('etag') || '', /^"[0-9a-f]{20}(-gz)?"$/);
  assert.ok(res.headers.get('x-request-id'));
  assert.equal(res.headers.get('x-ratelimit-limit'), null, 'no key, so no rate limit headers');
  const again = await ctx.get('/index.html');
  assert.equal(again.text, res.text);
});

test('every file index.html names is served, immutable, under a name holding its content hash', async () => {
  const html = readFileSync(path.join(DIST, 'index.html'), 'utf8');
  const named = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(named.some((p) => p.endsWith('.js')) && named.some((p) => p.endsWith('.css')), named.join(', '));
  assert.deepEqual([...new Set(named)].sort(), assetPaths().sort(), 'dist/assets holds exactly what index.html uses');
  const types = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml' };
  for (const p of assetPaths()) {
    assert.match(p, /-[A-Z0-9]{8}\.[a-z]+$/, `${p}: no content hash in the name`);
    const res = await raw(p, { 'Accept-Encoding': 'identity' });
    assert.equal(res.status, 200, p);
    assert.ok(res.body.equals(readFileSync(path.join(DIST, p))), `${p}: bytes differ from ui/dist`);
    assert.equal(res.headers.get('content-type'), types[p.split('.').pop()], p);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', p);
    assert.equal(res.headers.get('content-security-policy'), CSP, p);
  }
});

test('If-None-Match with the current ETag answers 304 without a body; another tag gets the file', async () => {
  const first = await raw('/', { 'Accept-Encoding': 'identity' });
  const etag = first.headers.get('etag');
  for (const inm of [etag, `"nope", ${etag}`, `W/${etag}`, '*']) {
    const res = await raw('/', { 'If-None-Match': inm, 'Accept-Encoding': 'identity' });
    assert.equal(res.status, 304, `If-None-Match: ${inm}`);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers.get('etag'), etag);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
  }
  const other = await raw('/', { 'If-None-Match': '"0000000000"', 'Accept-Encoding': 'identity' });
  assert.equal(other.status, 200);
});

test('gzip when the client takes it (a different ETag), identity otherwise or with q=0', async () => {
  const js = assetPaths().find((p) => p.endsWith('.js'));
  const plain = await raw(js, { 'Accept-Encoding': 'identity' });
  const gz = await rawRequest(
    ctx.server.port,
    `GET ${js} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br, gzip;q=0.8\r\nConnection: close\r\n\r\n`,
  );
  const [head] = gz.data.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /\r\nContent-Encoding: gzip\r\n/i);
  assert.match(head, /\r\nVary: Accept-Encoding\r\n/i);
  const etag = /\r\nETag: ("[^"]+")/i.exec(head)[1];
  assert.equal(etag, plain.headers.get('etag').replace(/"$/, '-gz"'));
  const bodyStart = Buffer.from(gz.data, 'latin1').indexOf('\r\n\r\n') + 4;
  assert.ok(gunzipSync(Buffer.from(gz.data, 'latin1').subarray(bodyStart)).equals(plain.body), 'gunzipped bytes are the file');
  const refused = await rawRequest(
    ctx.server.port,
    `GET ${js} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0\r\nConnection: close\r\n\r\n`,
  );
  assert.doesNotMatch(refused.data.split('\r\n\r\n')[0], /Content-Encoding/i);
});

test('HEAD gives the headers and Content-Length, no body', async () => {
  const res = await rawRequest(ctx.server.port, 'HEAD / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n');
  const [head, body] = res.data.split('\r\n\r\n');
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, new RegExp(`\\r\\nContent-Length: ${readFileSync(path.join(DIST, 'index.html')).length}\\r\\n`, 'i'));
  assert.equal(body, '');
});

test("only GET and HEAD of existing files: the rest is the API's 404, and the API is unchanged", async () => {
  for (const [method, p] of [
    ['POST', '/'],
    ['DELETE', '/index.html'],
    ['GET', '/assets/nope.js'],
    ['GET', '/index.htm'],
    ['GET', '/api/v1/nope'],
  ]) {
    const res = await ctx.request(method, p, { headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 404, `${method} ${p}: ${res.status} ${res.text.slice(0, 80)}`);
    assert.equal(res.json?.error_code, 'NOT_FOUND', `${method} ${p}`);
    assert.equal(res.headers.get('content-security-policy'), null);
  }
  // no path is normalised: only the exact names of the table are files (fetch would resolve "..")
  for (const p of ['/assets/../index.html', '/index.html/', '/%69ndex.html']) {
    const res = await rawRequest(ctx.server.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(res.data, /^HTTP\/1\.1 404 /, `GET ${p}: ${res.data.slice(0, 40)}`);
  }
  const list = await ctx.get('/api/v1/functions');
  assert.equal(list.status, 401, 'the API still needs its key');
  assert.equal((await ctx.get('/api/v1/health')).status, 200);
});

test('the served files fit the budget: at most 150 KB gzipped in all', async () => {
  let total = 0;
  for (const p of ['/', ...assetPaths()]) {
    const res = await rawRequest(ctx.server.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n`);
    const m = /\r\nContent-Length: (\d+)\r\n/i.exec(res.data);
    total += Number(m[1]);
  }
  assert.ok(total <= 150 * 1024, `${total} bytes gzipped`);
});

test('requests for the UI are logged like any other, with the path', async () => {
  await ctx.get('/?probe=1');
  const line = await ctx.server.waitForLog((l) => l.msg === 'request' && l.path === '/' && l.status === 200);
  assert.ok(line, ctx.server.describe());
});
