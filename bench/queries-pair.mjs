// bench/queries-pair.sh: the same requests as queries-load.mjs for the reads that must not grow with the
// traffic, sent alternately to two servers (a 1M and a 10M history), so that both see the same load.
// usage: node bench/queries-pair.mjs URL1 KEY1 URL10 KEY10 [N]
const [u1, k1, u10, k10, n = '200'] = process.argv.slice(2);
const get = async (base, key, p) => {
  const t = performance.now();
  const r = await fetch(base + p, { headers: { 'X-API-Key': key } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`${p}: ${r.status} ${body.slice(0, 200)}`);
  return { ms: performance.now() - t, body };
};
const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * p;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};
const ids1 = JSON.parse((await get(u1, k1, '/api/v1/functions?limit=200')).body).functions.map((f) => f.id);
const ids10 = JSON.parse((await get(u10, k10, '/api/v1/functions?limit=200')).body).functions.map((f) => f.id);
const days30 = () => {
  const to = new Date();
  const from = new Date(to.getTime() - 30 * 86400000);
  return `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
};
const cases = [
  ['GET /api/v1/functions/{id} (7 days)', (ids, i) => `/api/v1/functions/${ids[i % ids.length]}`],
  ['GET /api/v1/functions/{id} (30 days)', (ids, i) => `/api/v1/functions/${ids[i % ids.length]}?${days30()}`],
  ['GET /api/v1/functions/{id}/deployments', (ids, i) => `/api/v1/functions/${ids[i % ids.length]}/deployments`],
  ['GET /api/v1/functions/{id}/compare (latest vs previous)', (ids, i) => `/api/v1/functions/${ids[i % ids.length]}/compare`],
];
console.log('| endpoint (p50 / p95 ms) | 1,000,000 | 10,000,000 | p50 10M / 1M | p95 10M / 1M |');
console.log('|---|---|---|---|---|');
for (const [name, path] of cases) {
  for (let i = 0; i < 10; i++) {
    await get(u1, k1, path(ids1, i));
    await get(u10, k10, path(ids10, i));
  }
  const a = [],
    b = [];
  for (let i = 0; i < Number(n); i++) {
    a.push((await get(u1, k1, path(ids1, i))).ms);
    b.push((await get(u10, k10, path(ids10, i))).ms);
  }
  const f = (x) => x.toFixed(1);
  console.log(
    `| ${name} | ${f(q(a, 0.5))} / ${f(q(a, 0.95))} | ${f(q(b, 0.5))} / ${f(q(b, 0.95))} | ${(q(b, 0.5) / q(a, 0.5)).toFixed(2)}x | ${(q(b, 0.95) / q(a, 0.95)).toFixed(2)}x |`,
  );
}
