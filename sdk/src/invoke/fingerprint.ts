// The deployment identity a record carries: Lambda's `function_version` and `code_id`, a
// fingerprint of the code that ran init. The backend groups a function's records into deployments
// by `code_id`, else by `function_version` (most functions run `$LATEST`, whose version never
// changes, so the version alone cannot tell two deployments apart).
//
// code_id = the first 128 bits (32 hex characters) of a SHA-256 over, in sorted order:
//   * `name@version` of every package in the module tree (the version from its package.json, or
//     the one the esbuild plugin's markers carry in a bundle);
//   * the content of every file of the function's own that init loaded (keys `./src/x` under the
//     task root, and absolute paths: layer files outside node_modules);
//   * the content of the handler file (for a bundle: the bundle, which holds everything) and of
//     the task root's package.json, so that code loaded lazily after init still counts.
// Nothing depends on the machine, the clock or the timings: every environment of one deployment
// computes the same id. What it cannot see: a dependency edited in place without a new version,
// and a package that is only loaded after init and not declared in the task root's package.json.
// A bundle and the unbundled sources of the same code get different ids (the files differ).
//
// Cost: computed once per process, after the first response (where the cold-start record is
// built), then cached for warm records and the extension's template. One package.json read per
// package directory (about 20 µs each) plus hashing the own files read (SHA-256 runs at several
// hundred MB/s): about 1 ms for a function with 100 packages and 200 kB of own code (bench/sdk).

import type { TreeNode } from '../runtime/recorder';
import type { Runtime } from '../runtime/runtime';
import { handlerFile } from '../shared/handler-file';
import { LAMBDA_ENV } from '../shared/constants';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

/** Longest function_version accepted by the backend. */
export const FUNCTION_VERSION_MAX = 64;
/** Package nodes and own files looked at, at most (deterministic: taken in sorted order). */
const MAX_ENTRIES = 20_000;
/** Own files larger than this are hashed by size only (a bundle is read in full below). */
const MAX_OWN_FILE_BYTES = 16 * 1024 * 1024;
const SCRIPT_EXTENSIONS = ['', '.js', '.cjs', '.mjs', '.ts', '.cts', '.mts', '.jsx', '.tsx', '.json'];

let cachedId: string | undefined;

/** Lambda's version of the function: the environment's, else the context's; undefined if neither. */
export function functionVersion(
  context: { functionVersion?: unknown } | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const value = env[LAMBDA_ENV.functionVersion] || (typeof context?.functionVersion === 'string' ? context.functionVersion : '');
  return value ? value.slice(0, FUNCTION_VERSION_MAX) : undefined;
}

const HEAD_BYTES = 4096;
/** Longest package version kept (as the esbuild plugin clips those it reads at build time). */
const PACKAGE_VERSION_MAX = 64;
let head: Buffer | undefined;
/** `"version": "..."` with a value JSON.parse would give as is (no escapes) */
const VERSION = /"version"\s*:\s*"([^"\\]*)"/;

/**
 * The top-level `version` of a package.json text without parsing it all, or undefined when that
 * cannot be told so (then the caller parses it). Certain only when every member before it is a
 * plain value: no `{` or `[` between the text's opening brace and the key, which itself follows
 * that brace or a comma (a string cannot hold an unescaped quote, so the key is a real one). A
 * later duplicate `version` key, which JSON.parse would take instead, is not looked for.
 */
export function leadingVersion(text: string): string | undefined {
  const match = VERSION.exec(text);
  if (match === null) return undefined;
  const open = text.indexOf('{');
  if (open < 0 || open > match.index) return undefined;
  const before = text.slice(open + 1, match.index);
  if (before.includes('{') || before.includes('[')) return undefined;
  const trimmed = before.trimEnd();
  if (trimmed.length > 0 && !trimmed.endsWith(',')) return undefined;
  return match[1];
}

/**
 * A package's version from its package.json, undefined when it has none (or no readable file).
 * Most manifests put `version` near the top: the first 4 kB are read and the value taken from them
 * (leadingVersion), which allocates a fraction of what JSON.parse of the whole file does (the
 * AWS SDK v2's manifest is 30 kB); otherwise the file is parsed as before.
 */
