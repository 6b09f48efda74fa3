// Loads the invocation half of the SDK (dist/invoke.cjs) on first use. In the unbundled sources
// (unit tests), it is the invoke module itself.

type InvocationHalf = typeof import('../invoke/index');
let half: InvocationHalf | undefined;

export function invocationHalf(): InvocationHalf {
  if (half === undefined) {
    try {
      half = require('./invoke.cjs') as InvocationHalf;
    } catch {
      // Not a literal, even after minification (which folds constants): neither tsup nor a user's
      // bundler bundling dist/index.cjs must try to resolve it (esbuild fails on a missing file).
      const source = ['.', 'invoke'].join('/');
      half = require(source) as InvocationHalf;
    }
  }
  return half;
}
