// flame.js: an icicle graph (a flame graph growing downwards) of the SDK's module tree, in plain DOM.
// Each box is a package or file: its width is its inclusive load time (itself and what it
// required), the part of it not covered by boxes below is its self time. Hovering or focusing a
// box shows name, version, self and inclusive time; clicking (Enter) zooms into it, and the path
// above it, or Escape, zooms back out. Boxes narrower than a pixel or so are left out.
// Keyboard: the graph is one Tab stop (roving tabindex); arrow keys move to the parent (up), the
// first child (down) and the siblings (left, right).
import { h, mount } from './dom.js';
import { ms, pct } from './format.js';

const ROW = 26; // px per level
const MIN_SHARE = 0.004; // of the zoomed width: narrower boxes are not drawn

/** The tree in one shape, whichever way it was sent: {name, version, self, total, children}. */
export function normalise(tree) {
  const node = (n, depth) => {
    if (!n || typeof n !== 'object' || depth > 32) return null;
    const children = (Array.isArray(n.children) ? n.children : []).map((c) => node(c, depth + 1)).filter(Boolean);
    const kids = children.reduce((a, c) => a + c.total, 0);
    const total = num(n.total_ms ?? n.inclusive ?? n.inclusive_ms ?? n.total) ?? kids + (num(n.self_ms ?? n.self) ?? 0);
    const self = num(n.self_ms ?? n.self ?? n.self_time_ms) ?? Math.max(0, total - kids);
    const out = {
      name: String(n.name ?? n.module ?? '?'),
      version: typeof n.version === 'string' ? n.version : null,
      self,
      total: Math.max(total, kids, self),
      loads: n.loads,
      packages: n.packages,
      children,
    };
    for (const c of children) c.parent = out;
    return out;
  };
  if (Array.isArray(tree)) tree = { children: tree };
  if (!tree || typeof tree !== 'object') return null;
  const children = (Array.isArray(tree.children) ? tree.children : []).map((c) => node(c, 1)).filter(Boolean);
  const kids = children.reduce((a, c) => a + c.total, 0);
  const load = num(tree.load_ms) ?? num(tree.inclusive ?? tree.total_ms) ?? kids;
  if (children.length === 0) return null;
  const root = {
    name: tree.name && tree.name !== 'root' ? String(tree.name) : 'all module loads',
    version: null,
    self: Math.max(0, load - kids),
    total: Math.max(load, kids),
    children,
    root: true,
    modules: tree.modules,
    truncated: tree.truncated,
  };
  for (const c of children) c.parent = root;
  return root;
}

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null;
}

function depthOf(n) {
  return 1 + (n.children.length ? Math.max(...n.children.map(depthOf)) : 0);
}

/** A hue per name (stable), light enough for dark text; own code (./...) in another family. */
function colourClass(name) {
  if (name.startsWith('./') || name.startsWith('/')) return 'own';
  if (name === '(other)') return 'other';
  let x = 0;
  for (const ch of name) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return `c${x % 8}`;
}