export function readPackageVersion(dir: string): string | undefined {
  const file = dir + '/package.json';
  let version: unknown;
  try {
    head ??= Buffer.allocUnsafe(HEAD_BYTES);
    const fd = openSync(file, 'r');
    let bytes: number;
    try {
      bytes = readSync(fd, head, 0, HEAD_BYTES, 0);
    } finally {
      closeSync(fd);
    }
    const text = head.toString('utf8', 0, bytes);
    version = leadingVersion(text) ?? (JSON.parse(bytes < HEAD_BYTES ? text : readFileSync(file, 'utf8')) as { version?: unknown }).version;
  } catch {
    return undefined;
  }
  return typeof version === 'string' ? version.slice(0, PACKAGE_VERSION_MAX) : undefined;
}

/** The code_id computed so far in this process, without computing it. */
export function cachedCodeId(): string | undefined {
  return cachedId;
}

/**
 * The process's code_id (computed on first call, then cached). `versions` are package versions
 * already read (snapshot.ts packageVersions), reused to avoid reading a package.json twice.
 * Returns undefined only if hashing is unavailable.
 */
export function codeId(
  runtime: Runtime,
  versions?: ReadonlyMap<TreeNode, string>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (cachedId !== undefined) return cachedId;
  try {
    cachedId = computeCodeId(runtime, versions, env);
  } catch {
    cachedId = undefined;
  }
  return cachedId;
}

/** Forgets the cached id (tests). */
export function resetCodeId(): void {
  cachedId = undefined;
}

export function computeCodeId(runtime: Runtime, versions: ReadonlyMap<TreeNode, string> | undefined, env: NodeJS.ProcessEnv): string {
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const taskRoot = runtime.taskRoot.endsWith('/') ? runtime.taskRoot.slice(0, -1) : runtime.taskRoot;
  const entries: string[] = [];

  // packages: name@version, each distinct pair once
  const versionByDir = new Map<string, string>();
  const packages = new Set<string>();
  const readVersion = (node: TreeNode): string => {
    const known = versions?.get(node) ?? node.version;
    if (known !== undefined) return known;
    const dir = node.packageDir!;
    let version = versionByDir.get(dir);
    if (version === undefined) {
      version = readPackageVersion(dir) ?? ''; // unversioned: ''
      versionByDir.set(dir, version);
    }
    return version;
  };
  const visit = (node: TreeNode): void => {
    if (node.children === undefined) return;
    const children = [...node.children.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const child of children) {
      if (packages.size >= MAX_ENTRIES) return;
      if (child.packageDir !== undefined) packages.add(`package ${child.key}@${readVersion(child)}`);
      visit(child);
    }
  };
  visit(runtime.recorder.root);
  entries.push(...packages);

  // own files by content
  const fileDigest = (path: string, limit: number): string | undefined => {
    try {
      // a missing candidate is the common case (up to 9 per own file): no error object for it
      const stat = statSync(path, { throwIfNoEntry: false });
      if (stat === undefined || !stat.isFile()) return undefined;
      if (stat.size > limit) return `size ${stat.size}`;
      return createHash('sha256').update(readFileSync(path)).digest('hex');
    } catch {
      return undefined;
    }
  };
  const ownKeys = [...runtime.recorder.selfNs.keys()].filter((key) => key.startsWith('./') || key.startsWith('/')).sort();
  for (const key of ownKeys.slice(0, MAX_ENTRIES)) {
    const base = key.startsWith('./') ? taskRoot + key.slice(1) : key;
    // keys carry no extension (attribution.ts): every candidate that exists is hashed
    for (const extension of SCRIPT_EXTENSIONS) {
      const digest = fileDigest(base + extension, MAX_OWN_FILE_BYTES);
      if (digest !== undefined) entries.push(`file ${key}${extension} ${digest}`);
    }
  }
  const handler = handlerFile(env);
  if (handler !== undefined) {
    const relative = handler.startsWith(taskRoot + '/') ? '.' + handler.slice(taskRoot.length) : handler;
    const digest = fileDigest(handler, Number.MAX_SAFE_INTEGER);
    if (digest !== undefined) entries.push(`handler ${relative} ${digest}`);
  }
  const manifest = fileDigest(taskRoot + '/package.json', MAX_OWN_FILE_BYTES);
  if (manifest !== undefined) entries.push(`manifest ${manifest}`);

  entries.sort();
  const hash = createHash('sha256');
  hash.update('coldstart code_id 1\n');
  for (const entry of entries) hash.update(entry + '\n');
  return hash.digest('hex').slice(0, 32);
}
