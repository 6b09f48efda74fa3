// Executes every panel and variable query of the dashboards as the read-only Grafana role, against
// a real PostgreSQL seeded through coldstartd's real ingest API, after expanding them the way
// Grafana 10.2 does (lib/grafana-sql.mjs) for several time ranges and variable states. Checks the
// shape each panel type needs and compares the numbers with values computed here, in JavaScript,
// from the records that were sent.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from './lib/harness.mjs';
import { renderQuery } from './lib/grafana-sql.mjs';
import { ROOT, loadDashboards, allPanels, loadAlertRules } from './static.test.mjs';
import {
  psql, queryRows, batchQueries, scratchDatabase, startServer, runServerCommand, serverEnv, withDatabase,
} from './lib/server.mjs';

const ADMIN_URL = process.env.CSA_TEST_DATABASE_URL;
const BIN = process.env.COLDSTARTD || join(ROOT, 'backend', 'build', 'coldstartd');
const MIN = 60000, HOUR = 3600000, DAY = 86400000;

const ctx = { ready: false };
const dashboard = loadDashboards().find((d) => d.json.uid === 'cold-start-analyzer').json;
const panels = allPanels(dashboard).filter((p) => p.type !== 'row');

// ---- the data set ---------------------------------------------------------------------------

function mulberry32(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Four tree layouts. "sdk" is what sdk/src/invoke/report.ts sends: an object with load_ms, modules,
// truncated, ... and "children" holding {name, version, self_ms, total_ms, children} nodes, the
// capped rest folded into "(other)". The others check that the panel tolerates what older or
// other clients may send (docs/setup.md, "Dashboards"): a bare list of nodes, a single named root,
// and nodes that say "package"/"self" and omit totals.
function moduleTree(r, style) {
  const ms = (lo, hi) => Math.round((lo + r() * (hi - lo)) * 10) / 10;
  const leaf = (name, self) => ({ name, self });
  const top = [];
  const sdkChildren = [leaf('@smithy/core', ms(5, 40)), { ...leaf('@aws-sdk/core', ms(10, 60)), children: [leaf('fast-xml-parser', ms(2, 20))] }];
  top.push({ ...leaf('@aws-sdk/client-s3', ms(50, 300)), children: sdkChildren });
  if (r() < 0.7) top.push(leaf('@prisma/client', ms(100, 700)));
  if (r() < 0.5) top.push(leaf('moment', ms(20, 90)));
  top.push({ ...leaf('./src/handler', ms(3, 30)), children: [leaf('lodash', ms(10, 50)), leaf("it's-a-module", ms(1, 9))] });
  if (style === 'sdk') top.push(leaf('(other)', ms(1, 15)));
  const timings = {};
  const walk = (n) => { timings[n.name] = (timings[n.name] || 0) + n.self; (n.children || []).forEach(walk); };
  top.forEach(walk);
  for (const k of Object.keys(timings)) timings[k] = Math.round(timings[k] * 10) / 10;
  const total = (n) => n.self + (n.children || []).reduce((a, c) => a + total(c), 0);
  const render = (n) => {
    if (style === 'wrapper') return { package: n.name, self: n.self, ...(n.children ? { children: n.children.map(render) } : {}) };
    return { name: n.name, version: '1.0.0', self_ms: n.self, total_ms: Math.round(total(n) * 1000) / 1000, ...(n.children ? { children: n.children.map(render) } : {}) };
  };
  let tree;
  if (style === 'list') tree = top.map(render);
  else if (style === 'root') tree = { name: '(init)', self_ms: 1.5, total_ms: 1.5 + top.reduce((a, n) => a + total(n), 0), children: top.map(render) };
  else if (style === 'sdk') {
    tree = { load_ms: Math.round(top.reduce((a, n) => a + total(n), 0) * 1000) / 1000, modules: 40, esm_timing: 'none', coverage: 'full',
      truncated: true, children: top.map(render) };
    tree.children[tree.children.length - 1].packages = 3;
  }
  else tree = { children: top.map(render) };
  return { tree, timings };
}

function makeRecords(t0) {
  const r = mulberry32(20261127);
  const functions = [
    { project: 'alpha', name: 'payment-service', style: 'list', n: 150 },
    { project: 'alpha', name: "o'reilly-export", style: 'wrapper', n: 110 },
    { project: 'alpha', name: 'orders-api', style: 'root', n: 120 },
    { project: 'beta', name: 'payment-service', style: 'sdk', n: 60 },
    { project: 'alpha', name: 'checkout', style: 'sdk', n: 80 },
  ];
  const out = [];
  for (const [fi, f] of functions.entries()) {
    const span = 6 * DAY;
    const times = [];
    for (let k = 0; k < f.n; k++) times.push(t0 - span + Math.floor((k + r() * 0.9) * (span / f.n)) - MIN);
    for (let k = 0; k < 3; k++) times.push(t0 - 40 * DAY + k * HOUR + fi * 1000); // an older month
    times.push(t0 + 2 * HOUR + fi * 1000); // ahead of "now": no range here includes it
    for (const [k, ts] of times.entries()) {
      const cold = r() < 0.3;
      let kind = null;
      if (cold) { const x = r(); kind = x < 0.35 ? null : x < 0.7 ? 'cold' : x < 0.85 ? 'proactive' : 'provisioned'; }
      else kind = r() < 0.5 ? null : 'warm';
      const rec = {
        function_name: f.name, invocation_id: `${f.project}-${fi}-${k}`, request_id: `req-${fi}-${k}`,
        timestamp: new Date(ts).toISOString(), cold_start: cold,
        execution_duration_ms: Math.floor(20 + r() * (cold ? 400 : 150)),
        memory_allocated_mb: fi === 4 ? 1024 : 512, runtime_version: 'nodejs20.x', architecture: fi === 2 ? 'x86_64' : 'arm64',
        region: 'eu-west-1',
      };
      // deployments: two per function, by code_id (orders-api: by Lambda version only); every
      // seventh record carries no identity (an older SDK) and belongs to none
      if (k % 7 !== 3) {
        const later = k >= f.n / 2;
        if (fi === 2) rec.function_version = later ? '8' : '7';
        else Object.assign(rec, { function_version: '$LATEST', code_id: `c${fi}-${later ? 'new' : 'old'}-0123456789abcdef` });
      }
      if (kind) rec.start_kind = kind;
      if (cold) {
        rec.init_duration_ms = Math.floor(300 + r() * 2700);
        rec.init_type = kind === 'provisioned' ? 'provisioned-concurrency' : 'on-demand';
        const { tree, timings } = moduleTree(r, f.style);
        rec.module_timings = timings;
        if (r() < 0.9) rec.module_tree = tree; // some SDKs send no tree
      }
      out.push({ project: f.project, ts, rec });
    }
  }
  return out;
}

// ---- independent computations ----------------------------------------------------------------

const realCold = (rec) => rec.cold_start && (rec.start_kind ?? 'cold') === 'cold';
const deploymentOf = (rec) => rec.code_id ?? (rec.function_version ? `version:${rec.function_version}` : null);
// Dollars of a record's init (or of `ms` of it) at the dashboard's prices.
const dollars = (rec, prices, ms = rec.init_duration_ms) =>
  (ms / 1000) * ((rec.memory_allocated_mb ?? 128) / 1024) * (rec.architecture === 'arm64' ? prices.arm64 : prices.x86_64);
const sum = (v) => v.reduce((a, b) => a + b, 0);

function percentileCont(values, p) {
  if (!values.length) return null;
  const a = [...values].sort((x, y) => x - y);
  const pos = p * (a.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}
const avg = (v) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
const round = (x, d) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
const bucketOf = (ts, secs) => Math.floor(ts / 1000 / secs) * secs;

function groupBy(items, key) {
  const m = new Map();
  for (const it of items) { const k = key(it); if (!m.has(k)) m.set(k, []); m.get(k).push(it); }
  return m;
}

function byteCompare(a, b) { return Buffer.compare(Buffer.from(a), Buffer.from(b)); }
function keyCompare(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) { const c = byteCompare(a[i], b[i]); if (c) return c; }
  return a.length - b.length;
}

// The flame graph rows, computed from the trees that were sent (the rules the panel documents).
function expectedFlame(selected) {
  const num = (n, k) => (typeof n[k] === 'number' ? n[k] : null);
  const rows = [];
  const perFunction = groupBy(selected.filter((s) => realCold(s.rec) && s.rec.module_tree), (s) => s.rec.function_name);
  const flameByFn = new Map();
  for (const [fn, list] of perFunction) {
    const picked = list.sort((a, b) => b.ts - a.ts).slice(0, 100);
    const merged = new Map();
    for (const s of picked) {
      const t = s.rec.module_tree;
      let roots = [];
      if (Array.isArray(t)) roots = t;
      else if (t && typeof t === 'object' && ('name' in t || 'package' in t)) roots = [t];
      else if (t && Array.isArray(t.children)) roots = t.children;
      const walk = (n, prefix) => {
        if (!n || typeof n !== 'object' || Array.isArray(n)) return;
        const path = [...prefix, n.name ?? n.package ?? '(unnamed)'];
        const k = JSON.stringify(path);
        const e = merged.get(k) || { path, self: 0, total: null };
        e.self += num(n, 'self_ms') ?? num(n, 'self') ?? 0;
        const tot = num(n, 'total_ms') ?? num(n, 'total') ?? num(n, 'inclusive_ms');
        if (tot !== null) e.total = (e.total ?? 0) + tot;
        merged.set(k, e);
        if (Array.isArray(n.children) && path.length < 32) n.children.forEach((c) => walk(c, path));
      };
      roots.forEach((n) => walk(n, []));
    }
    const n = picked.length;
    const nodes = [...merged.values()].map((e) => ({ path: e.path, selfAvg: e.self / n, totalAvg: e.total === null ? null : e.total / n }));
    const isUnder = (b, a) => b.path.length >= a.path.length && a.path.every((p, i) => b.path[i] === p);
    for (const a of nodes) a.value = Math.max(a.totalAvg ?? 0, nodes.filter((b) => isUnder(b, a)).reduce((x, b) => x + b.selfAvg, 0));
    for (const a of nodes) {
      const kids = nodes.filter((c) => c.path.length === a.path.length + 1 && isUnder(c, a));
      a.self = Math.max(a.value - kids.reduce((x, c) => x + c.value, 0), 0);
    }
    flameByFn.set(fn, nodes);
  }
  if (!flameByFn.size) return [];
  let rootValue = 0;
  for (const [fn, nodes] of flameByFn) {
    const fv = nodes.filter((x) => x.path.length === 1).reduce((a, x) => a + x.value, 0);
    rootValue += fv;
    rows.push({ key: [fn], level: 1, value: fv, self: 0, label: fn });
    for (const x of nodes) rows.push({ key: [fn, ...x.path], level: 1 + x.path.length, value: x.value, self: x.self, label: x.path[x.path.length - 1] });
  }
  rows.push({ key: [], level: 0, value: rootValue, self: 0, label: 'all selected functions' });
  return rows.sort((a, b) => keyCompare(a.key, b.key));
}

// The span the per-function package rollups (migrations/011) answer for a range: every UTC hour
// that overlaps it, and an end before their hourly rows (the UTC day two days before today on)
// extends to its whole UTC day.
const hourOf = (ms) => Math.floor(ms / HOUR) * HOUR;
const dayOf = (ms) => Math.floor(ms / DAY) * DAY;
let queriedAt = null; // when runAllPanelQueries ran its batch
// `at`: when the queries ran (the readers' cutoff is the statement's now(), not the check's)
function fnRollupSpan(range, at = queriedAt ?? Date.now()) {
  const hoursFrom = dayOf(at) - 2 * DAY;
  let a = hourOf(range.from), z = hourOf(range.to) + HOUR;
  if (dayOf(a) < hoursFrom) a = dayOf(a);
  if (dayOf(hourOf(range.to)) < hoursFrom) z = dayOf(hourOf(range.to)) + DAY;
  return (ts) => ts >= a && ts < z;
}

// What each panel should show for the selected records; `project` holds the whole project's
// records for the panel that ignores the function filter; hourSel the project's records of every
// UTC hour that overlaps the range, hourFnSel the selected functions' records of fnRollupSpan
// (the per-function rollup panels).
// Returns rows in the panel's order.
function expected(title, sel, projectSel, secs, prices, range, hourSel, hourFnSel) {
  const cold = sel.filter((s) => realCold(s.rec));
  switch (title) {
    case 'Invocations': return [{ invocations: sel.length }];
    case 'Cold starts': return [{ 'cold starts': cold.length }];
    case 'Cold start rate': return [{ 'cold start rate': sel.length ? round((100 * cold.length) / sel.length, 2) : null }];
    case 'p95 init duration': return [{ 'p95 init': percentileCont(cold.map((s) => s.rec.init_duration_ms), 0.95) }];
    case 'Cold start rate over time':
      return [...groupBy(sel, (s) => bucketOf(s.ts, secs))].sort((a, b) => a[0] - b[0])
        .map(([time, l]) => ({ time, 'cold start rate': (100 * l.filter((s) => realCold(s.rec)).length) / l.length }));
    case 'Start kinds over time':
      return [...groupBy(sel.filter((s) => s.rec.cold_start), (s) => bucketOf(s.ts, secs))].sort((a, b) => a[0] - b[0])
        .map(([time, l]) => ({ time, cold: l.filter((s) => (s.rec.start_kind ?? 'cold') === 'cold').length,
          proactive: l.filter((s) => s.rec.start_kind === 'proactive').length, provisioned: l.filter((s) => s.rec.start_kind === 'provisioned').length }));
    case 'Init duration over time (p50, p95, p99)':
      return [...groupBy(cold, (s) => bucketOf(s.ts, secs))].sort((a, b) => a[0] - b[0]).map(([time, l]) => {
        const v = l.map((s) => s.rec.init_duration_ms);
        return { time, p50: percentileCont(v, 0.5), p95: percentileCont(v, 0.95), p99: percentileCont(v, 0.99) };
      });
    case 'Cold starts per function':
      return [...groupBy(cold, (s) => JSON.stringify([bucketOf(s.ts, secs), s.rec.function_name]))]
        .map(([k, l]) => { const [time, fn] = JSON.parse(k); return { time, function: fn, 'cold starts': l.length }; })
        .sort((a, b) => a.time - b.time || byteCompare(a.function, b.function));
    case 'Average and p95 init duration by function':
      return [...groupBy(cold, (s) => s.rec.function_name)].map(([fn, l]) => {
        const v = l.map((s) => s.rec.init_duration_ms);
        return { function: fn, 'avg init': round(avg(v), 1), 'p95 init': percentileCont(v, 0.95), 'cold starts': l.length };
      }).sort((a, b) => b['avg init'] - a['avg init']);
    case 'Cold start vs warm execution time': {
      const cat = (rec) => (!rec.cold_start ? 'Warm' : (rec.start_kind ?? 'cold') === 'cold' ? 'Cold start'
        : rec.start_kind === 'proactive' ? 'Proactive init' : rec.start_kind === 'provisioned' ? 'Provisioned' : 'Other first invocation');
      return [...groupBy(sel, (s) => cat(s.rec))].map(([start, l]) => {
        const v = l.map((s) => s.rec.execution_duration_ms);
        return { start, 'avg execution': round(avg(v), 1), 'p95 execution': percentileCont(v, 0.95), invocations: l.length };
      }).sort((a, b) => byteCompare(a.start, b.start));
    }
    case 'Module timing breakdown': {
      // from the per-function package rollups: the on-demand cold starts of every UTC hour that
      // overlaps the range, the top 100 (function, module) pairs by average; p95 from a sketch
      const pairs = [];
      for (const s of hourFnSel.filter((x) => realCold(x.rec))) for (const [m, v] of Object.entries(s.rec.module_timings || {})) pairs.push({ fn: s.rec.function_name, m, v });
      return [...groupBy(pairs, (p) => JSON.stringify([p.fn, p.m]))].map(([k, l]) => {
        const [fn, m] = JSON.parse(k); const v = l.map((p) => p.v);
        return { function: fn, module: m, 'avg self': round(avg(v), 1), 'p95 self': percentileCont(v, 0.95), 'cold starts': l.length, exact: avg(v) };
      }).sort((a, b) => b.exact - a.exact).slice(0, 100).map(({ exact, ...row }) => row);
    }
    case 'Slowest packages across all functions': {
      // from the package rollups: the on-demand cold starts of every UTC hour that overlaps the
      // range (hourSel), the top 25 by average self time; p95 from a sketch (compared within 1 %)
      const pairs = [];
      for (const s of hourSel.filter((x) => realCold(x.rec))) for (const [m, v] of Object.entries(s.rec.module_timings || {})) pairs.push({ fn: s.rec.function_name, m, v });
      return [...groupBy(pairs, (p) => p.m)].map(([m, l]) => {
        const v = l.map((p) => p.v);
        return { package: m, functions: new Set(l.map((p) => p.fn)).size, 'cold starts': l.length, 'avg self': round(avg(v), 1),
          'p95 self': percentileCont(v, 0.95), 'total self': Math.round(v.reduce((a, b) => a + b, 0)), exact: sum(v) / v.length };
      }).sort((a, b) => b.exact - a.exact || byteCompare(a.package, b.package)).slice(0, 25).map(({ exact, ...row }) => row);
    }
    case 'Module load flame graph': return expectedFlame(sel);
    case 'Init cost over time':
      return [...groupBy(sel.filter((s) => s.rec.cold_start), (s) => bucketOf(s.ts, secs))].sort((a, b) => a[0] - b[0])
        .map(([time, l]) => ({ time, 'on-demand init': sum(l.filter((s) => realCold(s.rec)).map((s) => dollars(s.rec, prices))),
          'proactive init': sum(l.filter((s) => s.rec.start_kind === 'proactive').map((s) => dollars(s.rec, prices))) }));
    case 'Init cost by function':
      return [...groupBy(sel.filter((s) => s.rec.cold_start), (s) => s.rec.function_name)].map(([fn, l]) => {
        const usd = sum(l.filter((s) => realCold(s.rec)).map((s) => dollars(s.rec, prices)));
        return { function: fn, 'cold starts': l.filter((s) => realCold(s.rec)).length, 'init cost': usd,
          'per 30 days at this rate': (usd * 30 * DAY) / (range.to - range.from),
          'proactive init cost': sum(l.filter((s) => s.rec.start_kind === 'proactive').map((s) => dollars(s.rec, prices))) };
      });
    case 'Deployments':
      return [...groupBy(sel.filter((s) => s.rec.cold_start && deploymentOf(s.rec)), (s) => JSON.stringify([s.rec.function_name, deploymentOf(s.rec)]))]
        .map(([k, l]) => {
          const [fn, dep] = JSON.parse(k);
          const real = l.filter((s) => realCold(s.rec));
          const v = real.map((s) => s.rec.init_duration_ms);
          return { function: fn, deployment: dep, version: l[0].rec.function_version, 'cold starts': real.length,
            'p50 init': percentileCont(v, 0.5), 'p95 init': percentileCont(v, 0.95), 'init cost': sum(real.map((s) => dollars(s.rec, prices))) };
        });
    case 'Init p50 by deployment':
      return [...groupBy(cold.filter((s) => deploymentOf(s.rec)), (s) => JSON.stringify([bucketOf(s.ts, secs), `${s.rec.function_name} ${deploymentOf(s.rec).slice(0, 12)}`]))]
        .map(([k, l]) => { const [time, deployment] = JSON.parse(k); return { time, deployment, 'p50 init': percentileCont(l.map((s) => s.rec.init_duration_ms), 0.5) }; });
    case 'Init cost by package': {
      // from the per-function package rollups: every UTC hour that overlaps the range, top 25 by cost
      const pairs = [];
      for (const s of hourFnSel.filter((x) => realCold(x.rec))) for (const [m, v] of Object.entries(s.rec.module_timings || {})) pairs.push({ fn: s.rec.function_name, m, usd: dollars(s.rec, prices, v) });
      return [...groupBy(pairs, (p) => p.m)].map(([m, l]) => ({ module: m, functions: new Set(l.map((p) => p.fn)).size, 'cold starts': l.length,
        'init cost': sum(l.map((p) => p.usd)) })).sort((a, b) => b['init cost'] - a['init cost']).slice(0, 25);
    }
    default: throw new Error(`no expectation for panel "${title}"`);
  }
}

// ---- comparisons -------------------------------------------------------------------------

function close(actual, want, tol, what) {
  if (want === null || want === undefined) { assert.equal(actual, null, `${what}: expected null, got ${actual}`); return; }
  assert.equal(typeof actual, 'number', `${what}: expected a number, got ${JSON.stringify(actual)}`);
  assert.ok(Math.abs(actual - want) <= tol * Math.max(1, Math.abs(want)), `${what}: got ${actual}, computed ${want}`);
}

function compareRows(title, rows, want, { ordered, keys, tol = 1e-9, rounded = [], tols = {} }) {
  assert.equal(rows.length, want.length, `${title}: ${rows.length} rows, computed ${want.length}`);
  const index = (r) => JSON.stringify(keys.map((k) => r[k]));
  const wantBy = new Map(want.map((w) => [index(w), w]));
  rows.forEach((row, i) => {
    const w = ordered ? want[i] : wantBy.get(index(row));
    assert.ok(w, `${title}: unexpected row ${JSON.stringify(row)}`);
    for (const k of keys) assert.deepEqual(row[k], w[k], `${title} row ${i}: ${k}`);
    for (const [k, v] of Object.entries(w)) {
      if (keys.includes(k) || k === 'key') continue;
      if (typeof v === 'string') assert.equal(row[k], v, `${title} row ${i}: ${k}`);
      else close(row[k], v, tols[k] ?? (rounded.includes(k) ? 0.051 : tol), `${title} row ${i} (${index(row)}) ${k}`);
    }
  });
}

// The shape each panel type needs from its query.
function checkShape(panel, target, columns, rows) {
  const t = panel.title;
  const names = columns.map((c) => c.name);
  assert.equal(new Set(names).size, names.length, `${t}: duplicate column names ${names}`);
  const isText = (c) => /^(text|character varying.*)$/.test(c.type);
  const numeric = (c) => /^(integer|bigint|smallint|numeric|double precision|real)$/.test(c.type);
  if (target.format === 'time_series') {
    assert.equal(names[0], 'time', `${t}: first column is time`);
    assert.ok(numeric(columns[0]) || /^timestamp/.test(columns[0].type), `${t}: time is epoch seconds or a timestamp`);
    assert.ok(columns.slice(1).some(numeric), `${t}: at least one numeric value column`);
    const labels = columns.filter((c) => !numeric(c) && c.name !== 'time').map((c) => c.name);
    const seen = new Set();
    for (let i = 0; i < rows.length; i++) {
      if (i) assert.ok(rows[i].time >= rows[i - 1].time, `${t}: rows sorted by time`);
      const k = JSON.stringify([rows[i].time, ...labels.map((l) => rows[i][l])]);
      assert.ok(!seen.has(k), `${t}: one row per time and series`);
      seen.add(k);
    }
  }
  if (panel.type === 'stat') {
    assert.equal(rows.length, 1, `${t}: a stat query returns one row`);
    assert.ok(columns.every(numeric), `${t}: numeric`);
  }
  if (panel.type === 'barchart') {
    const x = panel.options.xField;
    assert.ok(names.includes(x), `${t}: the x field ${x} is a column`);
    assert.ok(isText(columns.find((c) => c.name === x)), `${t}: ${x} is text`);
    assert.ok(columns.filter((c) => c.name !== x).every(numeric), `${t}: the other columns are numeric`);
    assert.equal(new Set(rows.map((r) => r[x])).size, rows.length, `${t}: one bar group per ${x}`);
  }
  if (panel.type === 'table') {
    const order = /ORDER BY (\d+) DESC/.exec(target.rawSql);
    if (order) {
      const col = names[Number(order[1]) - 1];
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i][col] <= rows[i - 1][col], `${t}: sorted by ${col} descending`);
    }
  }
  if (panel.type === 'flamegraph') {
    assert.deepEqual(names, ['level', 'value', 'self', 'label'], `${t}: flame graph columns`);
    assert.ok(numeric(columns[0]) && numeric(columns[1]) && numeric(columns[2]) && isText(columns[3]), `${t}: types ${JSON.stringify(columns)}`);
    if (rows.length) {
      assert.equal(rows[0].level, 0, `${t}: starts at the root`);
      assert.equal(rows.filter((r) => r.level === 0).length, 1, `${t}: one root`);
    }
    // nested set in pre-order: a row's level is at most one deeper than the previous row's, and
    // the children of a node never add up to more than the node
    const stack = [];
    rows.forEach((r, i) => {
      assert.ok(Number.isInteger(r.level) && r.level >= 0, `${t}: level`);
      if (i) assert.ok(r.level <= rows[i - 1].level + 1, `${t}: row ${i} skips a level`);
      assert.ok(r.value >= 0 && r.self >= 0 && r.self <= r.value + 1e-9, `${t}: row ${i} value/self`);
      while (stack.length && stack[stack.length - 1].level >= r.level) stack.pop();
      if (stack.length) stack[stack.length - 1].children += r.value;
      stack.push({ level: r.level, value: r.value, children: 0, row: i });
      stack.forEach((s) => assert.ok(s.children <= s.value + 1e-6, `${t}: children of row ${s.row} exceed it`));
    });
  }
}

