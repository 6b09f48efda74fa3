// V8's CPU profiler during init, its samples attributed to packages by script URL: the other way
// of seeing where init goes, besides the hooks (see docs/sdk-usage.md, "Methods, and how exact
// they are"). Used by `coldstart profile --cpu-profile` (cli/) and, opt-in, by the SDK itself
// (COLDSTART_LOADING=profile, runtime/runtime.ts): statistical, and the profiler slows the process a little.

import { attributeFile, attributeUrl } from './attribution';

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * One run's V8 CPU profile (coldstart profile --cpu-profile, or COLDSTART_LOADING=profile), its samples attributed by script URL: a sample goes
 * to the package or own file of the innermost frame of the function's code on its stack (JS
 * running: a module body, or code it calls), unless a frame of Node's module loader comes first
 * (the sample is Node loading a module: resolving, reading, compiling, linking, which no script
 * URL tells apart).
 */
export interface CpuRun {
  interval_us: number;
  samples: number;
  /** ms of samples per package / own file */
  scripts: Record<string, number>;
  /** Node's module loader (node:internal/modules/...) innermost */
  module_loader_ms: number;
  garbage_collector_ms: number;
  /** V8 outside JavaScript (compiling, instantiating a graph) with no frame to tell whose */
  program_ms: number;
  /** the SDK's own code, other Node.js internals, idle */
  other_ms: number;
}

export interface RawCpuProfile {
  nodes: { id: number; url: string; fn: string; children?: number[] }[];
  samples: number[];
  /** µs from the previous sample to each sample (V8's timeDeltas) */
  deltas?: number[];
  interval_us: number;
}

/**
 * A run's CPU profile, its samples attributed by script URL (see CpuRun). `own(url)`: the SDK's
 * own files, which are nobody's.
 */
export function attributeCpuProfile(raw: RawCpuProfile, taskRoot: string, own: (url: string) => boolean): CpuRun {
  const parent = new Map<number, number>();
  const byId = new Map<number, RawCpuProfile['nodes'][number]>();
  for (const node of raw.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  // each profile node's attribution, computed once: a key, or a category
  const memo = new Map<number, string>();
  const LOADER = '\0loader';
  const GC = '\0gc';
  const PROGRAM = '\0program';
  const OTHER = '\0other';
  const classify = (id: number): string => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id)!;
    let result: string;
    if (node.fn === '(garbage collector)') result = GC;
    else if (node.fn === '(program)') result = PROGRAM;
    else if (node.fn === '(idle)' || node.fn === '(root)') result = OTHER;
    else if (node.url.startsWith('node:internal/modules/')) result = LOADER;
    else if ((node.url.startsWith('file://') || node.url.startsWith('/')) && !own(node.url)) {
      const who = node.url.startsWith('/') ? attributeFile(node.url, taskRoot) : attributeUrl(node.url, taskRoot);
      // a file of the runtime (outside the task root and node_modules) is not the function's
      result = who.packageDir === undefined && !who.key.startsWith('./') ? OTHER : who.key;
    } else {
      const up = parent.get(id);
      result = up === undefined ? OTHER : classify(up);
      // Node internals or the SDK called by the function's code are that code's; at the top, other
      if (result === GC || result === PROGRAM) result = OTHER;
    }
    memo.set(id, result);
    return result;
  };
  // Each sample stands for the time from it to the next (V8's own deltas): on a busy machine the
  // sampling thread runs late, and counting samples times the interval would lose that time.
  const us = new Map<string, number>();
  const deltas = raw.deltas;
  raw.samples.forEach((sample, i) => {
    const key = byId.has(sample) ? classify(sample) : OTHER;
    const weight = deltas !== undefined && i + 1 < deltas.length ? Math.max(0, deltas[i + 1]!) : raw.interval_us;
    us.set(key, (us.get(key) ?? 0) + weight);
  });
  const scripts: Record<string, number> = {};
  for (const [key, n] of us) if (!key.startsWith('\0')) scripts[key] = round3(n / 1000);
  const of = (key: string): number => round3((us.get(key) ?? 0) / 1000);
  return {
    interval_us: raw.interval_us,
    samples: raw.samples.length,
    scripts,
    module_loader_ms: of(LOADER),
    garbage_collector_ms: of(GC),
    program_ms: of(PROGRAM),
    other_ms: of(OTHER),
  };
}

/** What the method can and cannot tell, for the record and the report. */
export function cpuExactness(intervalUs: number): string {
  return (
    `sampled every ${intervalUs} us (each sample stands for the time to the next): a figure of n samples is within about 2*sqrt(n) samples of the time it stands for (statistical), ` +
    'and the profiler itself slows the run; the time of JavaScript running in each script is attributed exactly by its URL, ' +
    "Node's loading of modules (resolve, read, compile, link) by no URL: it is module_loader_ms and program_ms, which the SDK's hooks split by module"
  );
}

/** The summary a record carries in module_tree.cpu_profile (COLDSTART_LOADING=profile). */
export interface CpuProfileRecord {
  method: 'v8-cpu-profile';
  interval_us: number;
  samples: number;
  exactness: string;
  /** ms of JavaScript running per package / own file, the largest 30 */
  scripts: Record<string, number>;
  module_loader_ms: number;
  garbage_collector_ms: number;
  program_ms: number;
  other_ms: number;
}

/**
 * Starts V8's sampling profiler through an in-process inspector session (its answers are
 * synchronous). Returns the function that stops it and attributes the samples, or undefined if
 * the inspector is not available (a Node.js built without it).
 */
export function startCpuProfile(
  intervalUs: number,
): ((taskRoot: string, own: (url: string) => boolean) => CpuProfileRecord | undefined) | undefined {
  type Profile = {
    nodes: { id: number; callFrame: { url: string; functionName: string }; children?: number[] }[];
    samples: number[];
    timeDeltas: number[];
  };
  let session: {
    post: (method: string, params?: object, callback?: (error: unknown, result: { profile?: Profile } | undefined) => void) => void;
    disconnect: () => void;
  };
  try {
    const inspector = require('node:inspector') as typeof import('node:inspector');
    session = new inspector.Session() as unknown as typeof session;
    (session as unknown as { connect: () => void }).connect();
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    session.post('Profiler.start');
  } catch {
    return undefined;
  }
  return (taskRoot, own) => {
    let profile: Profile | undefined;
    try {
      session.post('Profiler.stop', undefined, (error, result) => {
        if (!error) profile = result?.profile;
      });
      session.disconnect();
    } catch {
      return undefined;
    }
    if (profile === undefined) return undefined;
    const raw: RawCpuProfile = {
      nodes: profile.nodes.map((n) => ({ id: n.id, url: n.callFrame.url, fn: n.callFrame.functionName, children: n.children })),
      samples: profile.samples,
      deltas: profile.timeDeltas,
      interval_us: intervalUs,
    };
    const run = attributeCpuProfile(raw, taskRoot, own);
    const scripts = Object.fromEntries(
      Object.entries(run.scripts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 30),
    );
    return {
      method: 'v8-cpu-profile',
      interval_us: intervalUs,
      samples: run.samples,
      exactness: cpuExactness(intervalUs),
      scripts,
      module_loader_ms: run.module_loader_ms,
      garbage_collector_ms: run.garbage_collector_ms,
      program_ms: run.program_ms,
      other_ms: run.other_ms,
    };
  };
}
