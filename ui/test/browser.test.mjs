// The web UI in a real browser: Debian's Chromium driven by playwright-core (no downloaded browser),
// against the real coldstartd and PostgreSQL (backend/tests/integration/harness.mjs: a migrated
// database, a project and key, a server on a free port), with data sent through the real SDK by
// examples/invoke.mjs. Sign in, list, sort, filter, page, open a function, hover and zoom the
// icicle graph of the typical cold start, pick another cold start and see its tree, see a
// recommendation, keyboard only, a wrong key, the empty and error states, a
// phone's width; no request carries the key anywhere but the X-API-Key header, nothing logs it,
// no console errors (a CSP violation is one), axe-core finds no serious or critical violation.
// Writes the screenshots of docs/ui.md (docs/images/ui-*.png; UI_SCREENSHOT_DIR elsewhere, or
// UI_SCREENSHOT_DIR=none for none).
//
// Needs: CSA_TEST_DATABASE_URL (admin URL of a running PostgreSQL), sdk/ built, examples/ and ui/
// installed (npm ci), /usr/bin/chromium (CHROMIUM elsewhere). COLDSTARTD picks the server binary.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO, useServer, createProject, cliKey, http } from '../../backend/tests/integration/harness.mjs';
import { ms } from '../src/format.js';
import { normalise } from '../src/flame.js';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.UI_SCREENSHOT_DIR || path.join(REPO, 'docs/images');
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ctx = useServer({ projectName: 'UI', slug: 'ui', env: { LOG_REQUESTS: 'true' } });
const keys = {}; // read: the UI's key (scope read only); empty, paging: other projects' admin keys
let browser; // the persistent context
let page;
let profile;
const consoleErrors = [];
const requests = []; // {url, method, headers, postData}

function invoke(fn, cold, warm) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'examples/invoke.mjs'), fn, '--cold', String(cold), '--warm', String(warm)], {
    env: { ...process.env, COLDSTART_API_KEY: ctx.ingestKey, COLDSTART_ENDPOINT: ctx.base }, // as a function would: ingest only
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.equal(r.status, 0, `invoke.mjs ${fn} failed: ${r.stderr}`);
}

/** Console errors since the last call, other than those matching `allowed`, must be none. */
function assertNoConsoleErrors(what, allowed = []) {
  const bad = consoleErrors.splice(0).filter((m) => !allowed.some((re) => re.test(m)));
  assert.deepEqual(bad, [], `${what}: console errors`);
}

