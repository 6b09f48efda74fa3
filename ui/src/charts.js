// charts.js: the function's timeline (GET /api/v1/functions/{id} "timeline") as two uPlot charts,
// each with the same figures as a table for screen readers and keyboard users.
import uPlot from 'uplot';
import { h } from './dom.js';
import { count, ms } from './format.js';

const COLOURS = {
  p50: '#1f6f8b',
  p95: '#c26a00',
  p99: '#b3261e',
  warm: '#9bb8c7',
  cold: '#1f6f8b',
  proactive: '#c26a00',
  provisioned: '#6a4c93',
};

/** A chart that follows its container's width; destroyed when signal aborts. */
function responsive(container, make, signal) {
  let chart = null;
  const width = () => Math.max(280, Math.floor(container.clientWidth || 600));
  const draw = () => {
    chart?.destroy();
    chart = make(width());
    container.replaceChildren(chart.root);
  };
  // drawn once attached (its width is known then)
  requestAnimationFrame(draw);
  const observer = new ResizeObserver(() => {
    if (chart && Math.abs(chart.width - width()) > 4) chart.setSize({ width: width(), height: chart.height });
  });
  observer.observe(container);
  signal.addEventListener('abort', () => {
    observer.disconnect();
    chart?.destroy();
  });
}

function figuresTable(caption, headers, rows) {
  return h(
    'details',
    { class: 'figures' },
    h('summary', {}, 'Show the figures as a table'),
    h(
      'div',
      { class: 'table-scroll', role: 'region', 'aria-label': caption, tabindex: '0' },
      h(
        'table',
        {},
        h('caption', { class: 'visually-hidden' }, caption),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            headers.map((x, i) => h('th', { scope: 'col', class: i ? 'num' : null }, x)),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((r) =>
            h(
              'tr',
              {},
              r.map((c, i) => (i ? h('td', { class: 'num' }, c) : h('th', { scope: 'row' }, c))),
            ),
          ),
        ),
      ),
    ),
  );
}

const stamp = (b) => Date.parse(b.start) / 1000;

/** The x axis spans the whole window (plus half a bucket each side for the bars), whatever the data. */
function xScale(window, timeline) {
  const half = (timeline.bucket_seconds || 3600) / 2;
  const from = Date.parse(window.from) / 1000 - half;
  const to = Date.parse(window.to) / 1000 + half;
  return { time: true, range: () => [from, to] };
}

export function initChart(timeline, { signal, bucketLabel, window }) {
  const buckets = timeline.buckets.filter((b) => b.cold_starts > 0);
  const x = buckets.map(stamp);
  const data = [x, buckets.map((b) => b.init_p50_ms), buckets.map((b) => b.init_p95_ms), buckets.map((b) => b.init_p99_ms)];
  const box = h('div', {
    class: 'chart',
    role: 'img',
    'aria-label': `Init duration p50, p95 and p99 per ${bucketLabel}, ${buckets.length} ${bucketLabel}s with cold starts`,
  });
  const line = (label, stroke) => ({ label, stroke, width: 2, points: { show: true, size: 5, fill: stroke }, value: (u, v) => ms(v) });
  responsive(
    box,
    (width) =>
      new uPlot(
        {
          width,
          height: 240,
          series: [{ label: 'time' }, line('p50', COLOURS.p50), line('p95', COLOURS.p95), line('p99', COLOURS.p99)],
          axes: [{}, { label: 'init (ms)', size: 60, values: (u, vals) => vals.map((v) => `${v}`) }],
          scales: { x: xScale(window, timeline), y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
        },
        data,
      ),
    signal,
  );
  const table = figuresTable(
    'Init duration per time bucket',
    ['from', 'cold starts', 'p50', 'p95', 'p99'],
    buckets.map((b) => [new Date(b.start).toLocaleString(), count(b.cold_starts), ms(b.init_p50_ms), ms(b.init_p95_ms), ms(b.init_p99_ms)]),
  );
  return h('div', {}, box, table);
}

export function startsChart(timeline, { signal, bucketLabel, window }) {
  const buckets = timeline.buckets;
  const warm = buckets.map((b) => Math.max(0, b.invocations - b.cold_starts - b.proactive_starts - b.provisioned_starts));
  const kinds = [
    ['warm', warm],
    ['cold', buckets.map((b) => b.cold_starts)],
    ['proactive', buckets.map((b) => b.proactive_starts)],
    ['provisioned', buckets.map((b) => b.provisioned_starts)],
  ];
  // stacked: each series is drawn as the sum of itself and the kinds after it, largest first, so
  // every bar shows its own band; the legend shows each kind's own count
  const stacked = kinds.map((_, i) => buckets.map((__, j) => kinds.slice(i).reduce((a, k) => a + k[1][j], 0)));
  const raw = kinds.map((k) => k[1]);
  const bars = uPlot.paths.bars({ size: [0.7, 40] });
  const box = h('div', {
    class: 'chart',
    role: 'img',
    'aria-label': `Invocations per ${bucketLabel} by start kind: warm, cold, proactive, provisioned`,
  });
  responsive(
    box,
    (width) =>
      new uPlot(
        {
          width,
          height: 200,
          series: [
            { label: 'time' },
            ...kinds.map(([label], i) => ({
              label,
              stroke: COLOURS[label],
              fill: COLOURS[label],
              width: 0,
              paths: bars,
              points: { show: false },
              value: (u, v, si, idx) => (idx === null || idx === undefined ? '–' : count(raw[i][idx])),
            })),
          ],
          axes: [{}, { label: 'invocations', size: 60 }],
          scales: { x: xScale(window, timeline), y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
          cursor: { drag: { x: false, y: false } },
        },
        [buckets.map(stamp), ...stacked],
      ),
    signal,
  );
  const table = figuresTable(
    'Invocations per time bucket by start kind',
    ['from', 'invocations', 'warm', 'cold', 'proactive', 'provisioned'],
    buckets.map((b, j) => [
      new Date(b.start).toLocaleString(),
      count(b.invocations),
      count(warm[j]),
      count(b.cold_starts),
      count(b.proactive_starts),
      count(b.provisioned_starts),
    ]),
  );
  return h('div', {}, box, table);
}
