// `@coldstart/analyzer/esbuild`: an esbuild plugin that keeps per-module timing inside a bundle.
//
// In a bundle every require hook sees one file. The plugin puts a start and an end marker around
// each bundled module's source (onLoad), keyed at build time by what the SDK would call the module
// unbundled: the npm package name for a file under node_modules, else the path relative to the
// build's working directory (`./src/handlers/payment`). esbuild then wraps a CommonJS module (and
// an ES module that is required or imported dynamically) in its lazy `__commonJS` / `__esm`
// helpers, so the markers run when the module's body runs and nest as requires nest; the bodies of
// scope-hoisted ES modules run in dependency order, each between its own markers, as the SDK's
// ESM markers do unbundled. At run time the markers call the SDK's recorder (installed by the
// preload or by `analyze()`); without the SDK they do nothing.
//
// A bundle has no package.json files at run time, so the start marker of each file of a package
// also carries the package's version, read at build time from the package.json at the root of the
// package directory esbuild resolved the file in (the innermost `node_modules/<name>`), so that
// the record's module_tree has versions inside bundles too.
//
// After the build it writes `<output>.coldstart.json` next to each JavaScript output: bytes in the
// output per package and own file (from esbuild's metafile), for `coldstart profile`.
//
// The plugin does not import esbuild: esbuild hands it its build object.

import { readFile, writeFile } from 'node:fs/promises';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { attributeFile } from '../shared/attribution';
import { BUNDLE_MARKER_GLOBAL } from '../shared/constants';

/** The parts of esbuild's plugin API this plugin uses (structurally compatible with esbuild's types). */
export interface EsbuildPluginBuild {
  initialOptions: { absWorkingDir?: string; metafile?: boolean; write?: boolean; outdir?: string; outfile?: string };
  onLoad(
    options: { filter: RegExp; namespace?: string },
    callback: (args: {
      path: string;
      namespace: string;
    }) => Promise<{ contents: string; loader: SourceLoader; resolveDir?: string } | undefined>,
  ): void;
  onEnd(callback: (result: { metafile?: EsbuildMetafile; errors: unknown[] }) => void | Promise<void>): void;
}

export type SourceLoader = 'js' | 'jsx' | 'ts' | 'tsx';

export interface EsbuildMetafile {
  outputs: Record<string, { bytes: number; inputs: Record<string, { bytesInOutput: number }> }>;
}

export interface EsbuildPlugin {
  name: string;
  setup(build: EsbuildPluginBuild): void | Promise<void>;
}

export interface ColdstartEsbuildOptions {
  /** Files to instrument (default: JavaScript and TypeScript sources). */
  filter?: RegExp;
  /** Write `<output>.coldstart.json` with bytes per package (default true; needs `write` on). */
  sizes?: boolean;
}

/** Bundle sizes sidecar, read by `coldstart profile`. */
export interface BundleSizes {
  schema: 'coldstart-bundle';
  version: 1;
  output_bytes: number;
  /** bytes in the output per package name or own file (`./src/x`), largest first */
  modules: Record<string, number>;
}

const DEFAULT_FILTER = /\.(?:[cm]?[jt]s|[jt]sx)$/;
const LOADERS: Record<string, SourceLoader> = {
  '.js': 'js',
  '.mjs': 'js',
  '.cjs': 'js',
  '.jsx': 'jsx',
  '.ts': 'ts',
  '.mts': 'ts',
  '.cts': 'ts',
  '.tsx': 'tsx',
};
const SDK_FILES = /[\\/]node_modules[\\/]@coldstart[\\/]analyzer[\\/]/;
const CALL = `globalThis.${BUNDLE_MARKER_GLOBAL}?.`;

const MAX_VERSION = 64; // as the SDK clips versions read at run time

/** What the SDK calls a module: its package name, or its path relative to the working directory. */
export function moduleKey(path: string, workingDir: string): string {
  return attributeFile(path, workingDir).key;
}