async function axe(what) {
  await page.evaluate(AXE); // evaluated by the driver: the page's CSP does not apply to it
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes
          .slice(0, 3)
          .map((n) => n.target.join(' '))
          .join('; ')}`,
    ),
    [],
    `${what}: accessibility violations`,
  );
  return result.violations.length;
}

async function shot(name, options = {}) {
  if (SHOTS === 'none') return;
  mkdirSync(SHOTS, { recursive: true });
  const target = options.element ? page.locator(options.element) : page;
  await target.screenshot({
    path: path.join(SHOTS, `ui-${name}.png`),
    fullPage: options.fullPage && !options.element,
    animations: 'disabled',
  });
}

async function signIn(key) {
  await page.goto(ctx.base + '/');
  await page.waitForSelector('#api-key');
  await page.fill('#api-key', key);
  await page.keyboard.press('Enter');
}

// Set up once, by the first test that runs: node:test runs a file's root before() hooks
// concurrently, so the harness's server would not be there yet for a hook of ours.
let setup;
const ready = () => (setup ??= setUp());
async function setUp() {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium (scripts/deps.sh test)`);
  assert.ok(existsSync(path.join(REPO, 'sdk/dist/index.cjs')), 'sdk/dist missing: npm ci && npm run build in sdk/');
  assert.ok(existsSync(path.join(REPO, 'examples/node_modules/aws-sdk')), 'examples/node_modules missing: npm ci in examples/');
  invoke('orders-v2', 4, 2);
  invoke('orders-v3', 4, 2);
  keys.read = await cliKey(['create-key', '--project', 'ui', '--name', 'ui', '--scopes', 'read'], ctx.db.url);
  keys.empty = await createProject(ctx.db.url, 'Empty', 'empty');
  keys.paging = await createProject(ctx.db.url, 'Paging', 'paging');
  const now = new Date().toISOString();
  const invocations = Array.from({ length: 55 }, (_, i) => ({
    function_name: `svc-${String(i).padStart(2, '0')}`,
    invocation_id: `p-${i}`,
    timestamp: now,
    cold_start: i % 3 === 0,
    init_duration_ms: i % 3 === 0 ? 200 + i * 10 : undefined,
    execution_duration_ms: 5,
  }));
  const r = await http(ctx.base, 'POST', '/api/v1/ingest/batch', { body: { invocations }, headers: { 'X-API-Key': keys.paging } });
  assert.equal(r.status, 200, r.text);

  // a project with two deployments of one function, the second slower: the comparison's verdict
  keys.deploys = await createProject(ctx.db.url, 'Deploys', 'deploys');
  const ago = (minutes) => new Date(Date.now() - minutes * 60000).toISOString();
  const deployment = (code, version, init, minutes) =>
    Array.from({ length: 25 }, (_, i) => ({
      function_name: 'checkout',
      invocation_id: `${code}-${i}`,
      timestamp: ago(minutes - i),
      cold_start: true,
      start_kind: 'cold',
      init_duration_ms: init + (i % 10) * 5,
      execution_duration_ms: 20,
      code_id: code,
      function_version: version,
      module_timings: { 'aws-sdk': init / 2 + (i % 5), lodash: 20 + (i % 3) },
    }));
  const d = await http(ctx.base, 'POST', '/api/v1/ingest/batch', {
    body: { invocations: [...deployment('code-aaaa', '1', 400, 120), ...deployment('code-bbbb', '2', 700, 60)] },
    headers: { 'X-API-Key': keys.deploys },
  });
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.status, 'ok', d.text);
  // and a function with more cold starts than the cold start list's page of 50
  const bursty = Array.from({ length: 60 }, (_, i) => ({
    function_name: 'bursty',
    invocation_id: `burst-${String(i).padStart(2, '0')}`,
    timestamp: ago(90 - i),
    cold_start: true,
    init_duration_ms: 300 + i,
    execution_duration_ms: 5,
    module_tree: { name: 'root', children: [{ name: 'pkg-a', version: '1.0.0', self: 100 + i, inclusive: 100 + i }] },
  }));
  const b = await http(ctx.base, 'POST', '/api/v1/ingest/batch', { body: { invocations: bursty }, headers: { 'X-API-Key': keys.deploys } });
  assert.equal(b.status, 200, b.text);

  profile = mkdtempSync(path.join(os.tmpdir(), 'csa-ui-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: LAUNCH_ARGS,
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    timezoneId: 'UTC',
    reducedMotion: 'reduce',
  });
  page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(15000);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('request', async (req) => {
    requests.push({ url: req.url(), method: req.method(), headers: await req.allHeaders(), postData: req.postData() });
  });
}

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('the UI builds to exactly the committed dist/ and fits its budget', () => {
  const r = spawnSync(process.execPath, [path.join(REPO, 'ui/build.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('sign-in: a malformed key and an unknown key get clear errors; nothing is stored', async () => {
  await ready();
  await page.goto(ctx.base + '/');
  await page.waitForSelector('#api-key');
  assert.equal(await page.title(), 'Sign in · Cold Start Analyzer');
  assert.equal(await page.getAttribute('#api-key', 'type'), 'password');
  assert.equal(await page.textContent('label[for="api-key"]'), 'API key');
  await axe('sign-in');
  await shot('sign-in');
  await page.fill('#api-key', 'not-a-key');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#api-key-error:not([hidden])');
  assert.match(await page.textContent('#api-key-error'), /not an API key: a key is csa_ followed by 32/);
  const wrong = 'csa_' + randomBytes(16).toString('hex');
  await page.fill('#api-key', wrong);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /not accepted/.test(document.querySelector('#api-key-error')?.textContent || ''));
  assert.match(await page.textContent('#api-key-error'), /This key was not accepted: it is unknown or revoked/);
  assert.equal(await page.getAttribute('#api-key', 'aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
  await shot('wrong-key');
  // a key of the project that may not read (the functions' ingest key)
  await page.fill('#api-key', ctx.ingestKey);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /may not read/.test(document.querySelector('#api-key-error')?.textContent || ''));
  assert.match(await page.textContent('#api-key-error'), /This key may not read: use a key with the read scope/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a key that may not read is not kept');
  // the browser reports the 401 and 403 itself; nothing else may appear
  assertNoConsoleErrors('wrong key', [/status of 40[13]/]);
});

test('sign in with a read-only key, see the functions: the figures of the API, sortable, filterable', async () => {
  await ready();
  await signIn(keys.read);
  await page.waitForSelector('table tbody tr');
  assert.equal(await page.title(), 'Functions · Cold Start Analyzer');
  const names = () => page.$$eval('tbody tr th a', (as) => as.map((a) => a.textContent));
  assert.deepEqual(await names(), ['orders-v2', 'orders-v3']);
  const api = (await http(ctx.base, 'GET', '/api/v1/functions', { headers: { 'X-API-Key': ctx.key } })).json.functions;
  const row = await page.$$eval('tbody tr:first-child > *', (cells) => cells.map((c) => c.textContent.trim()));
  assert.equal(row[1], String(api[0].cold_start_stats.total_invocations_24h));
  assert.equal(row[2], String(api[0].cold_start_stats.cold_starts_24h));
  assert.equal(row[4], ms(api[0].cold_start_stats.p50_init_duration_ms));
  assert.equal(row[5], ms(api[0].cold_start_stats.p95_init_duration_ms));
  // sort by init p50: largest first, then the other way
  await page.click('th button:has-text("Init p50")');
  assert.equal(await page.getAttribute('th:has(button:has-text("Init p50"))', 'aria-sort'), 'descending');
  const p50 = Object.fromEntries(api.map((f) => [f.function_name, f.cold_start_stats.p50_init_duration_ms]));
  const byP50 = Object.keys(p50).sort((a, b) => p50[b] - p50[a]);
  assert.deepEqual(await names(), byP50);
  await page.keyboard.press('Enter'); // the header button kept the focus
  assert.equal(await page.getAttribute('th:has(button:has-text("Init p50"))', 'aria-sort'), 'ascending');
  assert.deepEqual(await names(), [...byP50].reverse());
  await axe('functions');
  await shot('functions');
  await page.fill('#name-filter', 'orders-v3');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  assert.deepEqual(await names(), ['orders-v3']);
  await page.fill('#name-filter', 'nothing-like-this');
  await page.waitForSelector('.empty h2:has-text("No match")');
  await page.fill('#name-filter', '');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 2);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('coldstart.apiKey')), keys.read);
  assertNoConsoleErrors('functions');
});

test('keyboard: open a function from the list, see recommendations with savings, and the module tree', async () => {
  await ready();
  await page.focus('a:has-text("orders-v2")');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.flame .box');
  await page.waitForSelector('.chart canvas');
  assert.equal(await page.title(), 'orders-v2 · Cold Start Analyzer');
  assert.equal(await page.textContent('h1'), 'orders-v2');
  // recommendations: the AWS SDK v2 rule, with its saving
  const rec = page.locator('.rec', { has: page.locator('code.module', { hasText: /^aws-sdk$/ }) });
  await rec.waitFor();
  assert.match(await rec.locator('.saving').textContent(), /^saves ≈ [\d,.]+ ms per cold start$/);
  assert.match(await rec.textContent(), /v3/);
  // tiles agree with the API
  const id = /#\/functions\/([0-9a-f-]{36})/.exec(page.url())[1];
  const fn = (await http(ctx.base, 'GET', `/api/v1/functions/${id}`, { headers: { 'X-API-Key': ctx.key } })).json;
  assert.equal(await page.textContent('.tile:has(dt:has-text("Cold starts")) .value'), String(fn.cold_starts));
  // the module breakdown lists aws-sdk first (largest average self time), with its version
  const first = await page.$$eval('section[aria-labelledby="modules-title"] tbody tr:first-child > *', (c) =>
    c.map((x) => x.textContent.trim()),
  );
  assert.equal(first[0], 'aws-sdk');
  assert.match(first[1], /^2\./);
  // the deployments: the examples' code is one deployment (the SDK's code_id), nothing to compare yet
  const deployments = (await http(ctx.base, 'GET', `/api/v1/functions/${id}/deployments`, { headers: { 'X-API-Key': ctx.key } })).json
    .deployments;
  assert.ok(deployments.length >= 1, 'the SDK sends a code_id: sdk/dist built from this tree?');
  await page.waitForSelector('section[aria-labelledby="deployments-title"] tbody tr');
  assert.equal(await page.locator('section[aria-labelledby="deployments-title"] tbody tr').count(), deployments.length);
  if (deployments.length === 1)
    assert.match(await page.textContent('section[aria-labelledby="deployments-title"]'), /One deployment so far/);
  // two charts drawn, each with its figures as a table
  assert.equal(await page.locator('.chart canvas').count(), 2);
  assert.equal(await page.locator('details.figures').count(), 2);
  await page.waitForTimeout(300); // the charts' first frame
  await axe('function');
  await shot('function', { fullPage: true });
  // for README.md: one screen from the recommendations down to the icicle graph
  await page.locator('section[aria-labelledby="recs-title"]').evaluate((e) => e.scrollIntoView());
  await shot('overview');
  await page.evaluate(() => window.scrollTo(0, 0));
  assertNoConsoleErrors('function view');
});

test('the icicle graph: package, version, self and inclusive time on hover; zoom on click, back with Escape', async () => {
  await ready();
  const box = page.locator('.flame .box[data-name="aws-sdk"]');
  await box.scrollIntoViewIfNeeded();
  await box.hover();
  const tip = page.locator('.flame-tip');
  await tip.waitFor({ state: 'visible' });
  const text = await tip.textContent();
  assert.match(text, /^aws-sdk 2\.\d+\.\d+/, text);
  assert.match(text, /inclusive [\d,.]+ ms · self [\d,.]+ ms/, text);
  assert.match(text, /% of all module loads/, text);
  assert.match(
    await box.getAttribute('aria-label'),
    /^aws-sdk 2\.[\d.]+ [\d,.]+ ms inclusive, self [\d,.]+ ms, [\d.]+ % of all module loads/,
  );
  await shot('flame', { element: 'section[aria-labelledby="tree-title"]' });
  const rootWidth = await page
    .locator('.flame .box')
    .first()
    .evaluate((b) => b.getBoundingClientRect().width);
  const before = await box.evaluate((b) => b.getBoundingClientRect().width);
  assert.ok(before < rootWidth, 'aws-sdk is narrower than the root before zooming');
  await box.click();
  await page.waitForFunction(() => document.querySelector('.flame-path [aria-current]')?.textContent === 'aws-sdk');
  const zoomed = await page.locator('.flame .box').first();
  assert.equal(await zoomed.getAttribute('data-name'), 'aws-sdk');
  const after = await zoomed.evaluate((b) => b.getBoundingClientRect().width);
  assert.ok(Math.abs(after - rootWidth) < 2, `zoomed aws-sdk spans the graph (${after} vs ${rootWidth})`);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.querySelector('.flame-path [aria-current]')?.textContent === 'all module loads');
  // and by keyboard: the graph is one Tab stop, arrows move, focus shows the figures, Enter zooms
  assert.deepEqual(await page.$$eval('.flame .box', (bs) => bs.map((b) => b.tabIndex).filter((t) => t === 0).length), 1, 'one Tab stop');
  await page.focus('.flame .box[data-name="all module loads"]');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.name), 'aws-sdk', 'ArrowDown: the largest child');
  await tip.waitFor({ state: 'visible' });
  assert.match(await tip.textContent(), /^aws-sdk/);
  // the box drawn right after aws-sdk in its row (siblings are drawn by size: lodash and moment
  // take turns on a busy machine)
  const next = await page.evaluate(() => {
    const at = (b) => b.getBoundingClientRect();
    const boxes = [...document.querySelectorAll('.flame .box')];
    const own = at(document.querySelector('.flame .box[data-name="aws-sdk"]'));
    const row = boxes.filter((b) => Math.abs(at(b).top - own.top) < 1 && at(b).left > own.left + 0.5);
    row.sort((a, b) => at(a).left - at(b).left);
    return row[0]?.dataset.name;
  });
  assert.ok(next, 'aws-sdk has a sibling drawn after it');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.name), next, 'ArrowRight: the next sibling');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('.flame-path [aria-current]')?.textContent === 'aws-sdk');
  await page.keyboard.press('Escape');
  assertNoConsoleErrors('icicle graph');
});

