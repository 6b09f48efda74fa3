// Static checks of grafana/: the provisioning YAML, grafana.ini and the dashboard JSON.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from './lib/harness.mjs';
import { parseYaml } from './lib/yaml.mjs';
import { KNOWN_MACROS, macrosIn } from './lib/grafana-sql.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const G = join(ROOT, 'grafana');
export const DS_UID = 'coldstart-pg';
export const DASHBOARD_DIR = join(G, 'provisioning', 'dashboards');

export function loadDashboards() {
  return readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json')).map((f) => ({
    file: f, json: JSON.parse(readFileSync(join(DASHBOARD_DIR, f), 'utf8')),
  }));
}

// Panels of Grafana 10's core visualisations (no plugin needs installing).
const CORE_PANEL_TYPES = new Set(['timeseries', 'stat', 'gauge', 'bargauge', 'barchart', 'table', 'piechart', 'text',
  'row', 'heatmap', 'histogram', 'state-timeline', 'status-history', 'flamegraph', 'logs', 'nodeGraph', 'trend', 'xychart']);

export function allPanels(dash) {
  const out = [];
  for (const p of dash.panels || []) { out.push(p); for (const q of p.panels || []) out.push(q); }
  return out;
}

export function parseIni(text) {
  const out = {};
  let section = '';
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith(';') || line.startsWith('#')) continue;
    const s = /^\[([^\]]+)\]$/.exec(line);
    if (s) { section = s[1]; out[section] ??= {}; continue; }
    const kv = /^([A-Za-z0-9_.]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`grafana.ini line ${n + 1}: cannot read ${line}`);
    if (!section) throw new Error(`grafana.ini line ${n + 1}: key outside a section`);
    out[section][kv[1]] = kv[2];
  }
  return out;
}

test('static: datasource.yml pins the uid, reads credentials from the environment, no TimescaleDB', () => {
  const doc = parseYaml(readFileSync(join(G, 'provisioning', 'datasources', 'datasource.yml'), 'utf8'));
  assert.equal(doc.apiVersion, 1);
  assert.equal(doc.datasources.length, 1);
  const ds = doc.datasources[0];
  assert.equal(ds.uid, DS_UID);
  assert.equal(ds.type, 'postgres');
  assert.equal(ds.jsonData.timescaledb, false);
  assert.match(String(ds.jsonData.database), /^\$\{[A-Z_]+\}$/, 'jsonData.database from the environment');
  assert.ok(!('database' in ds), 'database belongs under jsonData (the top-level field is deprecated)');
  for (const [name, v] of [['url', ds.url], ['user', ds.user], ['password', ds.secureJsonData?.password]]) {
    assert.match(String(v), /^\$\{[A-Z_]+\}$/, `${name} comes from an environment variable`);
  }
  assert.ok(!('password' in ds), 'the password only in secureJsonData');
  assert.ok(ds.jsonData.timeInterval, 'a minimum interval so $__interval never goes below it');
});

test('static: dashboard provider points at the folder that holds the JSON', () => {
  const doc = parseYaml(readFileSync(join(DASHBOARD_DIR, 'dashboard.yml'), 'utf8'));
  assert.equal(doc.apiVersion, 1);
  const p = doc.providers[0];
  assert.equal(p.type, 'file');
  assert.equal(p.options.path, '/etc/grafana/provisioning/dashboards');
  assert.ok(loadDashboards().length >= 1);
});

test('static: grafana.ini turns off anonymous access and sign-up, home is our dashboard', () => {
  const ini = parseIni(readFileSync(join(G, 'grafana.ini'), 'utf8'));
  assert.equal(ini['auth.anonymous'].enabled, 'false');
  assert.equal(ini.users.allow_sign_up, 'false');
  const home = ini.dashboards.default_home_dashboard_path;
  assert.match(home, /^\/etc\/grafana\/provisioning\/dashboards\/[^/]+\.json$/);
  assert.ok(existsSync(join(DASHBOARD_DIR, basename(home))), `${home} exists in grafana/provisioning/dashboards`);
  assert.ok(!('admin_password' in (ini.security || {})), 'no admin password in the file');
});

