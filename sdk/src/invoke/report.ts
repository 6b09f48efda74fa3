// Turns the recorder's data into the payload's module_timings and module_tree, both bounded.

import type { Recorder, TreeNode } from '../runtime/recorder';
import type { CpuProfileRecord } from '../shared/cpu-profile';

export const MAX_TIMINGS = 300; // keys in module_timings (the backend accepts up to 2000)
export const TREE_MAX_DEPTH = 4; // levels below the root
export const TREE_MAX_CHILDREN = 8; // per node; the rest is folded into one "(other)" node
export const TREE_MAX_NODES = 80; // whole tree
export const OTHER = '(other)';

const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3; // ns -> ms, µs resolution

/** Self time per package/file in ms, largest first; beyond MAX_TIMINGS the rest is "(other)". */
export function moduleTimings(selfNs: ReadonlyMap<string, number>): Record<string, number> {
  const entries = [...selfNs.entries()].filter(([, ns]) => ns > 0).sort((a, b) => b[1] - a[1]);
  const out: Record<string, number> = {};
  const kept = entries.length > MAX_TIMINGS ? entries.slice(0, MAX_TIMINGS - 1) : entries;
  for (const [key, ns] of kept) out[key] = ms(ns);
  if (kept.length < entries.length) {
    let rest = 0;
    for (const [, ns] of entries.slice(kept.length)) rest += ns;
    out[OTHER] = ms(rest);
  }
  return out;
}

export interface TreeEntry {
  name: string;
  version?: string;
  self_ms: number;
  total_ms: number;
  /**
   * Of self_ms, the part spent loading ES modules (resolving, reading, compiling: before any body
   * runs) and the rest (evaluation: module bodies running, and CommonJS files' require(), whose
   * compiling cannot be told apart from running). Only when ES module loading was timed.
   */
  loading_ms?: number;
  evaluation_ms?: number;
  loads?: number;
  packages?: number;
  children?: TreeEntry[];
}

export interface ModuleTree {
  load_ms: number;
  /** of load_ms: loading ES modules (in the nodes' loading_ms) and linking their graphs (nobody's) */
  loading_ms?: number;
  link_ms?: number;
  /** COLDSTART_LOADING=profile: V8 CPU profile samples of init by script URL (cpu-profile.ts) */
  cpu_profile?: CpuProfileRecord;
  modules: number;
  esm_timing: string;
  coverage: string;
  truncated: boolean;
  children: TreeEntry[];
}

/** Nodes of the capped tree whose version should be looked up (packages only). */
export function packageNodes(root: TreeNode): TreeNode[] {
  const out: TreeNode[] = [];
  const visit = (node: TreeNode, depth: number): void => {
    if (depth > TREE_MAX_DEPTH || node.children === undefined) return;
    const sorted = [...node.children.values()].sort((a, b) => b.inclusiveNs - a.inclusiveNs);
    for (const child of sorted.slice(0, TREE_MAX_CHILDREN)) {
      if (out.length >= TREE_MAX_NODES) return;
      if (child.packageDir !== undefined) out.push(child);
      visit(child, depth + 1);
    }
  };
  visit(root, 1);
  return out;
}

export function moduleTree(recorder: Recorder, versions: ReadonlyMap<TreeNode, string>, esmTiming: string, coverage: string): ModuleTree {
  let budget = TREE_MAX_NODES;
  let truncated = false;
  const build = (node: TreeNode, depth: number): TreeEntry[] | undefined => {
    if (node.children === undefined || node.children.size === 0) return undefined;
    if (depth > TREE_MAX_DEPTH || budget <= 0) {
      truncated = true;
      return undefined;
    }
    const sorted = [...node.children.values()].sort((a, b) => b.inclusiveNs - a.inclusiveNs);
    const keep = Math.min(sorted.length, TREE_MAX_CHILDREN, budget);
    const entries: TreeEntry[] = [];
    for (const child of sorted.slice(0, keep)) {
      budget--;
      const entry: TreeEntry = { name: child.key, self_ms: ms(child.selfNs), total_ms: ms(child.inclusiveNs) };
      splitSelf(entry, child.loadingNs);
      const version = versions.get(child) ?? child.version;
      if (version !== undefined) entry.version = version;
      if (child.loads > 1) entry.loads = child.loads;
      const children = build(child, depth + 1);
      if (children !== undefined) entry.children = children;
      entries.push(entry);
    }
    if (keep < sorted.length) {
      truncated = true;
      let self = 0;
      let loading = 0;
      let total = 0;
      for (const rest of sorted.slice(keep)) {
        self += subtreeSelf(rest, 'selfNs');
        loading += subtreeSelf(rest, 'loadingNs');
        total += rest.inclusiveNs;
      }
      const other: TreeEntry = { name: OTHER, self_ms: ms(self), total_ms: ms(total) };
      splitSelf(other, loading);
      other.packages = sorted.length - keep;
      entries.push(other);
    }
    return entries;
  };
  const children = build(recorder.root, 1) ?? [];
  const tree: ModuleTree = {
    load_ms: ms(recorder.loadNs),
    modules: recorder.modules,
    esm_timing: esmTiming,
    coverage,
    truncated,
    children,
  };
  if (recorder.loadingNs > 0) tree.loading_ms = ms(recorder.loadingNs);
  if (recorder.linkNs > 0) tree.link_ms = ms(recorder.linkNs);
  if (recorder.cpuProfile !== undefined) tree.cpu_profile = recorder.cpuProfile;
  return tree;
}

/** Self (or loading) time of a node and everything below it (what an "(other)" bucket stands for). */
function subtreeSelf(node: TreeNode, field: 'selfNs' | 'loadingNs'): number {
  let sum = node[field];
  if (node.children !== undefined) for (const child of node.children.values()) sum += subtreeSelf(child, field);
  return sum;
}

function splitSelf(entry: TreeEntry, loadingNs: number): void {
  if (loadingNs <= 0) return;
  entry.loading_ms = ms(loadingNs);
  entry.evaluation_ms = Math.max(0, Math.round((entry.self_ms - entry.loading_ms) * 1e3) / 1e3);
}