test('the module tree: the typical cold start by default; another one picked with the keyboard redraws the graph', async () => {
  await ready();
  const id = /#\/functions\/([0-9a-f-]{36})/.exec(page.url())[1];
  const api = async (p) => (await http(ctx.base, 'GET', p, { headers: { 'X-API-Key': ctx.key } })).json;
  const rootLabel = () => page.getAttribute('.flame .box[data-name="all module loads"]', 'aria-label');
  const total = (coldStart) => ms(normalise(coldStart.module_tree).total);
  // by default: the typical cold start (nearest the median init), as the API picks it
  const typical = await api(`/api/v1/functions/${id}/cold-starts/typical`);
  assert.ok(typical.cold_start, 'orders-v2 has cold starts with module trees');
  const note = page.locator('#cold-start-note');
  assert.match(
    await note.textContent(),
    new RegExp(
      `^The typical cold start of the window: init ${ms(typical.cold_start.init_duration_ms)}, the nearest to the median of ${ms(typical.median_init_duration_ms)} over ${typical.on_demand_cold_starts} on-demand cold starts`,
    ),
  );
  assert.ok((await rootLabel()).startsWith(`all module loads ${total(typical.cold_start)} inclusive`), await rootLabel());
  // the picker: labelled, the typical one first, then the window's cold starts newest first
  assert.equal(await page.textContent('label[for="cold-start"]'), 'Cold start');
  const list = (await api(`/api/v1/functions/${id}/cold-starts`)).cold_starts;
  assert.ok(list.length >= 4, `${list.length} cold starts listed`);
  const values = await page.$$eval('#cold-start option', (os) => os.map((o) => o.value));
  assert.deepEqual(values, ['', ...list.map((c) => c.invocation_id)]);
  assert.match(
    await page.textContent('#cold-start option:first-child'),
    new RegExp(`^Typical: .* · ${ms(typical.cold_start.init_duration_ms)} · cold`),
  );
  // another cold start, one whose tree differs visibly from the typical one's if there is such
  const others = [];
  for (const c of list.filter((x) => x.invocation_id !== typical.cold_start.invocation_id && x.has_module_tree)) {
    others.push((await api(`/api/v1/functions/${id}/cold-starts/tree?invocation_id=${encodeURIComponent(c.invocation_id)}`)).cold_start);
  }
  const chosen = others.find((c) => total(c) !== total(typical.cold_start)) || others[0];
  assert.ok(chosen, 'a second cold start with a tree');
  await page.focus('#cold-start');
  for (let i = 0; i < values.indexOf(chosen.invocation_id); i++) await page.keyboard.press('ArrowDown');
  assert.equal(await page.inputValue('#cold-start'), chosen.invocation_id);
  await page.waitForFunction(
    (inv) => document.querySelector('#cold-start-note')?.textContent.startsWith(`Cold start ${inv}:`),
    chosen.invocation_id,
  );
  assert.match(await note.textContent(), new RegExp(`: init ${ms(chosen.init_duration_ms)}, cold; at `));
  await page.waitForFunction(
    (label) => document.querySelector('.flame .box[data-name="all module loads"]')?.getAttribute('aria-label').startsWith(label),
    `all module loads ${total(chosen)} inclusive`,
  );
  assert.ok(
    requests.some((r) => r.url.includes(`/cold-starts/tree?invocation_id=${encodeURIComponent(chosen.invocation_id)}`)),
    'the tree was fetched',
  );
  await shot('cold-start', { element: 'section[aria-labelledby="tree-title"]' });
  // the choice is in the address: a reload (or the link shared) shows the same cold start
  const hash = new URL(page.url()).hash;
  assert.equal(new URLSearchParams(hash.split('?')[1]).get('cold_start'), chosen.invocation_id, hash);
  await page.reload();
  await page.waitForFunction(
    (inv) => document.querySelector('#cold-start-note')?.textContent.startsWith(`Cold start ${inv}:`),
    chosen.invocation_id,
  );
  assert.equal(await page.inputValue('#cold-start'), chosen.invocation_id);
  assert.ok((await rootLabel()).startsWith(`all module loads ${total(chosen)} inclusive`), await rootLabel());
  assert.deepEqual(await page.$$eval('#cold-start option', (os) => os.map((o) => o.value)), values, 'the same list, once each');
  // hover and zoom work on the chosen tree as on the typical one
  const box = page.locator('.flame .box[data-name="aws-sdk"]');
  await box.hover();
  await page.locator('.flame-tip').waitFor({ state: 'visible' });
  assert.match(await page.textContent('.flame-tip'), /^aws-sdk 2\.\d+\.\d+.*inclusive [\d,.]+ ms · self [\d,.]+ ms/);
  await box.click();
  await page.waitForFunction(() => document.querySelector('.flame-path [aria-current]')?.textContent === 'aws-sdk');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.querySelector('.flame-path [aria-current]')?.textContent === 'all module loads');
  await axe('a chosen cold start');
  // and back to the typical one
  await page.selectOption('#cold-start', '');
  await page.waitForFunction(() => document.querySelector('#cold-start-note')?.textContent.startsWith('The typical cold start'));
  assert.ok((await rootLabel()).startsWith(`all module loads ${total(typical.cold_start)} inclusive`));
  assert.equal(new URL(page.url()).hash, `#/functions/${id}`, 'the typical one: nothing in the address');
  assertNoConsoleErrors('choosing a cold start');
  // a link naming no cold start of the function says so and shows the typical one
  await page.goto(`${ctx.base}/#/functions/${id}?cold_start=no-such-cold-start`);
  await page.waitForFunction(
    (text) => document.querySelector('#cold-start-note')?.textContent.startsWith(text),
    'The link’s cold start no-such-cold-start is not one of this function’s. The typical cold start',
  );
  assert.equal(await page.inputValue('#cold-start'), '');
  assert.equal(new URL(page.url()).hash, `#/functions/${id}`);
  assertNoConsoleErrors('a link to no cold start', [/status of 404/]); // the tree's 404, as Chromium logs it
});

