// From runs to a profile: medians and spreads per module, the runs' trees merged into one, the
// rule table's recommendations, and the comparison with an earlier profile.

import { SDK_VERSION } from '../shared/constants';
import { cpuExactness, type CpuRun } from '../shared/cpu-profile';
import { recommend, type RuleTable } from './rules';
import type { Comparison, CpuProfileSummary, Profile, ProfileModule, ProfileRun, ProfileTreeNode, RunTreeEntry, Spread } from './profile';
import { SCHEMA, SCHEMA_VERSION } from './profile';

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: round3(quantile(sorted, 0.5)),
    p25: round3(quantile(sorted, 0.25)),
    p75: round3(quantile(sorted, 0.75)),
    min: round3(sorted[0] ?? 0),
    max: round3(sorted[sorted.length - 1] ?? 0),
  };
}

const median = (values: number[]): number => spread(values).median;

interface MergedNode {
  name: string;
  version: string | undefined;
  self: number[];
  total: number[];
  loading: number[];
  /** whether any run timed this node's ES module loading (loading_ms) */
  timed: boolean;
  children: Map<string, MergedNode>;
}

function mergeTrees(trees: RunTreeEntry[][], runs: number): ProfileTreeNode[] {
  const root = new Map<string, MergedNode>();
  const add = (into: Map<string, MergedNode>, entries: RunTreeEntry[] | undefined, run: number): void => {
    for (const entry of entries ?? []) {
      let node = into.get(entry.name);
      if (node === undefined) {
        node = {
          name: entry.name,
          version: entry.version,
          self: new Array(runs).fill(0),
          total: new Array(runs).fill(0),
          loading: new Array(runs).fill(0),
          timed: false,
          children: new Map(),
        };
        into.set(entry.name, node);
      }
      node.version ??= entry.version;
      node.self[run] += entry.self_ms;
      node.total[run] += entry.total_ms;
      if (typeof entry.loading_ms === 'number') {
        node.timed = true;
        node.loading[run] += entry.loading_ms;
      }
      add(node.children, entry.children, run);
    }
  };
  trees.forEach((entries, run) => add(root, entries, run));
  const build = (nodes: Map<string, MergedNode>): ProfileTreeNode[] =>
    [...nodes.values()]
      .map((node) => {
        const out: ProfileTreeNode = { name: node.name, self_ms: median(node.self), total_ms: median(node.total) };
        if (node.version !== undefined) out.version = node.version;
        if (node.timed) {
          // the median of each run's split (not self minus the median loading: medians do not subtract)
          out.loading_ms = median(node.loading);
          out.evaluation_ms = median(node.self.map((self, run) => Math.max(0, self - node.loading[run]!)));
        }
        const children = build(node.children);
        if (children.length > 0) out.children = children;
        return out;
      })
      .sort((a, b) => b.total_ms - a.total_ms || (a.name < b.name ? -1 : 1));
  return build(root);
}

function versionsOf(tree: ProfileTreeNode[], into = new Map<string, string>()): Map<string, string> {
  for (const node of tree) {
    if (node.version !== undefined && !into.has(node.name)) into.set(node.name, node.version);
    if (node.children) versionsOf(node.children, into);
  }
  return into;
}

