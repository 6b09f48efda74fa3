// table.js: a table whose column headers sort it (buttons, aria-sort), inside a region that scrolls
// sideways on a narrow screen and can be scrolled with the keyboard.
import { h } from './dom.js';

/**
 * columns: [{key, label, value(row) -> sortable value, cell(row) -> node or text, numeric}]
 * Returns {element, setRows(rows)}; the sort survives setRows.
 */
export function sortableTable({ caption, columns, initial, rowKey }) {
  let sort = initial || { key: columns[0].key, dir: 1 };
  let rows = [];
  const body = h('tbody');
  const head = h('tr');
  const table = h('table', {}, h('caption', { class: 'visually-hidden' }, caption), h('thead', {}, head), body);
  const region = h('div', { class: 'table-scroll', role: 'region', 'aria-label': caption, tabindex: '0' }, table);

  function renderHead() {
    head.replaceChildren(
      ...columns.map((c) => {
        const active = sort.key === c.key;
        const th = h('th', { scope: 'col', class: c.numeric ? 'num' : null });
        th.setAttribute('aria-sort', active ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none');
        if (c.value) {
          const button = h(
            'button',
            { type: 'button', class: 'sort', onclick: () => setSort(c) },
            c.label,
            h('span', { 'aria-hidden': 'true', class: 'arrow' }, active ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''),
          );
          th.append(button);
        } else th.append(c.label);
        return th;
      }),
    );
  }

  function setSort(c) {
    if (sort.key === c.key) sort = { key: c.key, dir: -sort.dir };
    else sort = { key: c.key, dir: c.numeric ? -1 : 1 }; // numbers: largest first
    renderHead();
    renderBody();
    head.querySelector(`th:nth-child(${columns.indexOf(c) + 1}) button`)?.focus();
  }

  function renderBody() {
    const col = columns.find((c) => c.key === sort.key);
    const sorted = [...rows];
    if (col?.value) {
      sorted.sort((a, b) => {
        const x = col.value(a);
        const y = col.value(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1; // unknowns last either way
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * sort.dir;
      });
    }
    body.replaceChildren(
      ...sorted.map((r) =>
        h(
          'tr',
          { 'data-key': rowKey ? rowKey(r) : null },
          columns.map((c, i) => h(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : null, class: c.numeric ? 'num' : null }, c.cell(r))),
        ),
      ),
    );
  }

  renderHead();
  return {
    element: region,
    setRows(next) {
      rows = next;
      renderBody();
    },
  };
}
