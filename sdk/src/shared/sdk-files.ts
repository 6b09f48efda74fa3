// Which modules are the SDK's own: the runtime's hooks (CommonJS and ESM, in-thread and the
// off-thread loader) and the CLI's CPU-profile attribution leave them out, so shared by the
// index, esm-loader and cli bundles.

const INSTALLED = '/node_modules/@coldstart/analyzer/';

/**
 * The SDK's own modules: under `sdkRoot` (the folder holding its package.json, as a file: URL or a
 * path, ending in /) the files it ships (dist/, esm/, handler.mjs, register.cjs), and any installed
 * copy of the package (`node_modules/@coldstart/analyzer/`). They are never instrumented or timed as a package: their
 * loading is the SDK's overhead, and the handler redirect's import of the handler is not theirs.
 */
export function sdkFiles(sdkRoot: string): (url: string) => boolean {
  const shipped = [sdkRoot + 'dist/', sdkRoot + 'esm/', sdkRoot + 'handler.mjs', sdkRoot + 'register.cjs'];
  // called for every module resolved and loaded: one prefix test for nearly all of them
  return (url) => url.includes(INSTALLED) || (url.startsWith(sdkRoot) && shipped.some((prefix) => url.startsWith(prefix)));
}
