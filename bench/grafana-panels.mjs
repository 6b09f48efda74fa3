// bench/grafana-panels.mjs DATABASE_URL PROJECT_ID REPS: runs every panel query of the Cold Start
// Analyzer dashboard (grafana/provisioning/dashboards/cold-start-analyzer.json) as Grafana 10.2
// would send it (macros and variables expanded by tests/grafana/lib/grafana-sql.mjs: the project,
// every function ("All"), the default prices, the panel's interval) over the last 24 hours, 7 days
// and 30 days, REPS times each after one warm-up run, in one psql session per panel and range
// (timed by psql's \timing: the server's work plus the transfer of the answer). Prints a Markdown
// table of p50 and p95 per panel and range, and the panels over the goal (1 s at 30 days).
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderQuery } from '../tests/grafana/lib/grafana-sql.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const [url, project, repsArg] = process.argv.slice(2);
const REPS = Number(repsArg || 10);
// BENCH_PANELS: a regular expression of the panel titles to run (default all); BENCH_TIMEOUT_S: a
// statement timeout per run (default 30, the Grafana role's: a panel slower than that shows an error)
const ONLY = new RegExp(process.env.BENCH_PANELS || '');
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S || 30);
const GOAL_MS = 1000;
if (!url || !project) {
  console.error('usage: node bench/grafana-panels.mjs DATABASE_URL PROJECT_ID [REPS]');
  process.exit(2);
}

const psql = (input) => {
  const r = spawnSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', url], { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
};

const dashboard = JSON.parse(readFileSync(join(ROOT, 'grafana/provisioning/dashboards/cold-start-analyzer.json'), 'utf8'));
const panels = [];
const walk = (list) => list.forEach((p) => (p.type === 'row' ? walk(p.panels || []) : panels.push(p)));
walk(dashboard.panels);

const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
const names = psql(`SELECT function_name FROM functions WHERE project_id = '${project}' ORDER BY 1`).split('\n').filter(Boolean);
const variables = {
  project: { ...vars.project, current: { value: project, text: project }, options: [] },
  function: {
    ...vars.function,
    current: { value: ['$__all'], text: ['All'] },
    options: [{ value: '$__all', text: 'All' }, ...names.map((n) => ({ value: n, text: n }))],
  },
  price_x86_64: { ...vars.price_x86_64, options: [] },
  price_arm64: { ...vars.price_arm64, options: [] },
};

const now = Date.now();
const RANGES = [
  ['24 h', 86400000],
  ['7 days', 7 * 86400000],
  ['30 days', 30 * 86400000],
];
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));

const rows = [];
const over = [];
for (const panel of panels.filter((p) => ONLY.test(p.title))) {
  for (const target of panel.targets || []) {
    const cells = [];
    for (const [label, span] of RANGES) {
      const { sql } = renderQuery(target.rawSql, {
        fromMs: now - span,
        toMs: now,
        variables,
        maxDataPoints: panel.maxDataPoints ?? 1000,
        minInterval: panel.interval,
      });
      // the Grafana role's settings (deploy/grafana-role.sql)
      const script = ['\\o /dev/null', `SET statement_timeout = '${TIMEOUT_S}s';`, 'SET jit = off;', '\\timing on'];
      for (let i = 0; i <= REPS; i++) script.push(`${sql}\n;`);
      const r = spawnSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', url], {
        input: script.join('\n') + '\n',
        encoding: 'utf8',
        maxBuffer: 256 << 20,
      });
      if (r.status !== 0 && /statement timeout/.test(r.stderr)) {
        cells.push(`over ${TIMEOUT_S} s (timeout)`);
        if (label === '30 days') over.push(`${panel.title} (over ${TIMEOUT_S} s)`);
        process.stderr.write(`${panel.title}, ${label}: over ${TIMEOUT_S} s (statement timeout)\n`);
        continue;
      }
      if (r.status !== 0) throw new Error(`${panel.title}: psql: ${r.stderr}`);
      const times = [...r.stdout.matchAll(/^Time: ([0-9.]+) ms/gm)].map((m) => Number(m[1]));
      if (times.length !== REPS + 1) throw new Error(`${panel.title}: ${times.length} timings for ${REPS + 1} runs`);
      const t = times.slice(1).sort((a, b) => a - b); // the first run warms the cache
      cells.push(`${fmt(pct(t, 0.5))} / ${fmt(pct(t, 0.95))}`);
      if (label === '30 days' && pct(t, 0.95) > GOAL_MS) over.push(`${panel.title} (p95 ${fmt(pct(t, 0.95))} ms)`);
      process.stderr.write(`${panel.title}, ${label}: p50 ${fmt(pct(t, 0.5))} ms, p95 ${fmt(pct(t, 0.95))} ms\n`);
    }
    rows.push(`| ${panel.title} | ${cells.join(' | ')} |`);
  }
}
console.log(`| panel | 24 h p50 / p95 (ms) | 7 days p50 / p95 (ms) | 30 days p50 / p95 (ms) |`);
console.log('|---|---|---|---|');
rows.forEach((r) => console.log(r));
console.log();
console.log(
  over.length
    ? `Over the goal (p95 above ${GOAL_MS} ms over 30 days): ${over.join('; ')}.`
    : `Every panel${process.env.BENCH_PANELS ? ' run' : ''} under ${GOAL_MS} ms (p95) over 30 days.`,
);