// ---- the suite -----------------------------------------------------------------------------

test('queries: set-up (database, migrations, read-only role, server, ingest through the API)', async () => {
  assert.ok(ADMIN_URL, 'CSA_TEST_DATABASE_URL must be set (admin URL of a PostgreSQL 15+)');
  ctx.db = scratchDatabase(ADMIN_URL, 'csa_grafana');
  const env = serverEnv(ROOT, ctx.db.url);
  runServerCommand(BIN, ['migrate'], env);
  ctx.keys = {};
  ctx.projects = {};
  for (const [slug, name] of [['alpha', "Alpha's shop"], ['beta', 'Beta']]) {
    const out = runServerCommand(BIN, ['create-project', '--name', name, '--slug', slug], env).trim().split('\n');
    ctx.keys[slug] = out[out.length - 1].trim();
    assert.match(ctx.keys[slug], /^csa_[A-Za-z0-9]{32}$/);
  }
  for (const row of queryRows(ctx.db.url, 'SELECT slug, id::text AS id FROM projects')) ctx.projects[row.slug] = row.id;

  ctx.role = `csa_grafana_${randomBytes(4).toString('hex')}`;
  ctx.rolePassword = randomBytes(18).toString('base64url');
  const r = spawnSync(join(ROOT, 'deploy', 'grafana-role.sh'), [], {
    encoding: 'utf8', env: { ...process.env, DATABASE_URL: ctx.db.url, GRAFANA_DB_USER: ctx.role, GRAFANA_DB_PASSWORD: ctx.rolePassword },
  });
  assert.equal(r.status, 0, `grafana-role.sh: ${r.stderr}`);
  ctx.grafanaUrl = withDatabase(ADMIN_URL, ctx.db.name, ctx.role, ctx.rolePassword);

  ctx.server = await startServer(BIN, env);
  ctx.t0 = Date.now();
  ctx.sent = makeRecords(ctx.t0);
  for (const slug of ['alpha', 'beta']) {
    const mine = ctx.sent.filter((s) => s.project === slug);
    const single = mine.slice(0, 3), rest = mine.slice(3);
    for (const s of single) {
      const res = await fetch(ctx.server.base + '/api/v1/ingest', {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': ctx.keys[slug] }, body: JSON.stringify(s.rec),
      });
      assert.equal(res.status, 200, `ingest: ${await res.text()}`);
    }
    for (let i = 0; i < rest.length; i += 200) {
      const batch = rest.slice(i, i + 200).map((s) => s.rec);
      const res = await fetch(ctx.server.base + '/api/v1/ingest/batch', {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': ctx.keys[slug] }, body: JSON.stringify({ invocations: batch }),
      });
      const body = await res.json();
      assert.equal(res.status, 200, `batch: ${JSON.stringify(body)}`);
      assert.equal(body.status, 'ok', `batch: ${JSON.stringify(body).slice(0, 500)}`);
    }
  }
  const stored = Number(psql(ctx.db.url, 'SELECT count(*) FROM invocations').trim());
  assert.equal(stored, ctx.sent.length, 'every record sent is stored');
  // the cold starts folded into the day sketches and package rollups (migrations/006, 007): at
  // once by `coldstartd maintain`, or by the server's own fold if it holds the lock meanwhile
  runServerCommand(BIN, ['maintain'], env);
  for (let i = 0; i < 100 && Number(psql(ctx.db.url, 'SELECT count(*) FROM function_day_sketch_pending').trim()) > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(psql(ctx.db.url, 'SELECT count(*) FROM function_day_sketch_pending').trim(), '0', 'the cold starts are folded');
  ctx.ready = true;
});

test('queries: the Grafana role reads only what the dashboards need', () => {
  assert.ok(ctx.ready, 'set-up failed');
  const u = ctx.grafanaUrl;
  assert.equal(psql(u, 'SELECT count(*) > 0 FROM invocations').trim(), 't');
  for (const [sql, why] of [
    ['SELECT * FROM api_keys', /permission denied/],
    ['SELECT * FROM schema_migrations', /permission denied/],
    ['SELECT secret FROM alert_rules', /permission denied/], // the webhook signing secrets (docs/security.md)
    ['SELECT body FROM alert_outbox', /permission denied/],
    ["INSERT INTO projects (name, slug) VALUES ('x', 'x')", /read-only transaction|permission denied/],
    ['BEGIN READ WRITE; DELETE FROM invocations; COMMIT', /permission denied/],
    ['BEGIN READ WRITE; CREATE TABLE grafana_was_here (x int); COMMIT', /permission denied/],
  ]) {
    assert.throws(() => psql(u, sql), why, sql);
  }
  const direct = psql(ctx.db.url, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ '^invocations_y[0-9]{4}m[0-9]{2}$' ORDER BY relname LIMIT 1").trim();
  if (direct) assert.throws(() => psql(u, `SELECT 1 FROM ${direct} LIMIT 1`), /permission denied/, 'partitions only through the parent');
});

test('queries: grafana-role.sh is re-runnable and rotates the password', () => {
  assert.ok(ctx.ready, 'set-up failed');
  const run = (password) => spawnSync(join(ROOT, 'deploy', 'grafana-role.sh'), [], {
    encoding: 'utf8', env: { ...process.env, DATABASE_URL: ctx.db.url, GRAFANA_DB_USER: ctx.role, GRAFANA_DB_PASSWORD: password },
  });
  assert.equal(run('short').status, 2, 'refuses a password under 12 characters');
  const rotated = randomBytes(18).toString('base64url');
  const r = run(rotated);
  assert.equal(r.status, 0, r.stderr);
  let checksPasswords = true;
  try { psql(withDatabase(ADMIN_URL, ctx.db.name, ctx.role, 'surely-not-the-password'), 'SELECT 1'); checksPasswords = false; } catch { /* expected */ }
  if (checksPasswords) assert.throws(() => psql(ctx.grafanaUrl, 'SELECT 1'), /password authentication failed/, 'the old password stops working');
  ctx.rolePassword = rotated;
  ctx.grafanaUrl = withDatabase(ADMIN_URL, ctx.db.name, ctx.role, rotated);
  assert.equal(psql(ctx.grafanaUrl, 'SELECT count(*) > 0 FROM functions').trim(), 't');
  assert.throws(() => psql(ctx.grafanaUrl, 'SELECT * FROM api_keys'), /permission denied/);
});

// The variable states a dashboard viewer can produce, with options from the variable queries run
// as the Grafana role (as Grafana does).
function variableStates() {
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  const runVar = (name, values) => {
    const { sql } = renderQuery(vars[name].query, { fromMs: ctx.t0 - DAY, toMs: ctx.t0, variables: values });
    return queryRows(ctx.grafanaUrl, sql);
  };
  const project = (id) => ({ ...vars.project, current: { value: id, text: id }, options: [] });
  const fnOptions = (pid) => runVar('function', { project: project(pid) }).map((r) => ({ value: r.function_name, text: r.function_name }));
  const fn = (pid, value) => ({ ...vars.function, current: { value, text: value }, options: [{ value: '$__all', text: 'All' }, ...fnOptions(pid)] });
  const A = ctx.projects.alpha, B = ctx.projects.beta;
  // the price boxes as provisioned (AWS's prices), and as a viewer may change them
  const box = (name, value) => ({ ...vars[name], current: { value: value ?? vars[name].current.value, text: value ?? vars[name].current.value }, options: [] });
  const aws = { price_x86_64: box('price_x86_64'), price_arm64: box('price_arm64') };
  const own = { price_x86_64: box('price_x86_64', '0.00002'), price_arm64: box('price_arm64', '1e-5') };
  return [
    { name: 'alpha, All functions', project: 'alpha', functions: null, variables: { project: project(A), function: fn(A, ['$__all']), ...aws } },
    { name: 'alpha, one function, own prices', project: 'alpha', functions: ['payment-service'], variables: { project: project(A), function: fn(A, ['payment-service']), ...own } },
    { name: "alpha, two functions (one with a quote)", project: 'alpha', functions: ['payment-service', "o'reilly-export"], variables: { project: project(A), function: fn(A, ['payment-service', "o'reilly-export"]), ...aws } },
    { name: 'beta, All functions', project: 'beta', functions: null, variables: { project: project(B), function: fn(B, ['$__all']), ...own } },
    { name: 'no project yet', project: null, functions: [], variables: { project: project(''), function: fn('', ['$__all']), ...aws } },
  ];
}

test('queries: variable queries return text/value pairs per project', () => {
  assert.ok(ctx.ready, 'set-up failed');
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  const projects = queryRows(ctx.grafanaUrl, renderQuery(vars.project.query, { fromMs: ctx.t0 - DAY, toMs: ctx.t0 }).sql);
  assert.deepEqual(projects.map((p) => p.__value).sort(), [ctx.projects.alpha, ctx.projects.beta].sort());
  assert.ok(projects.some((p) => p.__text === "Alpha's shop (alpha)"));
  const states = variableStates();
  assert.deepEqual(states[0].variables.function.options.slice(1).map((o) => o.value).sort(), ['checkout', "o'reilly-export", 'orders-api', 'payment-service']);
  assert.deepEqual(states[3].variables.function.options.slice(1).map((o) => o.value), ['payment-service']);
  assert.deepEqual(states[4].variables.function.options.slice(1), []);
});

function ranges() {
  const t0 = ctx.t0;
  return [
    { name: 'last 1 hour', from: t0 - HOUR, to: t0 },
    { name: 'last 24 hours', from: t0 - DAY, to: t0 },
    { name: 'last 7 days', from: t0 - 7 * DAY, to: t0 },
    { name: 'last 30 days', from: t0 - 30 * DAY, to: t0 }, // 6-hour intervals: Init p50 by deployment reads blocks (migrations/013)
    { name: 'last 90 days', from: t0 - 90 * DAY, to: t0 },
    { name: '4 to 2 days ago', from: t0 - 4 * DAY + 123, to: t0 - 2 * DAY - 456 },
    { name: 'a year ago (no data)', from: t0 - 400 * DAY, to: t0 - 390 * DAY },
  ];
}

// Compared row by row; the others as sets (their text order follows the database's collation).
const ORDERED = new Set(['Cold start rate over time', 'Start kinds over time', 'Init duration over time (p50, p95, p99)', 'Module load flame graph',
  'Init cost over time']);
const KEYS = {
  'Cold start rate over time': ['time'], 'Start kinds over time': ['time', 'cold', 'proactive', 'provisioned'],
  'Init duration over time (p50, p95, p99)': ['time'], 'Cold starts per function': ['time', 'function', 'cold starts'],
  'Average and p95 init duration by function': ['function', 'cold starts'], 'Cold start vs warm execution time': ['start', 'invocations'],
  'Module timing breakdown': ['function', 'module', 'cold starts'], 'Slowest packages across all functions': ['package', 'functions', 'cold starts'],
  'Module load flame graph': ['level', 'label'],
  'Init cost over time': ['time'], 'Init cost by function': ['function', 'cold starts'], 'Deployments': ['function', 'deployment', 'version', 'cold starts'],
  'Init p50 by deployment': ['time', 'deployment'], 'Init cost by package': ['module', 'functions', 'cold starts'],
  Invocations: ['invocations'], 'Cold starts': ['cold starts'], 'Cold start rate': [], 'p95 init duration': [],
};
const ROUNDED = ['avg init', 'avg execution', 'avg self', 'cold start rate', 'total self'];
// Figures from sketches (backend/src/sketch.h): within 1 % of the exact value (and 0.01 ms under 1 ms).
const SKETCHED = {
  'Slowest packages across all functions': { 'p95 self': 0.01 },
  'Module timing breakdown': { 'p95 self': 0.01 },
  'p95 init duration': { 'p95 init': 0.01 },
  'Init duration over time (p50, p95, p99)': { p50: 0.01, p95: 0.01, p99: 0.01 },
  'Average and p95 init duration by function': { 'p95 init': 0.01 },
  Deployments: { 'p50 init': 0.01, 'p95 init': 0.01 },
  'Init p50 by deployment': { 'p50 init': 0.01 },
  'Cold start vs warm execution time': { 'p95 execution': 0.01 },
};

// Every (panel, target, variable state, time range) combination, rendered once and run in one
// psql session as the Grafana role; the per-panel tests below compare the results.
function runAllPanelQueries() {
  const jobs = [];
  for (const panel of panels) for (const state of variableStates()) for (const range of ranges()) for (const target of panel.targets) {
    const { sql, intervalMs } = renderQuery(target.rawSql, {
      fromMs: range.from, toMs: range.to, variables: state.variables, maxDataPoints: panel.maxDataPoints ?? 1000, minInterval: panel.interval,
    });
    jobs.push({ panel, state, range, target, sql, intervalMs });
  }
  let results;
  for (;;) {
    const at = Date.now();
    try {
      results = batchQueries(ctx.grafanaUrl, jobs.map((j) => j.sql));
    } catch (e) {
      const j = jobs[e.index];
      throw new Error(j ? `${j.panel.title} (${j.state.name}, ${j.range.name}): ${e.message}\n${j.sql}` : e.message);
    }
    // a UTC midnight during the batch moves the per-function package rollups' hour cutoff: again
    if (dayOf(Date.now()) === dayOf(at)) {
      queriedAt = at;
      break;
    }
  }
  jobs.forEach((j, i) => Object.assign(j, results[i]));
  return jobs;
}

test('queries: every panel query runs as the Grafana role for every time range and variable state', () => {
  assert.ok(ctx.ready, 'set-up failed');
  ctx.jobs = runAllPanelQueries();
});

for (const panel of panels) {
  test(`panel "${panel.title}" (${panel.type}): shape and numbers`, () => {
    assert.ok(ctx.jobs, 'the queries did not run');
    let checkedRows = 0;
    for (const j of ctx.jobs.filter((x) => x.panel === panel)) {
      const { state, range, target, columns, rows, intervalMs } = j;
      try {
        checkShape(panel, target, columns, rows);
        const inRange = (s) => s.ts >= range.from && s.ts <= range.to && s.project === state.project;
        const projectSel = ctx.sent.filter(inRange);
        const sel = projectSel.filter((s) => !state.functions || state.functions.includes(s.rec.function_name));
        const prices = { x86_64: Number(state.variables.price_x86_64.current.value), arm64: Number(state.variables.price_arm64.current.value) };
        const hourSel = ctx.sent.filter((s) => s.project === state.project && hourOf(s.ts) >= hourOf(range.from) && hourOf(s.ts) <= range.to);
        const span = fnRollupSpan(range);
        const hourFnSel = ctx.sent.filter((s) => s.project === state.project && span(s.ts) && (!state.functions || state.functions.includes(s.rec.function_name)));
        const want = expected(panel.title, sel, projectSel, intervalMs / 1000, prices, range, hourSel, hourFnSel);
        compareRows(panel.title, rows, want, { ordered: ORDERED.has(panel.title), keys: KEYS[panel.title], rounded: ROUNDED, tol: 1e-9,
          tols: SKETCHED[panel.title] });
        checkedRows += rows.length;
      } catch (e) {
        throw new Error(`${state.name}, ${range.name}: ${e.message}`);
      }
    }
    assert.ok(checkedRows > 0, 'some state produced rows to compare');
  });
}

test('panel "Deployments": first seen is the first record of the deployment, newest first', () => {
  assert.ok(ctx.jobs, 'the queries did not run');
  const jobs = ctx.jobs.filter((j) => j.panel.title === 'Deployments' && j.state.project === 'alpha' && j.rows.length);
  assert.ok(jobs.length > 0);
  for (const j of jobs) {
    for (const row of j.rows) {
      const mine = ctx.sent.filter((s) => s.project === 'alpha' && s.rec.function_name === row.function && deploymentOf(s.rec) === row.deployment);
      assert.equal(Date.parse(row['first seen']), Math.min(...mine.map((s) => s.ts)), `${row.function} ${row.deployment}`);
    }
  }
});

for (const title of ['Slowest packages across all functions', 'Module timing breakdown', 'Init cost by package']) {
  const perFunction = !title.startsWith('Slowest');
  test(`panel "${title}": every UTC hour that overlaps the range counts whole${perFunction ? ' (whole days at old ends)' : ''}, as its description says`, () => {
    assert.ok(ctx.ready, 'set-up failed');
    const panel = panels.find((p) => p.title === title);
    assert.match(panel.description, /every UTC hour that overlaps the time range counts whole/);
    if (perFunction) assert.match(panel.description, /every UTC day that overlaps/);
    // two of alpha's four functions (the filter applies to two of these panels), AWS's prices
    const state = variableStates()[2];
    const prices = { x86_64: Number(state.variables.price_x86_64.current.value), arm64: Number(state.variables.price_arm64.current.value) };
    const mine = (x) => x.project === 'alpha' && (!perFunction || state.functions.includes(x.rec.function_name));
    // ranges starting just after an on-demand cold start, in its hour: the rollups count it, the
    // rows in the range would not; the recent ones (today and the two days before) by the hour,
    // the older ones (the per-function rollups keep days only) by the day
    const hoursFrom = dayOf(Date.now()) - 2 * DAY;
    const candidates = ctx.sent.filter((s) => mine(s) && realCold(s.rec) && s.ts % HOUR < HOUR - 1000 && s.ts < ctx.t0 - 3 * HOUR);
    const picked = [...candidates.filter((s) => s.ts >= hoursFrom + HOUR).slice(0, 3), ...candidates.filter((s) => s.ts < hoursFrom - DAY).slice(0, 2)];
    assert.equal(picked.length, 5);
    for (const s of picked) {
      const range = { from: s.ts + 1, to: s.ts + 2 * HOUR + 17 };
      const at = Date.now();
      const rows = queryRows(ctx.grafanaUrl, renderQuery(panel.targets[0].rawSql, { fromMs: range.from, toMs: range.to, variables: state.variables }).sql);
      const alpha = ctx.sent.filter((x) => x.project === 'alpha');
      const span = fnRollupSpan(range, at);
      const hourSel = alpha.filter((x) => hourOf(x.ts) >= hourOf(range.from) && hourOf(x.ts) <= range.to);
      const exactSel = alpha.filter((x) => x.ts >= range.from && x.ts <= range.to);
      const fnOnly = (l) => l.filter((x) => state.functions.includes(x.rec.function_name));
      const want = expected(panel.title, [], [], 0, prices, range, hourSel, fnOnly(alpha.filter((x) => span(x.ts))));
      assert.notDeepEqual(want, expected(panel.title, [], [], 0, prices, range, exactSel, fnOnly(exactSel)), 'the rule makes a difference here');
      if (perFunction && s.ts < hoursFrom) {
        assert.notDeepEqual(want, expected(panel.title, [], [], 0, prices, range, hourSel, fnOnly(hourSel)), 'the whole day differs from the hours');
      }
      compareRows(panel.title, rows, want, { ordered: false, keys: KEYS[panel.title], rounded: ROUNDED, tols: SKETCHED[panel.title] });
    }
  });
}

test('queries: every panel query can be answered from indexes (no sequential scan of invocations)', () => {
  assert.ok(ctx.ready, 'set-up failed');
  const state = variableStates()[0];
  const jobs = [];
  for (const panel of panels) for (const target of panel.targets) {
    jobs.push({ panel, sql: renderQuery(target.rawSql, { fromMs: ctx.t0 - 7 * DAY, toMs: ctx.t0, variables: state.variables, maxDataPoints: panel.maxDataPoints ?? 1000 }).sql });
  }
  const plans = batchQueries(ctx.grafanaUrl, jobs.map((j) => j.sql), { setup: 'SET enable_seqscan = off;', explain: true });
  jobs.forEach((j, i) => {
    const scans = [];
    const walk = (n) => { if (n['Node Type'] === 'Seq Scan' && /^invocations/.test(n['Relation Name'])) scans.push(n['Relation Name']); (n.Plans || []).forEach(walk); };
    walk(plans[i].plan[0].Plan);
    assert.deepEqual(scans, [], `${j.panel.title}: sequential scan of ${scans.join(', ')} even with enable_seqscan off`);
  });
});

test('queries: the provisioned alert rules run as the Grafana role and agree with the records sent', () => {
  assert.ok(ctx.ready, 'set-up failed');
  const rules = Object.fromEntries(loadAlertRules().map(({ rule }) => [rule.uid, rule]));
  const fromMs = ctx.t0 - 2 * DAY, toMs = ctx.t0;
  const inRange = ctx.sent.filter((s) => s.ts >= fromMs && s.ts <= toMs);
  const byFn = groupBy(inRange, (s) => `${s.project}/${s.rec.function_name}`);
  const expected = {
    'csa-init-p95': (recs) => percentileCont(recs.filter(realCold).map((r) => r.init_duration_ms), 0.95),
    'csa-cold-start-rate': (recs) => (100 * recs.filter(realCold).length) / recs.length,
    // each record at its own memory and architecture, at the AWS prices written in the rule
    'csa-init-cost': (recs) => {
      const cold = recs.filter(realCold);
      const awsPrices = { x86_64: 0.0000166667, arm64: 0.0000133334 };
      return cold.length ? (sum(cold.map((r) => dollars(r, awsPrices))) * 2592000) / ((toMs - fromMs) / 1000) : null;
    },
  };
  for (const [uid, rule] of Object.entries(rules)) {
    const a = rule.data[0];
    // the rule's own window (it must run), then two days (to compare with the data set)
    queryRows(ctx.grafanaUrl, renderQuery(a.model.rawSql, { fromMs: toMs - a.relativeTimeRange.from * 1000, toMs }).sql);
    const rows = queryRows(ctx.grafanaUrl, renderQuery(a.model.rawSql, { fromMs, toMs }).sql);
    const valueColumn = Object.keys(rows[0] ?? { project: 1, function: 1, value: 1 }).filter((k) => k !== 'project' && k !== 'function');
    if (uid === 'csa-init-regression') {
      // the data set's deployments were first seen more than two days ago, with fewer than 20
      // on-demand cold starts each: no row, no alert (the next test has regressions)
      assert.deepEqual(rows, [], uid);
      continue;
    }
    assert.equal(valueColumn.length, 1, `${uid}: one value column besides the labels: ${JSON.stringify(rows[0])}`);
    const want = [...byFn].map(([k, sent]) => [k, expected[uid](sent.map((x) => x.rec))]).filter(([, v]) => v !== null).sort();
    const got = rows.map((r) => [`${r.project}/${r.function}`, Number(r[valueColumn[0]])]).sort();
    assert.deepEqual(got.map(([k]) => k), want.map(([k]) => k), `${uid}: one row per function with data`);
    for (const [i, [k, v]] of got.entries()) assert.ok(Math.abs(v - want[i][1]) < 1e-6 * Math.max(1, Math.abs(v)), `${uid} ${k}: ${v} vs ${want[i][1]}`);
  }
});

// Functions of a third project, each with deployments whose on-demand cold starts take the given
// init durations (ms), one a minute from `minutesAgo` on; oldest deployment first.
const jitter = (i) => (i * 7) % 13;
const series = (n, f) => Array.from({ length: n }, (_, i) => f(i));
const REGRESSION_CASES = {
  // +100 ms on 25 cold starts each: the API says regression, the rule fires
  'gamma-regression': { verdict: 'regression', fires: true, deployments: [[300, series(25, (i) => 300 + jitter(i))], [100, series(25, (i) => 400 + jitter(i))]] },
  // 19 on-demand cold starts on the base (and 5 provisioned inits, which do not count): too few
  'gamma-too-few': { verdict: 'not enough data', deployments: [[300, series(19, (i) => 300 + jitter(i))], [100, series(25, (i) => 400 + jitter(i))]], provisioned: 5 },
  // the medians 200 -> 300 ms (+50 %), but one cold start of 20 moved: the U test says noise
  'gamma-noise': { verdict: 'no change', deployments: [[300, series(20, (i) => (i < 10 ? 100 : 300))], [100, series(20, (i) => (i < 9 ? 100 : 300))]] },
  // +25 %, very significant, but 1 ms: under the API's minimum effect
  'gamma-tiny': { verdict: 'no change', deployments: [[300, series(25, () => 4)], [100, series(25, () => 5)]] },
  'gamma-improvement': { verdict: 'improvement', deployments: [[300, series(25, (i) => 400 + jitter(i))], [100, series(25, (i) => 300 + jitter(i))]] },
  // the newest against the one before it (no change), not against the oldest (a regression)
  'gamma-three': { verdict: 'no change', deployments: [[500, series(25, (i) => 300 + jitter(i))], [300, series(25, (i) => 400 + jitter(i))], [100, series(25, (i) => 400 + jitter((i + 3) % 25))]] },
  // a regression whose newest deployment was first seen 8 days ago: outside the rule's 7 days
  'gamma-old': { verdict: 'regression', deployments: [[9 * 1440, series(25, (i) => 300 + jitter(i))], [8 * 1440, series(25, (i) => 400 + jitter(i))]] },
};

test('queries: the regression rule fires where the API\'s comparison says "regression", and only there', async () => {
  assert.ok(ctx.ready, 'set-up failed');
  const env = serverEnv(ROOT, ctx.db.url);
  // the key printed after "Admin key" (scopes ingest, read, admin: the comparison needs read)
  const out = runServerCommand(BIN, ['create-project', '--name', 'Gamma', '--slug', 'gamma'], env).split('\n');
  const key = out.slice(out.findIndex((l) => l.startsWith('Admin key'))).find((l) => /^csa_[A-Za-z0-9]{32}$/.test(l.trim())).trim();
  const now = Date.now();
  const records = [];
  for (const [fn, c] of Object.entries(REGRESSION_CASES)) {
    c.deployments.forEach(([minutesAgo, inits], d) => {
      const base = { function_name: fn, cold_start: true, start_kind: 'cold', init_type: 'on-demand', execution_duration_ms: 20,
        memory_allocated_mb: 512, code_id: `${fn}-d${d}`, function_version: '$LATEST' };
      inits.forEach((init, i) => records.push({ ...base, invocation_id: `${fn}-${d}-${i}`, init_duration_ms: init,
        timestamp: new Date(now - (minutesAgo - i) * MIN).toISOString() }));
      if (d === 0) for (let i = 0; i < (c.provisioned ?? 0); i++) {
        records.push({ ...base, invocation_id: `${fn}-${d}-p${i}`, start_kind: 'provisioned', init_type: 'provisioned-concurrency',
          init_duration_ms: 300, timestamp: new Date(now - (minutesAgo - 30 - i) * MIN).toISOString() });
      }
    });
  }
  // the suite's keep-alive connection has idled since the set-up and the server may have closed
  // it: a request that fails on it is sent once more (ingest is idempotent by invocation_id)
  const call = (path, init) => fetch(ctx.server.base + path, init).catch(() => fetch(ctx.server.base + path, init));
  const res = await call('/api/v1/ingest/batch', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': key }, body: JSON.stringify({ invocations: records }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.failed, 0, JSON.stringify(body).slice(0, 500));

  const rule = loadAlertRules().map(({ rule }) => rule).find((r) => r.uid === 'csa-init-regression');
  const threshold = rule.data[2].model.conditions[0].evaluator.params[0];
  const a = rule.data[0];
  const rows = queryRows(ctx.grafanaUrl, renderQuery(a.model.rawSql, { fromMs: now - a.relativeTimeRange.from * 1000, toMs: now }).sql)
    .filter((r) => r.project === 'gamma');
  const ids = Object.fromEntries(queryRows(ctx.db.url, "SELECT f.function_name AS name, f.id::text AS id FROM functions f JOIN projects p ON p.id = f.project_id WHERE p.slug = 'gamma'").map((r) => [r.name, r.id]));
  for (const [fn, c] of Object.entries(REGRESSION_CASES)) {
    const api = await call(`/api/v1/functions/${ids[fn]}/compare`, { headers: { 'X-API-Key': key } });
    const cmp = await api.json();
    assert.equal(api.status, 200, JSON.stringify(cmp));
    assert.equal(cmp.verdict, c.verdict, `${fn}: the API's verdict ${JSON.stringify(cmp.test)}`);
    assert.equal(cmp.head.deployment, `${fn}-d${c.deployments.length - 1}`, `${fn}: head`);
    const row = rows.find((r) => r.function === fn);
    if (!c.fires) {
      assert.equal(row, undefined, `${fn}: no row where the API says ${cmp.verdict}: ${JSON.stringify(row)}`);
      continue;
    }
    assert.ok(row, `${fn}: the rule's row for the API's regression`);
    // the same medians as the API's (which rounds the percent to 0.1)
    assert.ok(Math.abs(row.init_regression_percent - cmp.test.median_change_percent) <= 0.051, `${fn}: ${row.init_regression_percent} vs ${cmp.test.median_change_percent}`);
    assert.ok(row.init_regression_percent > threshold, `${fn}: above the rule's ${threshold} %`);
  }
  assert.deepEqual(rows.map((r) => r.function), Object.keys(REGRESSION_CASES).filter((fn) => REGRESSION_CASES[fn].fires));
  // the cold starts are read through the comparisons' index, not by scanning invocations
  const sql = renderQuery(a.model.rawSql, { fromMs: now - a.relativeTimeRange.from * 1000, toMs: now }).sql;
  const [{ plan }] = batchQueries(ctx.grafanaUrl, [sql], { setup: 'SET enable_seqscan = off;', explain: true });
  const indexes = [], scans = [];
  const walk = (n) => {
    if (/^invocations/.test(n['Relation Name'] ?? '')) (n['Node Type'] === 'Seq Scan' ? scans : indexes).push(n['Index Name']);
    (n.Plans || []).forEach(walk);
  };
  walk(plan[0].Plan);
  assert.deepEqual(scans, [], 'no sequential scan of invocations');
  // idx_invocations_function_deployment_cold, as each partition names its copy
  assert.ok(indexes.length && indexes.every((i) => /deployment_cold|_function_id_coalesce_timestamp_idx$/.test(i)), JSON.stringify(indexes));
});

test('queries: tear-down', async () => {
  if (ctx.server) await ctx.server.stop();
  if (ctx.db) ctx.db.drop();
  if (ctx.role) psql(ADMIN_URL, `DROP ROLE IF EXISTS ${ctx.role}`);
});
