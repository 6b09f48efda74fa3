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
// off-thread loader, which shares no table with the main thread). Which modules are the SDK's
// own, never instrumented, is shared/sdk-files.ts.
//
// A source that came as bytes is given back as a string, decoded as Node.js decodes an ES module's
// bytes (UTF-8, a byte order mark dropped). Giving back marked bytes meant a second buffer the size
// of every module's source: on the ES module handler of bench/sdk (AWS SDK v3 + date-fns, Node.js
// 24) that external memory made V8 start one more full collection, which was still marking when
// init ended and finished in the first response: +25-35 ms (median 35 ms against 3 ms without the
// SDK, bench/sdk/COLD-REQUEST.md, 2026-12-06 17:36). As a string, the marked source replaces the
// string Node would have decoded (the joined parts are young garbage, collected cheaply), and the
// first response is as fast as without the SDK.

/** Markers calling `call` with (0 | 1, `ref`). */
export function markers(call: string, ref: string): [start: string, end: string] {
  return [`${call}(0,${ref});`, `\n;${call}(1,${ref});\n`];
}

/** The source with markers, as a string; undefined if it cannot be read. */
export function injectMarkers(source: unknown, [start, end]: [string, string]): string | undefined {
  let text: string;
  if (typeof source === 'string') text = source;
  else if (source instanceof ArrayBuffer) text = decodeUtf8(Buffer.from(source));
  else if (ArrayBuffer.isView(source)) text = decodeUtf8(Buffer.from(source.buffer, source.byteOffset, source.byteLength));
  else return undefined;
  if (text.startsWith('#!')) {
    const newline = text.indexOf('\n');
    if (newline < 0) return text;
    return text.slice(0, newline + 1) + start + text.slice(newline + 1) + end;
  }
  return start + text + end;
}

/** UTF-8 as Node.js decodes a module's bytes (TextDecoder's default): a leading byte order mark dropped. */
function decodeUtf8(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Only plain files of format "module" are instrumented. */
export function shouldInstrument(url: string, format: unknown): boolean {
  return format === 'module' && url.startsWith('file:');
}
