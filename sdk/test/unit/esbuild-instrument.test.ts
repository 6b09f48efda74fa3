import { describe, expect, it } from 'vitest';
import { instrument, moduleKey } from '../../src/esbuild/plugin';

describe('esbuild plugin: markers', () => {
  it('keeps "use strict" first, the hashbang, and line numbers', () => {
    const strict = instrument("'use strict';\nconst a = 1;\n", 7, './src/a');
    expect(strict.startsWith(`'use strict';;globalThis.__coldstart?.(0,7,"./src/a");`)).toBe(true);
    expect(strict.endsWith(`\n;globalThis.__coldstart?.(1,7);\n`)).toBe(true);
    expect(strict.split('\n')[1]).toBe('const a = 1;');
    const bang = instrument('#!/usr/bin/env node\n"use strict"\nx()', 1, 'b');
    expect(bang.split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(bang.split('\n')[1]).toBe('"use strict"');
    expect(bang.split('\n')[2]!.startsWith(';globalThis')).toBe(true);
    expect(bang.split('\n')[2]!.endsWith(');x()')).toBe(true);
    expect(() => new Function(instrument("'use strict' // no semicolon\nlet x = 1", 1, 'e'))).not.toThrow();
    const plain = instrument('import x from "y";\nx();', 1, 'c');
    expect(plain.startsWith('globalThis')).toBe(true);
    expect(plain.trimEnd().endsWith('?.(1,1);')).toBe(true);
    expect(new Function(instrument("'use strict'; return (function () { return this; })();", 1, 'd'))()).toBeUndefined();
  });

  it("carries a package's version in the start marker only", () => {
    const marked = instrument('x();\n', 3, '@aws-sdk/client-s3', '3.700.0');
    expect(marked.startsWith('globalThis.__coldstart?.(0,3,"@aws-sdk/client-s3","3.700.0");x();')).toBe(true);
    expect(marked.endsWith('\n;globalThis.__coldstart?.(1,3);\n')).toBe(true);
    expect(instrument('x();', 4, './src/a')).not.toContain('"./src/a",');
  });

  it('keys modules as the SDK does unbundled', () => {
    expect(moduleKey('/w/node_modules/@aws-sdk/client-s3/dist-cjs/index.js', '/w')).toBe('@aws-sdk/client-s3');
    expect(moduleKey('/w/node_modules/a/node_modules/b/x.js', '/w')).toBe('b');
    expect(moduleKey('/w/src/handlers/pay.ts', '/w')).toBe('./src/handlers/pay');
  });
});
