import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('./package.json', 'utf8')) as { version: string };
const define = { __SDK_VERSION__: JSON.stringify(version) };

// One CommonJS core (dist/index.cjs) is the only copy of the SDK's state: the ESM entry points in
// esm/ re-export it, so a process that preloads with --import and imports from ESM code still has
// one recorder. The off-thread ESM loader (used where module.registerHooks is missing) is its own
// small ES module, loaded by module.register() in the hooks thread.
export default defineConfig([
  {
    // index: what init needs (hooks, recorder, analyze); invoke: the rest, loaded at the first invocation.
    // The index bundle's entry is src/runtime/main.ts (plain module.exports); its types come from
    // src/runtime/index.ts.
    entry: { index: 'src/runtime/main.ts', invoke: 'src/invoke/index.ts' },
    external: ['./invoke.cjs'],
    minify: true,
    format: ['cjs'],
    target: 'node18',
    platform: 'node',
    outExtension: () => ({ js: '.cjs' }),
    // one self-contained declaration file (copied to index.d.mts for ESM consumers by the build script)
    dts: { entry: { index: 'src/runtime/index.ts' } },
    clean: false, // the build script empties dist first (two configs build in parallel)
    define,
    sourcemap: false,
  },
  {
    // the command line (`coldstart profile`): its own bundle, never loads the hooks into itself
    entry: { cli: 'src/cli/main.ts' },
    format: ['cjs'],
    target: 'node18',
    platform: 'node',
    outExtension: () => ({ js: '.cjs' }),
    banner: { js: '#!/usr/bin/env node' },
    define,
  },
  {
    // the esbuild plugin (@coldstart/analyzer/esbuild): build-time code, never loaded in a function
    entry: { esbuild: 'src/esbuild/plugin.ts' },
    format: ['cjs'],
    target: 'node18',
    platform: 'node',
    outExtension: () => ({ js: '.cjs' }),
    dts: { entry: { esbuild: 'src/esbuild/plugin.ts' } },
    define,
  },
  {
    entry: { 'esm-loader': 'src/runtime/esm-loader.ts' },
    format: ['esm'],
    target: 'node18',
    platform: 'node',
    outExtension: () => ({ js: '.mjs' }),
    define,
  },
]);
