// Markers around the body of an ES module. ESM evaluates a module's dependencies before its
// body, so the time between a module's two markers is its own (self) time, apart from dynamic
// imports awaited inside it, which the recorder's stack separates out.
//
// The start marker goes on the first line (after a hashbang), so line numbers in stack traces are
// unchanged; the end marker goes on a new last line. A module that throws never reaches its end
// marker; the recorder closes it at the next event.
//
// The markers are given by the caller: a bare global call with a module number (in-thread hooks,
// cheapest for Node.js to compile, see constants.ts) or a guarded call with import.meta.url (the
// off-thread loader, which shares no table with the main thread). A source that came as bytes is
// given back as bytes (Node decodes it as it would without the SDK). Which modules are the SDK's
// own, never instrumented, is shared/sdk-files.ts.

/** Markers calling `call` with (0 | 1, `ref`). */
export function markers(call: string, ref: string): [start: string, end: string] {
  return [`${call}(0,${ref});`, `\n;${call}(1,${ref});\n`];
}

/** The source with markers, of the same kind (string or bytes); undefined if it cannot be read. */
export function injectMarkers(source: unknown, [start, end]: [string, string]): string | Uint8Array | undefined {
  if (typeof source === 'string') {
    if (source.startsWith('#!')) {
      const newline = source.indexOf('\n');
      if (newline < 0) return source;
      return source.slice(0, newline + 1) + start + source.slice(newline + 1) + end;
    }
    return start + source + end;
  }
  let bytes: Uint8Array;
  if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else if (ArrayBuffer.isView(source)) bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  else return undefined;
  let head = 0;
  if (bytes[0] === 0x23 && bytes[1] === 0x21) {
    // #! line
    const newline = bytes.indexOf(0x0a);
    if (newline < 0) return bytes;
    head = newline + 1;
  }
  // the markers are ASCII: one byte per character
  const out = Buffer.allocUnsafe(bytes.length + start.length + end.length);
  out.set(bytes.subarray(0, head), 0);
  out.write(start, head, 'latin1');
  out.set(bytes.subarray(head), head + start.length);
  out.write(end, bytes.length + start.length, 'latin1');
  return out;
}

/** Only plain files of format "module" are instrumented. */
export function shouldInstrument(url: string, format: unknown): boolean {
  return format === 'module' && url.startsWith('file:');
}
