// The markers put around ES module bodies (src/runtime/inject.ts).
import { describe, expect, test } from 'vitest';
import { injectMarkers, markers } from '../../src/runtime/inject';

const M = markers('__csaEsm', '7');

describe('injectMarkers', () => {
  test('bytes stay bytes (Node decodes them as without the SDK); strings stay strings', () => {
    const source = Buffer.from('import x from "y";\nexport const z = x;\n');
    const out = injectMarkers(source, M);
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(out as Uint8Array).toString()).toBe('__csaEsm(0,7);import x from "y";\nexport const z = x;\n\n;__csaEsm(1,7);\n');
    expect(injectMarkers('a();', M)).toBe('__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    // a view into a larger buffer: only its own bytes
    const big = Buffer.from('XXXXa();YYYY');
    expect(Buffer.from(injectMarkers(big.subarray(4, 8), M) as Uint8Array).toString()).toBe('__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    expect(Buffer.from(injectMarkers(new TextEncoder().encode('a();').buffer, M) as Uint8Array).toString()).toBe(
      '__csaEsm(0,7);a();\n;__csaEsm(1,7);\n',
    );
  });

  test('line numbers are kept: the start marker joins the first line, after a hashbang', () => {
    expect(injectMarkers('#!/usr/bin/env node\na();', M)).toBe('#!/usr/bin/env node\n__csaEsm(0,7);a();\n;__csaEsm(1,7);\n');
    expect(Buffer.from(injectMarkers(Buffer.from('#!/usr/bin/env node\na();'), M) as Uint8Array).toString()).toBe(
      '#!/usr/bin/env node\n__csaEsm(0,7);a();\n;__csaEsm(1,7);\n',
    );
    // a hashbang with nothing after it is left alone
    expect(injectMarkers('#!node', M)).toBe('#!node');
    expect(Buffer.from(injectMarkers(Buffer.from('#!node'), M) as Uint8Array).toString()).toBe('#!node');
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
