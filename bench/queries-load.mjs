// Sequential requests against the read API; prints a markdown table of p50/p95/p99 per endpoint.
const [base, key, n = '200'] = process.argv.slice(2);
const headers = { 'X-API-Key': key };
const get = async (p) => {
  const t = performance.now();
  const r = await fetch(base + p, { headers });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`${p}: ${r.status} ${body.slice(0, 200)}`);
  return { ms: performance.now() - t, body };
};
const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * p;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};
const list = JSON.parse((await get('/api/v1/functions?limit=200')).body).functions;
const ids = list.map((f) => f.id);
const days30 = () => {
  const to = new Date();
  const from = new Date(to.getTime() - 30 * 86400000);
  return `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
};
const cases = [
  ['GET /api/v1/functions (limit 50)', () => '/api/v1/functions'],
  ['GET /api/v1/functions/{id} (7 days)', (i) => `/api/v1/functions/${ids[i % ids.length]}`],
  ['GET /api/v1/functions/{id} (30 days)', (i) => `/api/v1/functions/${ids[i % ids.length]}?${days30()}`],
  ['GET /api/v1/functions/{id}/deployments', (i) => `/api/v1/functions/${ids[i % ids.length]}/deployments`],
  ['GET /api/v1/functions/{id}/compare (latest vs previous)', (i) => `/api/v1/functions/${ids[i % ids.length]}/compare`],
];
console.log('| endpoint | requests | p50 ms | p95 ms | p99 ms |');
console.log('|---|---|---|---|---|');
for (const [name, path] of cases) {
  for (let i = 0; i < 10; i++) await get(path(i));
  const ms = [];
  for (let i = 0; i < Number(n); i++) ms.push((await get(path(i))).ms);
  console.log(`| ${name} | ${n} | ${q(ms, 0.5).toFixed(1)} | ${q(ms, 0.95).toFixed(1)} | ${q(ms, 0.99).toFixed(1)} |`);
}
