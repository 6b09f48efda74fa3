// The one runtime per process: the recorder, how init was observed, the first-invocation state
// and the senders. Stored on a global symbol so that two copies of the SDK (a preload and a
// bundled copy, say) share it.

import { BUNDLE_MARKER_GLOBAL, ENV_LOADING, LAMBDA_ENV, RUNTIME_SYMBOL } from '../shared/constants';
import { startCpuProfile } from '../shared/cpu-profile';
import type { EarlyStream } from '../shared/extension-endpoint';
import { sdkFiles } from '../shared/sdk-files';
import { esmTimingMode, installCommonJsHook, installEsmHooks, type EsmTiming } from './hooks';
import { releaseScratch } from './inject';
import { Recorder } from './recorder';

export type Coverage = 'preload' | 'redirect' | 'require' | 'import';

export interface Runtime {
  readonly recorder: Recorder;
  readonly taskRoot: string;
  /** how the SDK got loaded, hence which part of init it could observe */
  coverage: Coverage;
  esmTiming: EsmTiming;
  /** SDK's own load and set-up time, ns */
  setupNs: number;
  /** clock when the SDK started loading (absent in a runtime made by an older copy) */
  loadStartNs?: bigint;
  /** where module data comes from ("hooks", "esbuild-plugin", "bundled-no-plugin"), from the first invocation on */
  moduleSource?: string;
  /** first invocation already seen */
  started: boolean;
  /** removes the CommonJS hooks and stops the recorder (first invocation, or SDK disabled) */
  uninstall: () => void;
  /** per endpoint and key, created by the invocation half of the SDK */
  readonly senders: Map<string, unknown>;
  /** the extension's stream, opened as the first invocation starts, until a delivery adopts it */
  earlyStream?: EarlyStream;
  /** tells whether a major collection has completed since the handler was wrapped (wrapper.ts, invoke/gc.ts) */
  heapMark?: HeapMark;
}

/** A weak reference to a fresh object: cleared by the next major collection (invoke/gc.ts). */
export type HeapMark = WeakRef<object>;

/** A new HeapMark (about 0.1 µs), undefined where WeakRef is missing. */
export function heapMark(): HeapMark | undefined {
  return typeof WeakRef === 'function' ? new WeakRef({}) : undefined;
}

type Holder = { [RUNTIME_SYMBOL]?: Runtime };

export function existingRuntime(): Runtime | undefined {
  return (globalThis as Holder)[RUNTIME_SYMBOL];
}

/**
 * Returns the process's runtime, creating it (and installing the hooks) on first call.
 * `loadStart` is the clock when the SDK started loading, so that its own cost is counted.
 */
export function obtainRuntime(coverage: Coverage, loadStart: bigint, coreFile: string): Runtime {
  const holder = globalThis as Holder;
  const existing = holder[RUNTIME_SYMBOL];
  if (existing !== undefined) return existing;
  const taskRoot = process.env[LAMBDA_ENV.taskRoot] || process.cwd();
  const recorder = new Recorder(taskRoot);
  const runtime: Runtime = {
    recorder,
    taskRoot,
    coverage,
    esmTiming: 'off',
    setupNs: 0,
    loadStartNs: loadStart,
    started: false,
    uninstall: () => undefined,
    senders: new Map(),
  };
  holder[RUNTIME_SYMBOL] = runtime;
  // markers of bundles built with the esbuild plugin (@coldstart/analyzer/esbuild)
  Object.defineProperty(globalThis, BUNDLE_MARKER_GLOBAL, {
    value: (kind: number, id: number, key: string, version?: string): void => {
      if (kind === 0) recorder.enterKey(id, key, version);
      else recorder.exitUrl(id);
    },
    configurable: true,
    writable: true,
    enumerable: false,
  });
  try {
    // COLDSTART_LOADING=profile: V8's CPU profiler during init too (opt-in: it slows init a little,
    // and stopping it and attributing its samples is done as the first invocation starts)
    const profiling = (process.env[ENV_LOADING] ?? '').trim().toLowerCase() === 'profile' ? startCpuProfile(100) : undefined;
    const uninstallCjs = installCommonJsHook(recorder, coreFile);
    runtime.uninstall = () => {
      uninstallCjs();
      recorder.close();
      releaseScratch();
      // the hooks thread ran out of room for loading events: loading was timed for part of the modules
      if (recorder.offThreadOverflow && runtime.esmTiming === 'hooks-thread') runtime.esmTiming = 'evaluation';
      if (profiling !== undefined && recorder.cpuProfile === undefined) {
        try {
          const { pathToFileURL } = require('node:url') as typeof import('node:url');
          const { dirname } = require('node:path') as typeof import('node:path');
          const root = dirname(dirname(coreFile));
          const ownUrl = sdkFiles(pathToFileURL(root).href + '/');
          const ownPath = sdkFiles(root + '/');
          recorder.cpuProfile = profiling(taskRoot, (url) => ownUrl(url) || ownPath(url));
        } catch {
          // no profile in the record
        }
      }
    };
    runtime.esmTiming = installEsmHooks(recorder, esmTimingMode(process.env), coreFile);
    // no ES module hooks: CommonJS loads are only noted during init, and timed from the notes later
    const esm = runtime.esmTiming;
    recorder.deferCommonJs = esm === 'commonjs' || esm === 'off' || esm === 'skipped' || esm === 'unsupported';
    if ((runtime.esmTiming === 'on' || runtime.esmTiming === 'hooks-thread' || runtime.esmTiming === 'evaluation') && coverage === 'import')
      runtime.esmTiming = 'partial';
  } catch {
    // hooks are best effort; the invocation data still gets sent
  }
  runtime.setupNs = Number(process.hrtime.bigint() - loadStart);
  return runtime;
}