export function aggregate(
  runs: ProfileRun[],
  meta: { handler: string; taskRoot: string; memory: number; node: string },
  rules: RuleTable,
  sizes?: Record<string, number>,
): Profile {
  const n = runs.length;
  const keys = new Set<string>();
  for (const run of runs) for (const key of Object.keys(run.module_timings)) keys.add(key);
  const tree = mergeTrees(
    runs.map((run) => run.module_tree.children),
    n,
  );
  const versions = versionsOf(tree);
  const modules: ProfileModule[] = [...keys]
    .map((name) => {
      const values = runs.map((run) => run.module_timings[name] ?? 0);
      const seen = runs.filter((run) => run.module_timings[name] !== undefined).length;
      const m: ProfileModule = { name, self_ms: median(values), seen_in: round3(seen / n) };
      const version = versions.get(name);
      if (version !== undefined) m.version = version;
      if (sizes?.[name] !== undefined) m.bytes = sizes[name];
      return m;
    })
    .sort((a, b) => b.self_ms - a.self_ms || (a.name < b.name ? -1 : 1));
  const loadMs = spread(runs.map((run) => run.load_ms));
  const esmTimings = [...new Set(runs.map((run) => run.esm_timing))];
  const linked = runs.some((run) => typeof run.module_tree.link_ms === 'number' || typeof run.module_tree.loading_ms === 'number');
  const cpuRuns = runs.map((run) => run.cpu).filter((cpu): cpu is CpuRun => cpu !== undefined);
  // The same input the server's engine gets: p50 per module, version, seen_in, module-load p50.
  const figures: Record<string, { p50_ms: number; version: string | null; seen_in: number }> = {};
  for (const m of modules) figures[m.name] = { p50_ms: m.self_ms, version: m.version ?? null, seen_in: m.seen_in };
  return {
    schema: SCHEMA,
    version: SCHEMA_VERSION,
    sdk_version: SDK_VERSION,
    handler: meta.handler,
    task_root: meta.taskRoot,
    node_version: meta.node,
    memory_mb: meta.memory,
    runs: n,
    load_ms: loadMs,
    init_ms: spread(runs.map((run) => run.init_ms)),
    sdk_overhead_ms: spread(runs.map((run) => run.sdk_overhead_ms)),
    ...(esmTimings.length === 1 ? { esm_timing: esmTimings[0] } : {}),
    ...(linked ? { link_ms: spread(runs.map((run) => run.module_tree.link_ms ?? 0)) } : {}),
    modules,
    tree,
    recommendations: recommend(rules, figures, {
      module_load_p50_ms: loadMs.median,
      runtime: `nodejs${process.versions.node.split('.')[0]}.x`,
    }),
    ...(cpuRuns.length > 0 ? { cpu_profile: summariseCpu(cpuRuns) } : {}),
    runs_detail: runs,
  };
}

// ---- CPU profile ---------------------------------------------------------------------------

function summariseCpu(runs: CpuRun[]): CpuProfileSummary {
  const names = new Set<string>();
  for (const run of runs) for (const name of Object.keys(run.scripts)) names.add(name);
  const interval = runs[0]!.interval_us;
  const samples = median(runs.map((run) => run.samples));
  return {
    method: 'v8-cpu-profile',
    interval_us: interval,
    samples,
    exactness: cpuExactness(interval),
    scripts: [...names]
      .map((name) => ({ name, ms: median(runs.map((run) => run.scripts[name] ?? 0)) }))
      .sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1)),
    module_loader_ms: median(runs.map((run) => run.module_loader_ms)),
    garbage_collector_ms: median(runs.map((run) => run.garbage_collector_ms)),
    program_ms: median(runs.map((run) => run.program_ms)),
    other_ms: median(runs.map((run) => run.other_ms)),
  };
}

export function compareProfiles(previous: Profile, current: Profile): Comparison {
  const before = new Map(previous.modules.map((m) => [m.name, m.self_ms]));
  const after = new Map(current.modules.map((m) => [m.name, m.self_ms]));
  const names = new Set([...before.keys(), ...after.keys()]);
  const modules = [...names]
    .map((name) => {
      const b = before.get(name) ?? 0;
      const a = after.get(name) ?? 0;
      return { name, before_ms: b, after_ms: a, delta_ms: round3(a - b) };
    })
    .filter((m) => m.delta_ms !== 0)
    .sort((x, y) => Math.abs(y.delta_ms) - Math.abs(x.delta_ms) || (x.name < y.name ? -1 : 1));
  const b = previous.load_ms.median;
  const a = current.load_ms.median;
  return {
    previous_runs: previous.runs,
    load_ms: { before: b, after: a, delta: round3(a - b), percent: b > 0 ? Math.round(((a - b) / b) * 1000) / 10 : null },
    modules,
  };
}
