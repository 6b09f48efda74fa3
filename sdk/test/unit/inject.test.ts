// The markers put around ES module bodies (src/runtime/inject.ts).
import { describe, expect, test } from 'vitest';
import { injectMarkers, markers } from '../../src/runtime/inject';

const M = markers('__csaEsm', '7');

describe('injectMarkers', () => {
  test('bytes come back as the string Node.js would decode (no second buffer); strings stay strings', () => {
    const source = Buffer.from('import x from "y";\nexport const z = x;\n');
    expect(injectMarkers(source, M)).toBe('__csaEsm(0,7);import x from "y";\nexport const z = x;\n\n;__csaEsm(1,7);\n');
    expect(injectMarkers('a();', M)).toBe('__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    // a view into a larger buffer: only its own bytes
    const big = Buffer.from('XXXXa();YYYY');
    expect(injectMarkers(big.subarray(4, 8), M)).toBe('__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    expect(injectMarkers(new TextEncoder().encode('a();').buffer, M)).toBe('__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    // UTF-8 decoded, a byte order mark dropped (as Node.js's TextDecoder does), not the markers' bytes
    expect(injectMarkers(Buffer.from('\ufeffconst s = "é€😀";'), M)).toBe('__csaEsm(0,7);const s = "é€😀";\n;__csaEsm(1,7);\n');
  });

  test('one module after another, small and large: each decoded from its own bytes only', () => {
    // the bytes are copied into one buffer reused from module to module (inject.ts): nothing of a
    // longer module before may show in a shorter one after, and a larger one makes it grow
    const large = `export const big = "${'é'.repeat(50_000)}";\n`;
    const larger = `export const bigger = "${'x'.repeat(300_000)}";`;
    expect(injectMarkers(Buffer.from(large), M)).toBe(`__csaEsm(0,7);${large}\n;__csaEsm(1,7);\n`);
    expect(injectMarkers(Buffer.from('a();'), M)).toBe('__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    expect(injectMarkers(Buffer.from(larger), M)).toBe(`__csaEsm(0,7);${larger}\n;__csaEsm(1,7);\n`);
    // a byte order mark before a hashbang: dropped, the hashbang line kept first
    expect(injectMarkers(Buffer.from('\ufeff#!/usr/bin/env node\nb();'), M)).toBe(
      '#!/usr/bin/env node\n__csaEsm(0,7);b();\n;__csaEsm(1,7);\n',
    );
    expect(injectMarkers(Buffer.from(''), M)).toBe('__csaEsm(0,7);\n;__csaEsm(1,7);\n');
  });

  test('line numbers are kept: the start marker joins the first line, after a hashbang', () => {
    expect(injectMarkers('#!/usr/bin/env node\na();', M)).toBe('#!/usr/bin/env node\n__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    expect(injectMarkers(Buffer.from('#!/usr/bin/env node\na();'), M)).toBe('#!/usr/bin/env node\n__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    // a hashbang with nothing after it is left alone
    expect(injectMarkers('#!node', M)).toBe('#!node');
    expect(injectMarkers(Buffer.from('#!node'), M)).toBe('#!node');
  });

  test('a source ending in a line comment still gets a working end marker', () => {
    const out = injectMarkers('a(); // done', M) as string;
    const calls: number[] = [];
    new Function('__csaEsm', 'a', out)(
      (kind: number) => calls.push(kind),
      () => undefined,
    );
    expect(calls).toEqual([0, 1]);
  });

  test('sources it cannot read are left to the caller', () => {
    expect(injectMarkers(undefined, M)).toBeUndefined();
    expect(injectMarkers(42, M)).toBeUndefined();
  });
});