test('static: dashboard JSON: ids, types, datasource uid, variables, macros, no time_bucket', () => {
  for (const { file, json: d } of loadDashboards()) {
    assert.ok(d.uid && d.title, `${file}: uid and title`);
    assert.ok(d.schemaVersion >= 36, `${file}: Grafana 10 schema`);
    const panels = allPanels(d);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`);
    const titles = panels.map((p) => p.title);
    assert.equal(new Set(titles).size, titles.length, `${file}: unique panel titles`);
    const vars = d.templating.list;
    const defined = new Set();
    for (const v of vars) {
      if (v.type === 'textbox') {
        // the price boxes of the init cost panels: a number by default, used only inside a quoted
        // literal cast to float8 (a viewer's text cannot become SQL)
        assert.match(v.name, /^price_(x86_64|arm64)$/, `textbox ${v.name}`);
        assert.ok(Number(v.query) > 0 && v.current.value === v.query, `${v.name}: a price by default`);
        for (const p of allPanels(d)) for (const t of p.targets || []) {
          const uses = t.rawSql.split(`$${v.name}`).length - 1;
          const quoted = t.rawSql.split(`NULLIF('$${v.name}', '')::float8`).length - 1;
          assert.equal(quoted, uses, `${p.title}: every $${v.name} as a quoted literal cast to float8`);
        }
        defined.add(v.name);
        continue;
      }
      assert.equal(v.datasource.uid, DS_UID, `variable ${v.name} on the pinned datasource`);
      assert.equal(v.type, 'query');
      for (const ref of variableRefs(v.query)) assert.ok(defined.has(ref), `variable ${v.name} uses $${ref} defined before it`);
      defined.add(v.name);
    }
    const cells = new Set();
    for (const p of panels) {
      assert.ok(CORE_PANEL_TYPES.has(p.type), `${p.title}: known panel type ${p.type}`);
      if (p.type === 'row') continue;
      assert.equal(p.datasource?.uid, DS_UID, `${p.title}: panel datasource`);
      const { x, y, w, h } = p.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${p.title}: gridPos inside 24 columns`);
      for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
        assert.ok(!cells.has(`${i},${j}`), `${p.title}: overlaps another panel`);
        cells.add(`${i},${j}`);
      }
      assert.ok(p.targets?.length >= 1, `${p.title}: has a query`);
      const refIds = p.targets.map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${p.title}: unique refIds`);
      for (const t of p.targets) {
        assert.equal(t.datasource?.uid, DS_UID, `${p.title}/${t.refId}: target datasource`);
        assert.ok(['table', 'time_series'].includes(t.format), `${p.title}: format`);
        assert.equal(t.rawQuery, true);
        assert.ok(!/time_bucket|timescale/i.test(t.rawSql), `${p.title}: no TimescaleDB`);
        for (const m of macrosIn(t.rawSql)) assert.ok(KNOWN_MACROS.has(m), `${p.title}: unknown macro $${m}`);
        for (const ref of variableRefs(t.rawSql)) assert.ok(defined.has(ref), `${p.title}: undefined variable $${ref}`);
        // reads the invocations table (not only a column alias "invocations")
        if (/\b(FROM|JOIN)\s+invocations\b/i.test(t.rawSql)) {
          assert.match(t.rawSql, /\$__timeFilter\(i\.timestamp\)/, `${p.title}: bounded by the time range`);
          assert.match(t.rawSql, /i\.project_id = NULLIF\('\$project', ''\)::uuid/, `${p.title}: bounded by the project`);
        }
        if (p.type === 'timeseries') {
          assert.equal(t.format, 'time_series', `${p.title}: time series format`);
          assert.match(t.rawSql, /\$__timeGroup(Alias)?\(/, `${p.title}: grouped by Grafana's interval`);
        }
      }
    }
  }
});

// $name, ${name...} and [[name]] references, minus Grafana's built-ins and macros.
export function variableRefs(sql) {
  const refs = new Set();
  for (const m of sql.matchAll(/\$(\w+)|\[\[(\w+?)(?::\w+)?\]\]|\$\{(\w+)(?:[.:][^}]*)?\}/g)) {
    const name = m[1] || m[2] || m[3];
    if (!name.startsWith('__') && !/^\d+$/.test(name)) refs.add(name);
  }
  return refs;
}

test('static: the dashboard has every panel the issue asks for', () => {
  const d = loadDashboards().find((x) => x.json.uid === 'cold-start-analyzer').json;
  const byTitle = Object.fromEntries(allPanels(d).map((p) => [p.title, p.type]));
  const want = {
    'Cold start rate over time': 'timeseries',
    'Average and p95 init duration by function': 'barchart',
    'Module timing breakdown': 'table',
    'Cold start vs warm execution time': 'barchart',
    'Slowest packages across all functions': 'table',
    'Init duration over time (p50, p95, p99)': 'timeseries',
    'Cold starts per function': 'timeseries',
    'Module load flame graph': 'flamegraph',
    'Start kinds over time': 'timeseries',
    'Init cost over time': 'timeseries',
    'Init cost by function': 'table',
    'Init cost by package': 'table',
    'Deployments': 'table',
    'Init p50 by deployment': 'timeseries',
  };
  for (const [title, type] of Object.entries(want)) assert.equal(byTitle[title], type, `panel "${title}"`);
  const fn = d.templating.list.find((v) => v.name === 'function');
  assert.ok(fn.multi && fn.includeAll, 'function is multi-select with All');
  const project = d.templating.list.find((v) => v.name === 'project');
  assert.ok(project && !project.multi, 'one project at a time');
});

// ---- the provisioned alert rules (grafana/provisioning/alerting) ------------------------------

export const ALERTING_DIR = join(G, 'provisioning', 'alerting');
export function loadAlertRules() {
  const out = [];
  for (const f of readdirSync(ALERTING_DIR).filter((n) => /\.ya?ml$/.test(n))) {
    const doc = parseYaml(readFileSync(join(ALERTING_DIR, f), 'utf8'));
    for (const g of doc.groups || []) for (const r of g.rules || []) out.push({ file: f, doc, group: g, rule: r });
  }
  return out;
}

