// bench/ui-load.mjs BASE KEY VIEWS: loads the function view VIEWS times per window in headless
// Chromium and prints a markdown table of time to usable (p50/p95/max) and of the detail request.
import { chromium } from '../ui/node_modules/playwright-core/index.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, key, views = '40'] = process.argv.slice(2);
const list = await (await fetch(`${base}/api/v1/functions?limit=200`, { headers: { 'X-API-Key': key } })).json();
const ids = list.functions.map((f) => f.id);
const profile = mkdtempSync(path.join(os.tmpdir(), 'csa-ui-bench-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1280, height: 800 },
});
const page = context.pages()[0] || (await context.newPage());
await page.goto(`${base}/`);
await page.evaluate((k) => sessionStorage.setItem('coldstart.apiKey', k), key);

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * p;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};

async function once(id, window) {
  await page.goto(`${base}/#/functions/${id}?window=${window}`);
  await page.reload(); // a full page load: HTML, script, style (304s or cache), then the API
  await page.waitForFunction(
    () =>
      document.querySelectorAll('.tile').length > 0 &&
      document.querySelectorAll('.chart canvas').length === 2 &&
      document.querySelector('section[aria-labelledby="recs-title"]') &&
      !document.querySelector('section[aria-labelledby="deployments-title"] .loading') &&
      document.querySelector('.flame .box') &&
      document.querySelector('section[aria-labelledby="modules-title"] tbody tr'),
    null,
    { timeout: 30000, polling: 'raf' },
  );
  return page.evaluate(() => {
    const api = performance.getEntriesByType('resource').find((e) => /\/api\/v1\/functions\//.test(e.name));
    return { usable: performance.now(), api: api ? api.duration : NaN };
  });
}

console.log('| window | page loads | usable p50 ms | usable p95 ms | usable max ms | detail request p50 ms | detail request p95 ms |');
console.log('|---|---|---|---|---|---|---|');
for (const window of ['7d', '30d']) {
  for (let i = 0; i < 3; i++) await once(ids[i % ids.length], window);
  const usable = [];
  const api = [];
  for (let i = 0; i < Number(views); i++) {
    const r = await once(ids[i % ids.length], window);
    usable.push(r.usable);
    api.push(r.api);
  }
  const f = (x) => x.toFixed(0);
  console.log(
    `| ${window === '7d' ? '7 days (default)' : '30 days'} | ${views} | ${f(q(usable, 0.5))} | ${f(q(usable, 0.95))} | ${f(Math.max(...usable))} | ${f(q(api, 0.5))} | ${f(q(api, 0.95))} |`,
  );
}
await context.close();
rmSync(profile, { recursive: true, force: true });