test("a phone's width: nothing wider than the screen, the same content", async () => {
  await ready();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone's screen`);
  assert.ok(await page.locator('.flame .box[data-name="aws-sdk"]').isVisible());
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('phone');
  await page.goto(ctx.base + '/#/');
  await page.waitForSelector('table tbody tr');
  const listOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(listOverflow <= 0, `the list is ${listOverflow} px wider than a phone's screen (tables scroll on their own)`);
  await axe("functions at a phone's width");
  await page.setViewportSize({ width: 1280, height: 800 });
  assertNoConsoleErrors('phone');
});

test('the Content-Security-Policy is enforced, and a violation would show up as a console error', async () => {
  await ready();
  await page.goto(ctx.base + '/#/');
  await page.waitForSelector('table tbody tr');
  assertNoConsoleErrors('before the probe');
  const ran = await page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'window.inlineScriptRan = true';
    document.body.append(s);
    await new Promise((r) => setTimeout(r, 100));
    return window.inlineScriptRan === true;
  });
  assert.equal(ran, false, 'an inline script ran');
  await page.waitForTimeout(100);
  const refused = consoleErrors.splice(0);
  assert.ok(
    refused.some((m) => /Content Security Policy/.test(m)),
    `no CSP report on the console: ${refused}`,
  );
});

