// Is the function's code a bundle, and was it built with our esbuild plugin? Shared by
// `coldstart profile` (bundle.kind in its JSON) and by the SDK's cold-start records
// (`module_source`), so that both answer the same way.
//
//   "esbuild-plugin"     a bundle built with @coldstart/analyzer/esbuild: per-module data from its markers
//   "bundled-no-plugin"  a bundle without the plugin: its time cannot be split by package
//   "hooks"              unbundled code, timed by the require/import hooks
//
// A bundle is recognised from its text: the plugin's markers, else esbuild's helpers (`__commonJS`,
// `__esm`, `__toESM`, or the minified body of `__commonJS`), esbuild's `// node_modules/...`
// module comments, or webpack's `__webpack_require__`. A minified bundle of ES modules only has
// none of these and passes for unbundled code.

import { BUNDLE_MARKER_GLOBAL } from './constants';
import { handlerFile } from './handler-file';
import { attributeFile } from './attribution';
import type { Runtime } from '../runtime/runtime';

export type BundleKind = 'esbuild-plugin' | 'no-plugin';
export type ModuleSource = 'hooks' | 'esbuild-plugin' | 'bundled-no-plugin';

/**
 * At run time only the start of the handler file is read, synchronously, as the first invocation
 * starts (so that the early copy of the cold-start record has it too): esbuild's helpers are at the
 * top of a bundle and its first `// node_modules/` comment comes early.
 */
export const BUNDLE_HEAD_BYTES = 64 * 1024;

const PLUGIN_MARKER = `globalThis.${BUNDLE_MARKER_GLOBAL}?.(`;
const BUNDLER_TRACES =
  /\b__commonJS\(|\b__esm\(|\b__toESM\(|\([\w$]+=\{exports:\{\}\}\)\.exports|^\/\/ node_modules\/|\b__webpack_require__\b/m;

/** What a file's text says: built with the plugin, a bundle without it, or not a bundle (undefined). */
export function bundleKind(text: string): BundleKind | undefined {
  if (text.includes(PLUGIN_MARKER)) return 'esbuild-plugin';
  if (BUNDLER_TRACES.test(text)) return 'no-plugin';
  return undefined;
}

export function moduleSourceOf(kind: BundleKind | undefined): ModuleSource {
  return kind === 'esbuild-plugin' ? 'esbuild-plugin' : kind === 'no-plugin' ? 'bundled-no-plugin' : 'hooks';
}

/** The first `bytes` of a file as text; undefined if unreadable. */
export function readHead(file: string, bytes = BUNDLE_HEAD_BYTES): string | undefined {
  const { openSync, readSync, closeSync } = require('node:fs') as typeof import('node:fs');
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buffer = Buffer.allocUnsafe(bytes);
    const read = readSync(fd, buffer, 0, bytes, 0);
    return buffer.toString('utf8', 0, read);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The record's module_source, at the end of init (the first invocation): from the markers seen,
 * else from the handler file's text. A bundle without the plugin that the SDK did not see loading
 * gets its own time added (addUnseenBundleFile), `endNs` being the end of init.
 */
export function checkModuleSource(runtime: Runtime, endNs: bigint | undefined, env: NodeJS.ProcessEnv = process.env): ModuleSource {
  if (runtime.recorder.bundledModules > 0) return 'esbuild-plugin';
  const file = handlerFile(env);
  if (file === undefined) return 'hooks';
  const head = readHead(file);
  const source = moduleSourceOf(head === undefined ? undefined : bundleKind(head));
  if (source === 'bundled-no-plugin') addUnseenBundleFile(runtime, file, endNs);
  return source;
}

/**
 * A bundle without the plugin that loaded the SDK itself (`analyze()` with the SDK bundled in, or
 * required from the bundle: coverage "require" or "import") was never seen loading: its file is
 * not in the record. Its visible time is added as the bundle file's self time: from the SDK's start
 * to the end of init (`endNs`), minus the SDK's own set-up and recorder time and the loads that were
 * seen (which become its children). Time the bundle spent before the SDK loaded stays unseen, as
 * for any code before the SDK with these coverages. Returns true if the recorder changed.
 */
export function addUnseenBundleFile(runtime: Runtime, file: string, endNs: bigint | undefined): boolean {
  if (runtime.coverage !== 'require' && runtime.coverage !== 'import') return false;
  const start = runtime.loadStartNs;
  if (start === undefined || endNs === undefined || endNs <= start) return false;
  const recorder = runtime.recorder;
  const key = attributeFile(file, runtime.taskRoot).key;
  if (recorder.root.children?.has(key)) return false; // seen loading
  let seenSelf = 0;
  for (const ns of recorder.selfNs.values()) seenSelf += ns;
  const own = Number(endNs - start) - runtime.setupNs - seenSelf - recorder.overheadNs;
  recorder.adoptRoot(key, Math.max(0, own));
  return true;
}