/**
 * The source with markers: the start marker after a hashbang and directive prologue ("use
 * strict" must stay first), on the same line as the code that follows so that line numbers do not
 * change; the end marker on a new last line.
 */
export function instrument(source: string, id: number, key: string, version?: string): string {
  const start = `${CALL}(0,${id},${JSON.stringify(key)}${version !== undefined ? `,${JSON.stringify(version)}` : ''});`;
  const end = `\n;${CALL}(1,${id});\n`;
  let at = 0;
  if (source.startsWith('#!')) {
    const newline = source.indexOf('\n');
    if (newline < 0) return source;
    at = newline + 1;
  }
  // directive prologue: string-literal statements at the top (comments and whitespace allowed)
  const prologue = /^(?:\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*(?:(['"])use strict\1\s*;?)/.exec(source.slice(at));
  if (prologue === null) return source.slice(0, at) + start + source.slice(at) + end;
  at += prologue[0].length;
  // ';' ends a directive written without one ("use strict" then the marker on the same line)
  return source.slice(0, at) + ';' + start + source.slice(at) + end;
}

export function coldstartPlugin(options: ColdstartEsbuildOptions = {}): EsbuildPlugin {
  const filter = options.filter ?? DEFAULT_FILTER;
  return {
    name: 'coldstart-analyzer',
    setup(build) {
      const workingDir = build.initialOptions.absWorkingDir ?? process.cwd();
      let next = 0; // module ids: numbers keep the markers short (they are parsed at every cold start)
      const versions = new Map<string, Promise<string | undefined>>(); // per package directory
      const versionOf = (packageDir: string): Promise<string | undefined> => {
        let pending = versions.get(packageDir);
        if (pending === undefined) {
          pending = readFile(join(packageDir, 'package.json'), 'utf8').then(
            (text) => {
              const version = (JSON.parse(text) as { version?: unknown }).version;
              return typeof version === 'string' && version !== '' ? version.slice(0, MAX_VERSION) : undefined;
            },
            () => undefined,
          );
          versions.set(packageDir, pending);
        }
        return pending;
      };
      const sizes = options.sizes !== false;
      if (sizes) build.initialOptions.metafile = true;
      build.onLoad({ filter, namespace: 'file' }, async (args) => {
        if (SDK_FILES.test(args.path)) return undefined; // the SDK itself is overhead, not a module
        const loader = LOADERS[extname(args.path)];
        if (loader === undefined) return undefined;
        const who = attributeFile(args.path, workingDir);
        const id = next++;
        const [source, version] = await Promise.all([
          readFile(args.path, 'utf8'),
          who.packageDir !== undefined ? versionOf(who.packageDir) : undefined,
        ]);
        return { contents: instrument(source, id, who.key, version), loader, resolveDir: resolve(args.path, '..') };
      });
      if (sizes) {
        build.onEnd(async (result) => {
          if (result.errors.length > 0 || result.metafile === undefined || build.initialOptions.write === false) return;
          for (const [output, info] of Object.entries(result.metafile.outputs)) {
            if (!/\.[cm]?js$/.test(output)) continue;
            const modules: Record<string, number> = {};
            for (const [input, { bytesInOutput }] of Object.entries(info.inputs)) {
              const path = isAbsolute(input) ? input : join(workingDir, input);
              const key = input.includes(':') && !isAbsolute(input) ? input : moduleKey(path, workingDir);
              modules[key] = (modules[key] ?? 0) + bytesInOutput;
            }
            const sorted = Object.fromEntries(Object.entries(modules).sort((a, b) => b[1] - a[1]));
            const sidecar: BundleSizes = { schema: 'coldstart-bundle', version: 1, output_bytes: info.bytes, modules: sorted };
            await writeFile(join(workingDir, output) + '.coldstart.json', JSON.stringify(sidecar, null, 2) + '\n');
          }
        });
      }
    },
  };
}

export default coldstartPlugin;
