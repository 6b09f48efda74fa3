// ES module entry of the esbuild plugin: re-exports the CommonJS build.
import plugin from '../dist/esbuild.cjs';

export const coldstartPlugin = plugin.coldstartPlugin;
export const instrument = plugin.instrument;
export const moduleKey = plugin.moduleKey;
export default plugin.coldstartPlugin;
