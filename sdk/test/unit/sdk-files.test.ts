// Which modules are the SDK's own (src/shared/sdk-files.ts): never instrumented or timed as a package.
import { describe, expect, test } from 'vitest';
import { sdkFiles } from '../../src/shared/sdk-files';

describe('sdkFiles', () => {
  test("the SDK's shipped files and any installed copy, not the rest of its folder (its tests)", () => {
    const own = sdkFiles('file:///work/sdk/');
    expect(own('file:///work/sdk/handler.mjs')).toBe(true);
    expect(own('file:///work/sdk/esm/index.mjs')).toBe(true);
    expect(own('file:///work/sdk/dist/index.cjs')).toBe(true);
    expect(own('file:///work/sdk/test/fixtures/app/index.mjs')).toBe(false);
    expect(own('file:///var/task/node_modules/@coldstart/analyzer/handler.mjs')).toBe(true);
    expect(own('file:///var/task/node_modules/@coldstart/analyzer-other/index.js')).toBe(false);
    const paths = sdkFiles('/opt/nodejs/node_modules/@coldstart/analyzer/');
    expect(paths('/opt/nodejs/node_modules/@coldstart/analyzer/dist/invoke.cjs')).toBe(true);
    expect(paths('/var/task/index.js')).toBe(false);
  });
});