test('static: alert rules are Grafana 10 file provisioning, one query on the datasource, reduce then threshold', () => {
  const rules = loadAlertRules();
  assert.equal(rules.length, 4, 'init p95, cold start rate, regression, init cost');
  const uids = new Set();
  for (const { file, doc, group, rule } of rules) {
    const at = `${file}: ${rule.uid}`;
    assert.equal(doc.apiVersion, 1, file);
    assert.equal(group.orgId, 1, at);
    assert.equal(group.folder, 'Cold Start Analyzer', `${at}: the dashboards' folder`);
    assert.match(String(group.interval), /^\d+[smh]$/, at);
    assert.match(rule.uid, /^[a-zA-Z0-9_-]{1,40}$/, `${at}: Grafana's uid rule`);
    assert.ok(!uids.has(rule.uid), `${at}: uid repeated`);
    uids.add(rule.uid);
    assert.ok(rule.title && rule.title.length <= 190, at);
    const [a, b, c, ...rest] = rule.data;
    assert.equal(rest.length, 0, at);
    assert.equal(a.datasourceUid, DS_UID, `${at}: queries the provisioned datasource`);
    assert.equal(a.model.format, 'table', `${at}: a table: one series per row, string columns as labels`);
    assert.ok(a.relativeTimeRange.from > 0 && a.relativeTimeRange.to === 0, at);
    for (const m of macrosIn(a.model.rawSql)) assert.ok(KNOWN_MACROS.has(m), `${at}: unknown macro ${m}`);
    assert.deepEqual([b.datasourceUid, b.model.type, b.model.expression], ['__expr__', 'reduce', 'A'], at);
    assert.deepEqual([c.datasourceUid, c.model.type, c.model.expression], ['__expr__', 'threshold', 'B'], at);
    assert.equal(rule.condition, 'C', at);
    for (const d of rule.data) assert.equal(d.model.refId, d.refId, at);
    assert.equal(c.model.conditions[0].evaluator.type, 'gt', `${at}: "above N"`);
    assert.equal(rule.noDataState, 'OK', `${at}: no data is not an alert (as coldstartd's evaluator)`);
    assert.match(rule.annotations.summary, /\{\{ \$labels\.function \}\}/, at);
  }
});

test('static: alert rules have the thresholds and windows docs/alerts.md states', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'alerts.md'), 'utf8');
  for (const { rule } of loadAlertRules()) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${rule.uid}\``));
    assert.ok(row, `docs/alerts.md has no row for ${rule.uid}`);
    const cells = row.split('|').map((x) => x.trim());
    const threshold = rule.data[2].model.conditions[0].evaluator.params[0];
    const windowMin = rule.data[0].relativeTimeRange.from / 60;
    assert.equal(Number(cells[3]), threshold, `${rule.uid}: threshold in docs/alerts.md`);
    assert.equal(Number(cells[4]), windowMin, `${rule.uid}: window (minutes) in docs/alerts.md`);
    assert.equal(cells[2], `\`${rule.labels.metric}\``, `${rule.uid}: metric`);
  }
});

// The numbers of the API's comparison, from the C headers that define them.
function cDefine(file, name) {
  const m = new RegExp(`^#define ${name} +([0-9.]+)`, 'm').exec(readFileSync(join(ROOT, 'backend', 'src', file), 'utf8'));
  assert.ok(m, `${name} in backend/src/${file}`);
  return Number(m[1]);
}

// erfc(x) to 1.2e-7 (Numerical Recipes' erfcc, Chebyshev): enough to tell which p a z gives.
function erfc(x) {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

test("static: the regression rule applies the API's minimum count, samples, significance level and minimum effect", () => {
  const rule = loadAlertRules().map(({ rule }) => rule).find((r) => r.uid === 'csa-init-regression');
  const sql = rule.data[0].model.rawSql;
  const min = cDefine('compare.h', 'CSA_COMPARE_MIN_SAMPLES');
  assert.match(sql, new RegExp(`u\\.nb >= ${min} AND u\\.nh >= ${min}\\b`), `at least ${min} cold starts on each side`);
  assert.match(sql, new RegExp(`LIMIT ${cDefine('deployments.h', 'CSA_DEPLOYMENT_MAX_SAMPLES')}\\b`), 'the newest N of each side');
  const z = Number(/\/ sqrt\(u\.variance\) > ([0-9.]+)/.exec(sql)?.[1]);
  const alpha = cDefine('compare.h', 'CSA_COMPARE_ALPHA');
  assert.ok(Math.abs(erfc(z / Math.SQRT2) - alpha) < 1e-6, `|z| > ${z} is two-sided p < ${alpha}`);
  assert.match(sql, new RegExp(`u\\.head_p50 - u\\.base_p50 >= ${cDefine('compare.h', 'CSA_COMPARE_MIN_ABS_MS')} AND`));
  assert.match(sql, new RegExp(`>= ${cDefine('compare.h', 'CSA_COMPARE_MIN_RELATIVE')} \\* u\\.base_p50`));
});
