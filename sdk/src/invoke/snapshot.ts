// What one `coldstart profile` run reports from inside the profiled process (see cli/profile.ts).

import { moduleTimings, moduleTree, packageNodes } from './report';
import type { TreeNode } from '../runtime/recorder';
import type { Runtime } from '../runtime/runtime';
import { codeId, readPackageVersion } from './fingerprint';

/**
 * The version of each package in the tree, read synchronously from its package.json (one read per
 * package directory, readPackageVersion: about 20 µs each). Used where nothing waits: `coldstart
 * profile`, and the cold-start record, which is built after the function's response.
 */
export function packageVersions(root: TreeNode): Map<TreeNode, string> {
  const versions = new Map<TreeNode, string>();
  const byDir = new Map<string, string | undefined>();
  for (const node of packageNodes(root)) {
    const dir = node.packageDir!;
    if (!byDir.has(dir)) byDir.set(dir, readPackageVersion(dir));
    const version = byDir.get(dir);
    if (version !== undefined) versions.set(node, version);
  }
  return versions;
}

export function profileSnapshot(runtime: Runtime, initMs: number): Record<string, unknown> {
  const recorder = runtime.recorder;
  const versions = packageVersions(recorder.root);
  return {
    init_ms: Math.round(initMs * 1000) / 1000,
    module_timings: moduleTimings(recorder.selfNs),
    module_tree: moduleTree(recorder, versions, runtime.esmTiming, runtime.coverage),
    sdk_overhead_ms: Math.round((runtime.setupNs + recorder.overheadNs) / 1e3) / 1e3,
    esm_timing: runtime.esmTiming,
    memory_used_mb: Math.round(process.memoryUsage.rss() / 1048576),
    code_id: codeId(runtime, versions),
  };
}