test('an unknown function and an unreachable page say what to do', async () => {
  await ready();
  await page.goto(ctx.base + '/#/functions/00000000-0000-4000-8000-000000000000');
  await page.waitForSelector('.error-panel');
  assert.match(await page.textContent('.error-panel'), /does not exist in the project of your key/);
  await page.goto(ctx.base + '/#/nowhere');
  await page.waitForSelector('h1:has-text("No such page")');
  assertNoConsoleErrors('unknown function', [/status of 404/]);
});

test('sign out, then another project: keyset paging by 50, and a project with no data explains how to send some', async () => {
  await ready();
  await page.goto(ctx.base + '/#/');
  await page.click('#sign-out');
  await page.waitForSelector('#api-key');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'signing out forgets the key');
  await signIn(keys.paging);
  await page.waitForSelector('tbody tr');
  assert.equal(await page.locator('tbody tr').count(), 50);
  await page.click('button:has-text("Load more")');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 55);
  assert.ok(await page.locator('button:has-text("Load more")').isHidden());
  const names = await page.$$eval('tbody tr th a', (as) => as.map((a) => a.textContent));
  assert.equal(new Set(names).size, 55, 'no function twice');
  await page.click('#sign-out');
  await signIn(keys.empty);
  await page.waitForSelector('.empty h2:has-text("No data yet")');
  const text = await page.textContent('.empty');
  assert.match(text, /COLDSTART_ENDPOINT=http:\/\/127\.0\.0\.1:\d+/);
  assert.match(text, /make run/);
  await axe('empty project');
  await shot('empty');
  assertNoConsoleErrors('paging and empty');
});

