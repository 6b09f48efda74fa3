// coldstarts.js: the function view's module tree section. By default the icicle graph of the
// window's typical cold start (GET .../cold-starts/typical: the on-demand one nearest the median
// init); a labelled <select> picks any other cold start of the window (GET .../cold-starts, newest
// first, keyset-paged: "Older cold starts" loads the next page), whose tree is fetched
// (GET .../cold-starts/tree?invocation_id=) and drawn in its place. The choice is kept in the hash
// route (#/functions/<id>?cold_start=<invocation_id>, beside the window) by the view's onChoose, so
// a reload or a shared link shows the same cold start, even one outside the list's first page.
// Against a coldstartd without these reads (404), the detail's newest tree is drawn as before.
import { ApiError, get } from './api.js';
import { announce, h, mount } from './dom.js';
import { ago, count, ms, when } from './format.js';
import { flameGraph } from './flame.js';

const PAGE = 50;
const baseOf = (id) => `/api/v1/functions/${encodeURIComponent(id)}/cold-starts`;

/** The list's query string: the window, a page of PAGE, after cursor if given. */
function pageQuery(windowQuery, cursor) {
  const q = new URLSearchParams(windowQuery);
  q.set('limit', String(PAGE));
  if (cursor) q.set('cursor', cursor);
  return q;
}

const treeOf = (id, invocation) => `${baseOf(id)}/tree?invocation_id=${encodeURIComponent(invocation)}`;

/**
 * Starts the section's first requests for the window of windowQuery (from, to: the detail's), so
 * that they run beside the detail's: {typical, page} promises, and {chosen} the tree of the cold
 * start of invocation id `chosen` when one was in the route. A rejection is handled here too, so
 * that a failed detail (whose view never shows the section) leaves no unhandled rejection.
 */
export function fetchColdStarts(id, windowQuery, signal, chosen = '') {
  const requests = {
    windowQuery,
    chosenId: chosen,
    typical: get(`${baseOf(id)}/typical?${windowQuery}`, { signal }),
    page: get(`${baseOf(id)}?${pageQuery(windowQuery)}`, { signal }),
    chosen: chosen ? get(treeOf(id, chosen), { signal }) : null,
  };
  for (const r of [requests.typical, requests.page, requests.chosen]) r?.catch(() => {});
  return requests;
}

