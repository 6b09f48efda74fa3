// function.js: one function over a window: summary, init over time and start kinds (timeline),
// the module breakdown (self time per package), the icicle graph of the typical cold start's module
// tree or of a chosen one (coldstarts.js), and the recommendations with their savings. The route's
// query keeps the window (?window=24h|7d|30d) and the chosen cold start (&cold_start=<invocation_id>);
// another window starts from its typical cold start.
import { ApiError, get } from './api.js';
import { h, mount } from './dom.js';
import { ago, count, ms, pct, usd } from './format.js';
import { errorPanel, howToSend, loading } from './states.js';
import { sortableTable } from './table.js';
import { coldStartSection, fetchColdStarts } from './coldstarts.js';
import { initChart, startsChart } from './charts.js';
import { deploymentsSection } from './deployments.js';

const WINDOWS = [
  ['24h', 'Last 24 hours', 24],
  ['7d', 'Last 7 days', 7 * 24],
  ['30d', 'Last 30 days', 30 * 24],
];

function bucketName(seconds) {
  if (seconds === 3600) return 'hour';
  if (seconds % 86400 === 0) return seconds === 86400 ? 'day' : `${seconds / 86400}-day period`;
  return `${seconds / 3600}-hour period`;
}

export function functionView(main, id, { signal, keyRefused, query }) {
  const windowKey = WINDOWS.some((w) => w[0] === query.get('window')) ? query.get('window') : '7d';
  const [, windowLabel, hours] = WINDOWS.find((w) => w[0] === windowKey);
  document.title = 'Function · Cold Start Analyzer';
  mount(main, h('p', {}, h('a', { href: '#/' }, '← Functions')), loading('the function'));

  const load = async () => {
    const to = new Date();
    const from = new Date(to.getTime() - hours * 3600 * 1000);
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
    // beside the detail: the icicle graph waits for one round trip only
    const coldStarts = fetchColdStarts(id, q, signal, query.get('cold_start') || '');
    try {
      const fn = await get(`/api/v1/functions/${encodeURIComponent(id)}?${q}`, { signal });
      render(fn, coldStarts);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e instanceof ApiError && e.status === 401) return keyRefused();
      mount(main, h('p', {}, h('a', { href: '#/' }, '← Functions')), errorPanel(e, { what: 'the function', retry: load }));
    }
  };

  /** Keeps the chosen cold start in the route ('' for the typical one: none), beside the window;
   * replaceState, so no hashchange: the view stays as it is, a reload or a shared link restores it. */
  function onChoose(invocationId) {
    if (signal.aborted) return; // another view is on screen: its route stays
    if (invocationId) query.set('cold_start', invocationId);
    else query.delete('cold_start');
    const rest = query.toString();
    history.replaceState(history.state, '', `#/functions/${id}${rest ? `?${rest}` : ''}`);
  }

  function render(fn, coldStarts) {
    document.title = `${fn.function_name} · Cold Start Analyzer`;
    const select = h(
      'select',
      { id: 'window', onchange: () => (location.hash = `#/functions/${id}?window=${select.value}`) },
      WINDOWS.map(([k, label]) => h('option', { value: k, selected: k === windowKey }, label)),
    );
    const meta = [
      fn.runtime,
      fn.region,
      fn.memory_allocated_mb ? `${fn.memory_allocated_mb} MB` : null,
      `last seen ${ago(fn.last_seen_at)}`,
    ]
      .filter(Boolean)
      .join(' · ');
    const init = fn.init_duration_ms || {};
    const tiles = h(
      'dl',
      { class: 'tiles' },
      tile('Invocations', count(fn.invocations)),
      tile('Cold starts', `${count(fn.cold_starts)}`, fn.invocations ? `${pct(fn.cold_starts / fn.invocations)} of invocations` : null),
      tile('Init p50', ms(init.p50)),
      tile('Init p95', ms(init.p95)),
      tile('Init p99', ms(init.p99)),
      tile('Module loading', pct(fn.module_load_share, 0), 'of the average init'),
      typeof fn.init_cost_usd === 'number'
        ? tile(
            'Init cost',
            usd(fn.init_cost_usd),
            typeof fn.init_cost_usd_per_month === 'number' ? `≈ ${usd(fn.init_cost_usd_per_month)} a month` : 'on-demand inits',
          )
        : null,
      fn.proactive_starts || fn.provisioned_starts
        ? tile('Other inits', `${count(fn.proactive_starts)} proactive`, `${count(fn.provisioned_starts)} provisioned`)
        : null,
    );
    const bucketLabel = bucketName(fn.timeline?.bucket_seconds || 3600);
    const noColdStarts = !fn.cold_starts;

    const sections = [
      h('p', {}, h('a', { href: '#/' }, '← Functions')),
      h(
        'div',
        { class: 'title-row' },
        h('div', {}, h('h1', {}, fn.function_name), h('p', { class: 'muted' }, meta)),
        h('div', { class: 'toolbar' }, h('label', { for: 'window' }, 'Window'), select),
      ),
      tiles,
    ];
    if (!fn.invocations && noColdStarts) {
      sections.push(
        h(
          'section',
          { class: 'card empty', 'aria-labelledby': 'empty-title' },
          h('h2', { id: 'empty-title' }, `No invocations in the ${windowLabel.toLowerCase()}`),
          h('p', {}, 'Pick a longer window, or invoke the function: each invocation the SDK sees is sent here.'),
          howToSend(),
        ),
      );
    } else {
      sections.push(
        section(
          'init-title',
          'Init duration over time',
          noColdStarts
            ? emptyNote(`No cold starts in the ${windowLabel.toLowerCase()}: a new deployment or a scale-out makes some.`)
            : initChart(fn.timeline, { signal, bucketLabel, window: fn.window }),
        ),
        section('starts-title', 'Starts by kind', startsChart(fn.timeline, { signal, bucketLabel, window: fn.window })),
      );
    }
    sections.push(deploymentsSection(id, { signal, keyRefused }));
    sections.push(section('recs-title', 'Recommendations', recommendations(fn)));
    sections.push(section('tree-title', 'Module tree', coldStartSection(id, fn, coldStarts, { signal, keyRefused, onChoose })));
    sections.push(section('modules-title', 'Module breakdown', breakdown(fn)));
    mount(main, ...sections);
  }

  load();
}