test('two deployments: the latest against the one before, with the verdict and the packages that changed', async () => {
  await ready();
  await page.click('#sign-out');
  await signIn(keys.deploys);
  await page.click('a:has-text("checkout")');
  const section = page.locator('section[aria-labelledby="deployments-title"]');
  await section.locator('.verdict').waitFor();
  assert.equal(await section.locator('tbody tr').count(), 2);
  assert.match(await section.locator('.verdict h3').textContent(), /Regression: the latest deployment starts slower/);
  assert.match(await section.locator('.verdict').textContent(), /over 25 and 25 cold starts/);
  assert.match(await section.locator('.changes').textContent(), /aws-sdk: \+[\d.]+ ms/);
  // these records carry module_timings only: no tree to draw, and the section says so
  await page.waitForFunction(() =>
    /None of the 50 on-demand cold starts in the window has a module tree/.test(
      document.querySelector('#cold-start-note')?.textContent || '',
    ),
  );
  assert.match(await page.locator('#cold-start option').nth(1).textContent(), /· no module tree$/);
  await axe('deployments');
  await shot('deployments', { element: 'section[aria-labelledby="deployments-title"]' });
  assertNoConsoleErrors('deployments');
});

test('more cold starts than a page: "Older cold starts" adds the next ones to the list, none twice', async () => {
  await ready();
  await page.goto(ctx.base + '/#/');
  await page.click('a:has-text("bursty")');
  await page.waitForSelector('.flame .box');
  // typical: median of 300..359 is 329.5; 329 and 330 are equally near: the newer, 330 (burst-30)
  assert.ok(
    (await page.textContent('#cold-start-note')).startsWith(
      `The typical cold start of the window: init 330 ms, the nearest to the median of ${ms(329.5)} over 60 on-demand cold starts`,
    ),
  );
  assert.match(await page.textContent('#cold-start option:first-child'), /^Typical: .* · 330 ms · cold$/);
  const options = () => page.$$eval('#cold-start option', (os) => os.map((o) => o.value));
  assert.equal((await options()).length, 51, 'the typical entry and the first 50');
  const more = page.locator('button:has-text("Older cold starts")');
  await more.focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#cold-start option').length === 61);
  const values = await options();
  assert.deepEqual(
    values.slice(1),
    Array.from({ length: 60 }, (_, i) => `burst-${String(59 - i).padStart(2, '0')}`),
    'newest first, all 60 once',
  );
  assert.ok(await more.isHidden(), 'no more pages');
  await page.selectOption('#cold-start', 'burst-00');
  await page.waitForFunction(() => document.querySelector('#cold-start-note')?.textContent.startsWith('Cold start burst-00: init 300 ms'));
  assert.match(await page.getAttribute('.flame .box[data-name="pkg-a"]', 'aria-label'), /^pkg-a 1\.0\.0 100 ms inclusive/);
  // a reload with the window kept too: the chosen one is restored though the first page lacks it,
  // listed after the typical entry, and the next page does not list it twice
  await page.selectOption('#window', '30d');
  await page.waitForFunction(() => document.querySelector('#cold-start-note')?.textContent.startsWith('The typical cold start'));
  await more.click();
  await page.waitForFunction(() => document.querySelectorAll('#cold-start option').length === 61);
  await page.selectOption('#cold-start', 'burst-00');
  await page.waitForFunction(() => new URL(location.href).hash.endsWith('?window=30d&cold_start=burst-00'));
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#cold-start-note')?.textContent.startsWith('Cold start burst-00: init 300 ms'));
  assert.equal(await page.inputValue('#window'), '30d');
  assert.equal(await page.inputValue('#cold-start'), 'burst-00');
  assert.match(await page.getAttribute('.flame .box[data-name="pkg-a"]', 'aria-label'), /^pkg-a 1\.0\.0 100 ms inclusive/);
  assert.deepEqual((await options()).slice(0, 3), ['', 'burst-00', 'burst-59']);
  assert.equal((await options()).length, 52, 'the typical entry, the chosen one and the first 50');
  await more.click();
  await page.waitForFunction(() => document.querySelectorAll('#cold-start option').length === 61);
  assert.equal((await options()).filter((v) => v === 'burst-00').length, 1, 'burst-00 once');
  assertNoConsoleErrors('older cold starts');
});

