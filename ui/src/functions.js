// functions.js: the Functions view. The API pages by name (keyset, next_cursor) and filters by name
// prefix; the table sorts the loaded rows by any column.
import { ApiError, get } from './api.js';
import { announce, h, mount } from './dom.js';
import { ago, count, ms, pct, usd } from './format.js';
import { errorPanel, howToSend, loading } from './states.js';
import { sortableTable } from './table.js';

const PAGE = 50;

export function functionsView(main, { signal, keyRefused }) {
  document.title = 'Functions · Cold Start Analyzer';
  let prefix = '';
  let cursor = null;
  let rows = [];
  let generation = 0; // a newer filter makes older answers stale

  const filter = h('input', { id: 'name-filter', type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. orders-' });
  const status = h('p', { class: 'muted', id: 'list-status', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
  const body = h('div', { class: 'list-body' });
  const stat = (r) => r.cold_start_stats || {};
  // init cost: a column only when the server reports it (a coldstartd with init cost per function)
  const cost = {
    key: 'cost',
    label: 'Init cost',
    numeric: true,
    value: (r) => stat(r).init_cost_usd,
    cell: (r) => usd(stat(r).init_cost_usd),
  };
  const hasCost = () => rows.some((r) => typeof stat(r).init_cost_usd === 'number');
  const columns = [
    {
      key: 'name',
      label: 'Function',
      value: (r) => r.function_name,
      cell: (r) => h('a', { href: `#/functions/${r.id}` }, r.function_name),
    },
    {
      key: 'inv',
      label: 'Invocations',
      numeric: true,
      value: (r) => stat(r).total_invocations_24h,
      cell: (r) => count(stat(r).total_invocations_24h),
    },
    {
      key: 'cold',
      label: 'Cold starts',
      numeric: true,
      value: (r) => stat(r).cold_starts_24h,
      cell: (r) => count(stat(r).cold_starts_24h),
    },
    {
      key: 'rate',
      label: 'Cold start rate',
      numeric: true,
      value: (r) => stat(r).cold_start_rate,
      cell: (r) => pct(stat(r).cold_start_rate),
    },
    {
      key: 'p50',
      label: 'Init p50',
      numeric: true,
      value: (r) => stat(r).p50_init_duration_ms,
      cell: (r) => ms(stat(r).p50_init_duration_ms),
    },
    {
      key: 'p95',
      label: 'Init p95',
      numeric: true,
      value: (r) => stat(r).p95_init_duration_ms,
      cell: (r) => ms(stat(r).p95_init_duration_ms),
    },
    { key: 'runtime', label: 'Runtime', value: (r) => r.runtime, cell: (r) => r.runtime || '–' },
    {
      key: 'seen',
      label: 'Last seen',
      numeric: true,
      value: (r) => r.last_seen_at,
      cell: (r) => h('time', { datetime: r.last_seen_at, title: r.last_seen_at }, ago(r.last_seen_at)),
    },
  ];
  const makeTable = (withCost) =>
    sortableTable({
      caption: 'Functions, last 24 hours',
      rowKey: (r) => r.id,
      columns: withCost ? [...columns.slice(0, 6), cost, ...columns.slice(6)] : columns,
    });
  let table = makeTable(false);
  let tableHasCost = false;

  async function load({ append }) {
    const mine = ++generation;
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (prefix) q.set('name_prefix', prefix);
    if (append && cursor) q.set('cursor', cursor);
    if (!append) mount(body, loading('functions'));
    more.disabled = true;
    try {
      const page = await get(`/api/v1/functions?${q}`, { signal });
      if (mine !== generation) return;
      rows = append ? rows.concat(page.functions) : page.functions;
      cursor = page.next_cursor;
      render();
      if (append) announce(`${page.functions.length} more functions loaded`);
    } catch (e) {
      if (e.name === 'AbortError' || mine !== generation) return;
      if (e instanceof ApiError && e.status === 401) return keyRefused();
      mount(body, errorPanel(e, { what: 'the functions', retry: () => load({ append }) }));
    } finally {
      more.disabled = false;
    }
  }

  function render() {
    more.hidden = !cursor;
    if (rows.length === 0 && !prefix) {
      status.textContent = '';
      mount(
        body,
        h(
          'div',
          { class: 'card empty' },
          h('h2', {}, 'No data yet'),
          h('p', {}, 'This project has no functions: nothing has sent a record with its key.'),
          howToSend(),
        ),
      );
      return;
    }
    if (rows.length === 0) {
      status.textContent = '';
      mount(
        body,
        h(
          'div',
          { class: 'card empty' },
          h('h2', {}, 'No match'),
          h('p', {}, `No function name starts with “${prefix}”. Names are case-sensitive.`),
        ),
      );
      return;
    }
    status.textContent = `${rows.length} function${rows.length === 1 ? '' : 's'}${cursor ? ' loaded, more on the server' : ''}. Figures cover the last 24 hours; a column header sorts the loaded rows.`;
    if (hasCost() !== tableHasCost) {
      tableHasCost = !tableHasCost;
      table = makeTable(tableHasCost);
    }
    table.setRows(rows);
    mount(body, table.element);
  }

  let timer = null;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      prefix = filter.value.trim();
      cursor = null;
      load({ append: false });
    }, 250);
  });
  more.addEventListener('click', () => load({ append: true }));

  mount(
    main,
    h('h1', {}, 'Functions'),
    h('div', { class: 'toolbar' }, h('label', { for: 'name-filter' }, 'Name starts with'), filter),
    status,
    body,
    more,
  );
  load({ append: false });
}