/** onChoose(invocationId) is told each choice ('' for the typical one), to keep it in the route. */
export function coldStartSection(id, fn, prefetched, { signal, keyRefused, onChoose = () => {} }) {
  const base = baseOf(id);
  const windowQuery = prefetched.windowQuery;
  const typicalOption = h('option', { value: '' }, 'Typical cold start');
  const picker = h('select', { id: 'cold-start', 'aria-describedby': 'cold-start-note', disabled: true }, typicalOption);
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Older cold starts');
  const note = h('p', { class: 'muted', id: 'cold-start-note', 'aria-live': 'polite' });
  const graph = h(
    'div',
    { class: 'tree-graph', 'aria-busy': 'true' },
    h('p', { class: 'loading', role: 'status' }, prefetched.chosenId ? 'Loading the cold start…' : 'Loading the typical cold start…'),
  );
  const controls = h('div', { class: 'toolbar', hidden: true }, h('label', { for: 'cold-start' }, 'Cold start'), picker, more);
  const element = h('div', {}, controls, note, graph);
  const trees = new Map(); // invocation_id -> {cold_start} as fetched; '' -> the typical answer
  let cursor = null;
  let shown = 0; // generation: a newer choice makes older answers stale
  let wanted = prefetched.chosenId; // the choice to restore should the first requests be retried

  async function start(requests = fetchColdStarts(id, windowQuery, signal, wanted)) {
    const mine = ++shown;
    picker.replaceChildren(typicalOption);
    cursor = null;
    let typical;
    try {
      [typical] = await Promise.all([requests.typical, requests.page.then(addPage)]);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e instanceof ApiError && e.status === 401) return keyRefused();
      if (e instanceof ApiError && e.status === 404) return newestOnly(); // an older coldstartd
      return failed(e, () => start());
    }
    trees.set('', typical);
    if (typical.cold_start) typicalOption.textContent = `Typical: ${optionText(typical.cold_start)}`;
    let chosen = null; // the route's cold start, when it named one of the function's
    let unknown = '';
    if (requests.chosen) {
      try {
        chosen = await requests.chosen;
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (e instanceof ApiError && e.status === 401) return keyRefused();
        if (!(e instanceof ApiError && (e.status === 404 || e.status === 400))) return failed(e, () => start());
        unknown = `The link’s cold start ${requests.chosenId} is not one of this function’s. `;
        wanted = '';
        onChoose('');
      }
    }
    if (chosen) {
      const c = chosen.cold_start;
      trees.set(c.invocation_id, chosen);
      // outside the list's first page (older, or another window): listed first after the typical one
      if (![...picker.options].some((o) => o.value === c.invocation_id))
        typicalOption.after(h('option', { value: c.invocation_id }, optionText(c)));
      picker.value = c.invocation_id;
    }
    controls.hidden = picker.options.length < 2;
    picker.disabled = false; // only now: a choice made earlier would be overwritten
    if (mine !== shown) return;
    if (chosen) draw(chosen.cold_start, chosenNote(chosen.cold_start));
    else draw(typical.cold_start, unknown + typicalNote(typical));
  }

  function addPage(page) {
    const listed = new Set([...picker.options].map((o) => o.value));
    for (const c of page.cold_starts)
      if (!listed.has(c.invocation_id)) picker.append(h('option', { value: c.invocation_id }, optionText(c)));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    return page;
  }

  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const page = addPage(await get(`${base}?${pageQuery(windowQuery, cursor)}`, { signal }));
      announce(`${page.cold_starts.length} older cold starts added to the list`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e instanceof ApiError && e.status === 401) return keyRefused();
      announce(`Older cold starts could not be loaded: ${e.message}`);
    } finally {
      more.disabled = false;
    }
  });

  picker.addEventListener('change', async () => {
    const mine = ++shown;
    const invocation = picker.value;
    wanted = invocation;
    onChoose(invocation);
    graph.setAttribute('aria-busy', 'true');
    let answer = trees.get(invocation);
    if (!answer) {
      try {
        answer = await get(treeOf(id, invocation), { signal });
        trees.set(invocation, answer);
      } catch (e) {
        if (e.name === 'AbortError' || mine !== shown) return;
        if (e instanceof ApiError && e.status === 401) return keyRefused();
        return failed(e, () => picker.dispatchEvent(new Event('change')));
      }
    }
    if (mine !== shown) return;
    if (invocation === '') draw(answer.cold_start, typicalNote(answer));
    else draw(answer.cold_start, chosenNote(answer.cold_start));
  });

  start(prefetched);
  return element;

  /** Draws one cold start's tree (or says why there is none) under its note. */
  function draw(coldStart, text) {
    graph.setAttribute('aria-busy', 'false');
    note.textContent = text;
    const drawn = coldStart?.module_tree
      ? flameGraph(coldStart.module_tree, { label: `Module tree of ${fn.function_name}, cold start ${coldStart.invocation_id}` })
      : null;
    if (!drawn) {
      mount(graph, h('p', { class: 'empty-note' }, emptyText(coldStart)));
      return;
    }
    const r = drawn.root;
    mount(
      graph,
      h(
        'p',
        { class: 'muted tree-summary' },
        `${ms(r.total)} of module loading${r.modules ? `, ${count(r.modules)} modules` : ''}${r.truncated ? '; the SDK folded the smallest packages into “(other)”' : ''}.`,
      ),
      drawn.element,
    );
  }

  function emptyText(coldStart) {
    if (coldStart) return 'This cold start carries no module tree: records from other clients (curl, older SDKs) send module_timings only.';
    if (!fn.cold_starts) return 'The module tree comes with a cold start; there is none in this window.';
    return 'No cold start in this window carries a module tree: the SDK sends one with each cold start; records from other clients (curl, older SDKs) carry module_timings only.';
  }

  function typicalNote(t) {
    if (!t.cold_start)
      return t.on_demand_cold_starts
        ? `None of the ${count(t.on_demand_cold_starts)} on-demand cold starts in the window has a module tree. Pick another cold start above.`
        : '';
    return `The typical cold start of the window: init ${ms(t.cold_start.init_duration_ms)}, the nearest to the median of ${ms(t.median_init_duration_ms)} over ${count(t.on_demand_cold_starts)} on-demand cold starts; ${identity(t.cold_start)}.`;
  }

  function chosenNote(c) {
    return `Cold start ${c.invocation_id}: init ${ms(c.init_duration_ms)}, ${c.start_kind}; ${identity(c)}.`;
  }

  function identity(c) {
    return [
      `at ${when(c.timestamp)} (${ago(c.timestamp)})`,
      c.function_version ? `version ${c.function_version}` : null,
      c.code_id ? `code ${c.code_id.slice(0, 8)}` : null,
    ]
      .filter(Boolean)
      .join(', ');
  }

  /** An older coldstartd: the detail's newest tree, no picker. */
  function newestOnly() {
    draw(
      fn.module_tree ? { module_tree: fn.module_tree, invocation_id: 'newest' } : null,
      fn.module_tree ? 'The newest cold start’s tree in the window.' : '',
    );
  }

  function failed(e, retry) {
    graph.setAttribute('aria-busy', 'false');
    note.textContent = '';
    mount(
      graph,
      h(
        'p',
        { class: 'empty-note' },
        `The cold start could not be loaded: ${e.message} `,
        h('button', { type: 'button', class: 'link', onclick: retry }, 'Retry'),
      ),
    );
  }
}

/** The deployment a cold start ran: its code_id (short), else Lambda's version. */
function deployment(c) {
  return c.code_id ? `code ${c.code_id.slice(0, 8)}` : c.function_version ? `version ${c.function_version}` : null;
}

/** "Jan 2, 10:29:41 · 2,850 ms · cold · code 1ff0c373", "… · no module tree". */
function optionText(c) {
  const t = new Date(c.timestamp);
  const time = Number.isFinite(t.getTime())
    ? t.toLocaleString('en-US', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
    : c.timestamp;
  return [time, ms(c.init_duration_ms), c.start_kind, deployment(c), c.has_module_tree ? null : 'no module tree']
    .filter(Boolean)
    .join(' · ');
}