export function flameGraph(tree, { label }) {
  const root = normalise(tree);
  if (!root) return null;
  const tip = h('div', { class: 'flame-tip', role: 'tooltip', id: 'flame-tip', hidden: true });
  const path = h('nav', { class: 'flame-path', 'aria-label': 'Zoom path' });
  const canvas = h('div', { class: 'flame-canvas' });
  const hint = h(
    'p',
    { class: 'help' },
    'Width is inclusive load time. Hover or focus a box for its figures; click it (or Enter) to zoom in, Escape to zoom out.',
  );
  const wrap = h('div', { class: 'flame', role: 'group', 'aria-label': label }, hint, path, canvas, tip);
  let focus = root;
  let trail = [root]; // root .. focus
  let boxOf = new Map(); // node -> its box, for the nodes drawn

  // the accessible name starts with the box's visible text (name, version, inclusive time)
  function describe(n) {
    const parts = [
      `${n.name}${n.version ? ` ${n.version}` : ''} ${ms(n.total)} inclusive`,
      `self ${ms(n.self)}`,
      `${pct(n.total / root.total)} of all module loads`,
    ];
    if (n.loads > 1) parts.push(`loaded ${n.loads} times`);
    if (n.packages) parts.push(`${n.packages} packages folded`);
    return parts.join(', ');
  }

  function showTip(n, box) {
    mount(
      tip,
      h('strong', {}, n.name),
      n.version ? h('span', { class: 'ver' }, ` ${n.version}`) : null,
      h('br'),
      `inclusive ${ms(n.total)} · self ${ms(n.self)}`,
      h('br'),
      `${pct(n.total / root.total)} of all module loads`,
      n.packages ? h('br') : null,
      n.packages ? `${n.packages} smaller packages folded together` : null,
    );
    tip.hidden = false;
    const c = wrap.getBoundingClientRect();
    const b = box.getBoundingClientRect();
    const left = Math.min(Math.max(0, b.left - c.left), Math.max(0, c.width - 280));
    tip.style.left = `${left}px`;
    tip.style.top = `${b.top - c.top - 4}px`; // above the box (.flame-tip moves itself up by its height)
  }

  function hideTip() {
    tip.hidden = true;
  }

  function zoom(n, newTrail) {
    focus = n;
    trail = newTrail;
    render();
    canvas.querySelector('.box')?.focus();
  }

  function render() {
    hideTip();
    path.replaceChildren(
      ...trail.map((n, i) =>
        i === trail.length - 1
          ? h('span', { 'aria-current': 'true' }, n.name)
          : h('span', {}, h('button', { type: 'button', class: 'link', onclick: () => zoom(n, trail.slice(0, i + 1)) }, n.name), ' › '),
      ),
    );
    const boxes = [];
    boxOf = new Map();
    const lay = (n, depth, x, width, nodeTrail) => {
      if (width < MIN_SHARE) return;
      const box = h(
        'button',
        {
          type: 'button',
          class: `box ${colourClass(n.name)}`,
          'aria-label': describe(n),
          'aria-describedby': 'flame-tip',
          'data-name': n.name,
          tabindex: boxes.length ? '-1' : '0',
        },
        h('span', { class: 'name' }, n.name),
        n.version ? h('span', { class: 'ver' }, ` ${n.version}`) : null,
        h('span', { class: 'time' }, ` ${ms(n.total)}`),
      );
      box.style.left = `${x * 100}%`;
      box.style.width = `${width * 100}%`;
      box.style.top = `${depth * ROW}px`;
      if (width < 0.06) box.classList.add('narrow');
      box.addEventListener('mouseenter', () => showTip(n, box));
      box.addEventListener('mouseleave', hideTip);
      box.addEventListener('focus', () => showTip(n, box));
      box.addEventListener('blur', hideTip);
      box.addEventListener('click', () => {
        if (n === focus && trail.length > 1) zoom(trail[trail.length - 2], trail.slice(0, -1));
        else if (n !== focus) zoom(n, nodeTrail);
      });
      boxes.push(box);
      boxOf.set(n, box);
      let cx = x;
      for (const c of n.children) {
        const w = n.total > 0 ? (c.total / n.total) * width : 0;
        lay(c, depth + 1, cx, w, nodeTrail.concat(c));
        cx += w;
      }
    };
    lay(focus, 0, 0, 1, trail);
    canvas.style.height = `${depthOf(focus) * ROW}px`;
    canvas.replaceChildren(...boxes);
  }

  /** The node drawn next to n in direction key, or null. */
  function neighbour(n, key) {
    const drawn = (list) => list.filter((c) => boxOf.has(c));
    if (key === 'ArrowUp') return n !== focus && n.parent && boxOf.has(n.parent) ? n.parent : null;
    if (key === 'ArrowDown') return drawn(n.children)[0] || null;
    if (!n.parent || n === focus) return null;
    const siblings = drawn(n.parent.children);
    const i = siblings.indexOf(n) + (key === 'ArrowRight' ? 1 : -1);
    return siblings[i] || null;
  }

  wrap.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && trail.length > 1) {
      e.preventDefault();
      zoom(trail[trail.length - 2], trail.slice(0, -1));
      return;
    }
    if (!['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight'].includes(e.key)) return;
    const current = [...boxOf].find(([, b]) => b === document.activeElement)?.[0];
    const next = current && neighbour(current, e.key);
    if (!next) return;
    e.preventDefault();
    boxOf.get(current).setAttribute('tabindex', '-1');
    const box = boxOf.get(next);
    box.setAttribute('tabindex', '0');
    box.focus();
  });
  render();
  return { element: wrap, root };
}
