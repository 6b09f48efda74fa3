// The text output of `coldstart profile`: the tree, the recommendations, the comparison and the
// budget, 80 columns wide, coloured when the terminal allows.

import { OWN_CODE_NAME } from './rules';
import type { Profile, ProfileTreeNode, Spread } from './profile';

const WIDTH = 80;

export interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
}

export function painter(enabled: boolean): Paint {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), yellow: wrap(33, 39), green: wrap(32, 39) };
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

function fit(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width);
  return text.slice(0, Math.max(0, width - 1)) + '…';
}

function wrapText(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (word === '') continue;
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

export function renderTree(tree: ProfileTreeNode[], loadMs: number, threshold: number, paint: Paint): string[] {
  const lines: string[] = [];
  // ES module loading timed: self time split into loading and evaluation, two more columns
  const split = (nodes: ProfileTreeNode[]): boolean => nodes.some((node) => node.loading_ms !== undefined || split(node.children ?? []));
  const columns = split(tree);
  const nameWidth = WIDTH - (columns ? 40 : 20);
  lines.push(
    paint.bold(
      `${'package / file'.padEnd(nameWidth)}${'self ms'.padStart(10)}${'total ms'.padStart(10)}${columns ? `${'loading'.padStart(10)}${'eval'.padStart(10)}` : ''}`,
    ),
  );
  const colour = (ms: number, text: string): string =>
    loadMs > 0 && ms >= loadMs * 0.2 ? paint.red(text) : loadMs > 0 && ms >= loadMs * 0.05 ? paint.yellow(text) : text;
  const visit = (nodes: ProfileTreeNode[], prefix: string): void => {
    const shown = nodes.filter((node) => node.total_ms >= threshold);
    const hidden = nodes.length - shown.length;
    shown.forEach((node, index) => {
      const last = index === shown.length - 1 && hidden === 0;
      const branch = prefix === '' && nodes === tree ? '' : last ? '└─ ' : '├─ ';
      const label = node.version !== undefined ? `${node.name} ${node.version}` : node.name;
      const name = fit(prefix + branch + label, nameWidth);
      const parts = columns
        ? `${(node.loading_ms === undefined ? '' : fmt(node.loading_ms)).padStart(10)}${(node.evaluation_ms === undefined ? '' : fmt(node.evaluation_ms)).padStart(10)}`
        : '';
      lines.push(
        `${name}${colour(node.self_ms, fmt(node.self_ms).padStart(10))}${colour(node.total_ms, fmt(node.total_ms).padStart(10))}${parts}`,
      );
      if (node.children) visit(node.children, prefix + (branch === '' ? '' : last ? '   ' : '│  '));
    });
    if (hidden > 0) {
      let total = 0;
      for (const node of nodes) if (node.total_ms < threshold) total += node.total_ms;
      const branch = prefix === '' && nodes === tree ? '' : '└─ ';
      const label = `(${hidden} more under ${fmt(threshold)} ms)`;
      lines.push(paint.dim(`${fit(prefix + branch + label, nameWidth)}${''.padStart(10)}${fmt(total).padStart(10)}`));
    }
  };
  visit(tree, '');
  return lines;
}

const range = (s: Spread): string => `p25-p75 ${fmt(s.p25)}-${fmt(s.p75)}, min-max ${fmt(s.min)}-${fmt(s.max)}`;

export function renderText(profile: Profile, threshold: number, paint: Paint): string {
  const out: string[] = [];
  out.push(
    paint.bold(`coldstart profile: ${profile.handler}`),
    `${profile.runs} run${profile.runs === 1 ? '' : 's'}, Node.js ${profile.node_version}, ${profile.memory_mb} MB simulated, SDK ${profile.sdk_version}`,
    '',
    `module load   ${fmt(profile.load_ms.median).padStart(8)} ms median  (${range(profile.load_ms)})`,
    `init          ${fmt(profile.init_ms.median).padStart(8)} ms median  (${range(profile.init_ms)})`,
    `SDK overhead  ${fmt(profile.sdk_overhead_ms.median).padStart(8)} ms median  (included in init, not in the tree)`,
  );
  if (profile.link_ms !== undefined)
    out.push(`ESM linking   ${fmt(profile.link_ms.median).padStart(8)} ms median  (in module load, in no node of the tree)`);
  out.push('');
  if (profile.bundle?.kind === 'no-plugin')
    out.push(
      ...wrapText(
        'This handler is a bundle built without the @coldstart/analyzer/esbuild plugin: there is no per-module data inside it, so the whole bundle counts as one file. Add the plugin to the build to see its packages.',
        WIDTH,
        '',
      ).map((line) => paint.yellow(line)),
      '',
    );
  else if (profile.bundle?.kind === 'esbuild-plugin')
    out.push(
      `Bundle built with the esbuild plugin${profile.bundle.output_bytes !== undefined ? `, ${profile.bundle.output_bytes} bytes` : ''}.`,
      '',
    );
  out.push(...renderTree(profile.tree, profile.load_ms.median, threshold, paint));
  out.push('');
  if (profile.cpu_profile !== undefined) {
    const c = profile.cpu_profile;
    out.push(paint.bold(`CPU profile (V8, every ${c.interval_us} us, ${c.samples} samples per run): JavaScript running, by script`));
    for (const entry of c.scripts.filter((e) => e.ms >= 0.5).slice(0, 15))
      out.push(`${fit(entry.name, WIDTH - 20)}${fmt(entry.ms).padStart(10)}`);
    out.push(
      `${fit("Node's module loader (resolve, read, compile)", WIDTH - 20)}${fmt(c.module_loader_ms).padStart(10)}`,
      `${fit('V8 outside JavaScript (compiling, linking)', WIDTH - 20)}${fmt(c.program_ms).padStart(10)}`,
      `${fit('garbage collector', WIDTH - 20)}${fmt(c.garbage_collector_ms).padStart(10)}`,
      `${fit('other (the SDK, Node.js, idle)', WIDTH - 20)}${fmt(c.other_ms).padStart(10)}`,
      ...wrapText(`How exact: ${c.exactness}.`, WIDTH, '').map((line) => paint.dim(line)),
      '',
    );
  }
  if (profile.recommendations.length === 0) {
    out.push("Recommendations: none (no module above the rule table's thresholds).");
  } else {
    out.push(paint.bold('Recommendations') + ' (estimated savings overlap; do not add them up)');
    profile.recommendations.forEach((rec, i) => {
      const bytes = profile.modules.find((m) => m.name === rec.module)?.bytes;
      const size = bytes !== undefined ? `, ${bytes >= 10240 ? `${Math.round(bytes / 1024)} kB` : `${bytes} B`} in the bundle` : '';
      const head = `${i + 1}. ${rec.module === OWN_CODE_NAME ? 'your own code' : rec.module}: about ${rec.potential_savings_ms} ms${size} [${rec.rule_id}]`;
      out.push(paint.yellow(fit(head, WIDTH).trimEnd()));
      out.push(...wrapText(rec.issue, WIDTH, '   '));
      out.push(...wrapText(`Fix: ${rec.suggestion}`, WIDTH, '   '));
      out.push(...wrapText(`Evidence: ${rec.evidence}`, WIDTH, '   ').map((line) => paint.dim(line)));
    });
  }
  if (profile.compare !== undefined) {
    const c = profile.compare;
    out.push('', paint.bold(`Compared with the previous profile (${c.previous_runs} runs)`));
    const sign = (x: number): string => (x > 0 ? `+${fmt(x)}` : x < 0 ? `-${fmt(-x)}` : '0');
    const pct = c.load_ms.percent === null ? '' : ` (${c.load_ms.percent > 0 ? '+' : ''}${c.load_ms.percent} %)`;
    const verdict =
      c.load_ms.delta > 0
        ? paint.red(`slower by ${sign(c.load_ms.delta)} ms${pct}`)
        : c.load_ms.delta < 0
          ? paint.green(`faster by ${sign(-c.load_ms.delta).replace('+', '')} ms${pct}`)
          : 'unchanged';
    out.push(`module load ${fmt(c.load_ms.before)} -> ${fmt(c.load_ms.after)} ms: ${verdict}`);
    const shown = c.modules.filter((m) => Math.abs(m.delta_ms) >= 0.5).slice(0, 15);
    for (const m of shown) {
      const what = m.before_ms === 0 ? 'new' : m.after_ms === 0 ? 'gone' : m.delta_ms > 0 ? 'slower' : 'faster';
      const text = `${fit(m.name, 40)} ${what.padEnd(7)}${fmt(m.before_ms).padStart(9)} ->${fmt(m.after_ms).padStart(9)} ms ${sign(m.delta_ms).padStart(9)}`;
      out.push(m.delta_ms > 0 ? paint.red(text) : paint.green(text));
    }
    if (shown.length === 0) out.push('no module changed by 0.5 ms or more');
  }
  if (profile.budget !== undefined) {
    const b = profile.budget;
    out.push(
      '',
      b.exceeded
        ? paint.red(`Budget exceeded: median module load ${fmt(b.median_ms)} ms > ${fmt(b.limit_ms)} ms`)
        : paint.green(`Within budget: median module load ${fmt(b.median_ms)} ms <= ${fmt(b.limit_ms)} ms`),
    );
  }
  return out.join('\n') + '\n';
}