function tile(label, value, note) {
  return h(
    'div',
    { class: 'tile' },
    h('dt', {}, label),
    h('dd', {}, h('span', { class: 'value' }, value), note ? h('span', { class: 'note' }, note) : null),
  );
}

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

function emptyNote(text) {
  return h('p', { class: 'empty-note' }, text);
}

function recommendations(fn) {
  const recs = fn.recommendations || [];
  if (!recs.length) {
    return emptyNote(
      fn.cold_starts
        ? 'No rule of rules/recommendations.json matches this function’s modules: nothing known to fix. The breakdown below shows where the time goes.'
        : 'Recommendations come from the modules of cold starts; there are none in this window.',
    );
  }
  return h(
    'ol',
    { class: 'recs' },
    recs.map((r) =>
      h(
        'li',
        { class: 'rec' },
        h(
          'div',
          { class: 'rec-head' },
          h('code', { class: 'module' }, r.module),
          h('span', { class: 'saving' }, `saves ≈ ${ms(r.potential_savings_ms)} per cold start`),
        ),
        h('p', { class: 'issue' }, r.issue),
        h('p', {}, h('strong', {}, 'Fix: '), r.suggestion),
        r.evidence ? h('p', { class: 'muted' }, r.evidence) : null,
      ),
    ),
  );
}

function breakdown(fn) {
  const entries = Object.entries(fn.module_breakdown || {}).map(([name, m]) => ({ name, ...m }));
  if (!entries.length) return emptyNote('No module timings in this window.');
  const max = Math.max(...entries.map((m) => m.p95_ms || 0), 1);
  const table = sortableTable({
    caption: 'Self time per module over the window’s cold starts',
    initial: { key: 'avg', dir: -1 },
    columns: [
      { key: 'name', label: 'Module', value: (m) => m.name, cell: (m) => h('code', {}, m.name) },
      { key: 'version', label: 'Version', value: (m) => m.version, cell: (m) => m.version || '–' },
      { key: 'p50', label: 'Self p50', numeric: true, value: (m) => m.p50_ms, cell: (m) => ms(m.p50_ms) },
      { key: 'p95', label: 'Self p95', numeric: true, value: (m) => m.p95_ms, cell: (m) => ms(m.p95_ms) },
      { key: 'avg', label: 'Average', numeric: true, value: (m) => m.avg_load_time_ms, cell: (m) => ms(m.avg_load_time_ms) },
      { key: 'seen', label: 'Seen in', numeric: true, value: (m) => m.seen_in, cell: (m) => pct(m.seen_in, 0) },
      { key: 'bar', label: 'p50 / p95', cell: (m) => bar(m.p50_ms, m.p95_ms, max) },
    ],
  });
  table.setRows(entries);
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'muted' },
      'Self time: the module’s own load time, without what it required. Per module over the cold starts that loaded it.',
    ),
    table.element,
  );
}

function bar(p50, p95, max) {
  const outer = h('span', { class: 'bar', 'aria-hidden': 'true' });
  const b95 = h('span', { class: 'p95' });
  const b50 = h('span', { class: 'p50' });
  b95.style.width = `${Math.min(100, ((p95 || 0) / max) * 100)}%`;
  b50.style.width = `${Math.min(100, ((p50 || 0) / max) * 100)}%`;
  outer.append(b95, b50);
  return outer;
}
