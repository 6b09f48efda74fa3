// The shape of a profile (`coldstart profile --json`, schema "coldstart-profile" version 1, described
// by profile.schema.json) and of the runs it is made of.

import type { BundleKind } from '../shared/bundle';
import type { CpuRun } from '../shared/cpu-profile';
import type { Recommendation } from './rules';

export const SCHEMA = 'coldstart-profile';
export const SCHEMA_VERSION = 1;
export const PROFILE_INIT_TYPE = 'coldstart-profile';

export interface Spread {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

export interface ProfileModule {
  name: string;
  version?: string;
  self_ms: number;
  seen_in: number;
  /** bytes in the bundle (from the esbuild plugin's sidecar file), when known */
  bytes?: number;
}

export interface BundleInfo {
  /** "esbuild-plugin": per-module data from the plugin; "no-plugin": a bundle without it */
  kind: BundleKind;
  output_bytes?: number;
}

export interface ProfileTreeNode {
  name: string;
  version?: string;
  self_ms: number;
  total_ms: number;
  /** of self_ms, ES module loading (resolve, read, compile) and the rest (evaluation): medians */
  loading_ms?: number;
  evaluation_ms?: number;
  children?: ProfileTreeNode[];
}

export interface CpuProfileSummary {
  method: 'v8-cpu-profile';
  interval_us: number;
  /** median number of samples per run */
  samples: number;
  exactness: string;
  scripts: { name: string; ms: number }[];
  module_loader_ms: number;
  garbage_collector_ms: number;
  program_ms: number;
  other_ms: number;
}

export interface ProfileRun {
  init_ms: number;
  load_ms: number;
  sdk_overhead_ms: number;
  modules: number;
  memory_used_mb: number;
  esm_timing: string;
  module_timings: Record<string, number>;
  module_tree: RunTree;
  started_at: string;
  /** the deployment identity of the profiled code (fingerprint.ts), as the SDK sends it */
  code_id?: string;
  /** --cpu-profile: the run's samples by script */
  cpu?: CpuRun;
}

export interface RunTreeEntry {
  name: string;
  version?: string;
  self_ms: number;
  total_ms: number;
  loading_ms?: number;
  evaluation_ms?: number;
  children?: RunTreeEntry[];
}
export interface RunTree {
  load_ms: number;
  modules: number;
  esm_timing: string;
  coverage: string;
  truncated: boolean;
  loading_ms?: number;
  link_ms?: number;
  children: RunTreeEntry[];
}

export interface Profile {
  schema: typeof SCHEMA;
  version: typeof SCHEMA_VERSION;
  sdk_version: string;
  handler: string;
  task_root: string;
  node_version: string;
  memory_mb: number;
  runs: number;
  load_ms: Spread;
  init_ms: Spread;
  sdk_overhead_ms: Spread;
  /** ES module timing of the runs (the SDK's esm_timing: "on" = loading and evaluation per module) */
  esm_timing?: string;
  /** linking ES module graphs: in load_ms, in no node (present when ES module loading was timed) */
  link_ms?: Spread;
  modules: ProfileModule[];
  tree: ProfileTreeNode[];
  /** --cpu-profile: V8 CPU profile samples by script URL, medians over the runs */
  cpu_profile?: CpuProfileSummary;
  recommendations: Recommendation[];
  bundle?: BundleInfo;
  budget?: { limit_ms: number; median_ms: number; exceeded: boolean };
  compare?: Comparison;
  runs_detail: ProfileRun[];
}

export interface Comparison {
  previous_runs: number;
  load_ms: { before: number; after: number; delta: number; percent: number | null };
  modules: { name: string; before_ms: number; after_ms: number; delta_ms: number }[];
}