test('the key went nowhere but the X-API-Key header: not a URL, a body, another header, a cookie, localStorage or a log line', async () => {
  await ready();
  const all = [ctx.key, ctx.ingestKey, ...Object.values(keys)];
  assert.ok(requests.length > 10, `${requests.length} requests seen`);
  let withKey = 0;
  for (const r of requests) {
    for (const key of all) {
      assert.ok(!r.url.includes(key), `key in URL ${r.url}`);
      assert.ok(!(r.postData || '').includes(key), `key in the body of ${r.method} ${r.url}`);
      for (const [name, value] of Object.entries(r.headers)) {
        if (name !== 'x-api-key') assert.ok(!value.includes(key), `key in header ${name} of ${r.url}`);
      }
    }
    const u = new URL(r.url);
    if (u.pathname.startsWith('/api/')) {
      assert.match(r.headers['x-api-key'] || '', /^csa_/, `${r.url} without X-API-Key`);
      withKey++;
    } else {
      assert.equal(r.headers['x-api-key'], undefined, `X-API-Key sent for the static file ${r.url}`);
    }
  }
  assert.ok(withKey > 5);
  assert.deepEqual(await browser.cookies(), [], 'no cookies');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  for (const line of ctx.server.stderrLines) for (const key of all) assert.ok(!line.includes(key), `key in a server log line: ${line}`);
  assert.ok(
    ctx.server.logs.some((l) => l.msg === 'request' && l.path === '/'),
    'the server logged the UI requests (LOG_REQUESTS=true)',
  );
});
