// deployments.js: the function's deployments (GET /api/v1/functions/{id}/deployments) and the latest
// one against the one before (GET .../compare). Loaded beside the detail: a failure here leaves the
// rest of the view as it is and says what happened in this section only.
import { ApiError, get } from './api.js';
import { h, mount } from './dom.js';
import { ago, count, ms } from './format.js';
import { sortableTable } from './table.js';

const usd = (v) => (v === null || v === undefined ? '–' : `$${v < 0.01 && v > 0 ? v.toFixed(6) : v.toFixed(2)}`);
const shortId = (d) => (d.code_id ? d.code_id.slice(0, 12) : d.deployment);

export function deploymentsSection(id, { signal, keyRefused }) {
  const body = h('div', {}, h('p', { class: 'loading', role: 'status' }, 'Loading the deployments…'));
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'deployments-title' },
    h('h2', { id: 'deployments-title' }, 'Deployments'),
    body,
  );
  load();
  return section;

  async function load() {
    let list;
    try {
      list = await get(`/api/v1/functions/${encodeURIComponent(id)}/deployments`, { signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e instanceof ApiError && e.status === 401) return keyRefused();
      mount(
        body,
        h(
          'p',
          { class: 'empty-note' },
          e instanceof ApiError && e.status === 404
            ? 'This server does not list deployments (an older coldstartd).'
            : `The deployments could not be loaded: ${e.message}`,
        ),
      );
      return;
    }
    const deployments = list.deployments || [];
    if (!deployments.length) {
      mount(
        body,
        h(
          'p',
          { class: 'empty-note' },
          'No deployments known: the SDK sends a code_id (its deployment identity) with every record since version 0.2; records from older SDKs and other clients carry none.',
        ),
      );
      return;
    }
    const table = sortableTable({
      caption: 'Deployments, newest first',
      initial: { key: 'first', dir: -1 },
      columns: [
        { key: 'id', label: 'Deployment', value: (d) => d.deployment, cell: (d) => h('code', { title: d.deployment }, shortId(d)) },
        { key: 'version', label: 'Version', value: (d) => d.function_version, cell: (d) => d.function_version || '–' },
        {
          key: 'first',
          label: 'First seen',
          numeric: true,
          value: (d) => d.first_seen_at,
          cell: (d) => h('time', { datetime: d.first_seen_at, title: d.first_seen_at }, ago(d.first_seen_at)),
        },
        {
          key: 'cold',
          label: 'Cold starts',
          numeric: true,
          value: (d) => d.on_demand_cold_starts,
          cell: (d) => count(d.on_demand_cold_starts),
        },
        { key: 'p50', label: 'Init p50', numeric: true, value: (d) => d.init_p50_ms, cell: (d) => ms(d.init_p50_ms) },
        { key: 'p95', label: 'Init p95', numeric: true, value: (d) => d.init_p95_ms, cell: (d) => ms(d.init_p95_ms) },
        { key: 'cost', label: 'Init cost', numeric: true, value: (d) => d.init_cost_usd, cell: (d) => usd(d.init_cost_usd) },
      ],
    });
    table.setRows(deployments);
    const comparison = h('div', { class: 'comparison' });
    mount(
      body,
      comparison,
      table.element,
      h(
        'p',
        { class: 'help' },
        `Init cost: on-demand cold starts' init time × memory × AWS's price per GB-second; ${list.init_cost_counts || ''}.`,
      ),
    );
    if (deployments.length < 2) {
      mount(comparison, h('p', { class: 'empty-note' }, 'One deployment so far: the next one will be compared with it here.'));
      return;
    }
    try {
      const c = await get(`/api/v1/functions/${encodeURIComponent(id)}/compare`, { signal });
      mount(comparison, compareView(c));
    } catch (e) {
      if (e.name === 'AbortError') return;
      mount(comparison, h('p', { class: 'empty-note' }, `The comparison could not be loaded: ${e.message}`));
    }
  }
}

function quantile(q) {
  if (!q || q.value === null || q.value === undefined) return '–';
  const [low, high] = q.interval || [];
  return low === null || low === undefined ? ms(q.value) : `${ms(q.value)} (${ms(low)}–${ms(high)})`;
}

const VERDICTS = {
  regression: ['bad', 'Regression: the latest deployment starts slower'],
  improvement: ['good', 'Improvement: the latest deployment starts faster'],
  'no change': ['same', 'No significant change in init time'],
  'not enough data': ['same', 'Not enough cold starts yet to compare (at least 20 on each side)'],
};

function compareView(c) {
  const [kind, text] = VERDICTS[c.verdict] || ['same', c.verdict];
  const t = c.test || {};
  const change =
    t.median_change_ms === null || t.median_change_ms === undefined
      ? ''
      : ` Median change ${t.median_change_ms > 0 ? '+' : ''}${ms(t.median_change_ms)}${t.median_change_percent !== null && t.median_change_percent !== undefined ? ` (${t.median_change_percent > 0 ? '+' : ''}${t.median_change_percent} %)` : ''}${t.p_value !== null && t.p_value !== undefined ? `, p = ${t.p_value < 0.0001 ? t.p_value.toExponential(1) : t.p_value.toFixed(4)}` : ''}.`;
  const packages = (c.packages || []).filter((p) => p.change_ms !== 0).slice(0, 5);
  return h(
    'div',
    { class: `verdict ${kind}` },
    h('h3', {}, `Latest deployment vs the one before: ${text}`),
    h(
      'p',
      {},
      `Init p50 ${quantile(c.base?.init_p50_ms)} → ${quantile(c.head?.init_p50_ms)}, p95 ${quantile(c.base?.init_p95_ms)} → ${quantile(c.head?.init_p95_ms)} (95 % intervals), over ${count(c.base?.cold_starts)} and ${count(c.head?.cold_starts)} cold starts.${change}`,
    ),
    packages.length
      ? h(
          'ul',
          { class: 'changes' },
          packages.map((p) => h('li', {}, h('code', {}, p.summary))),
        )
      : null,
  );
}
