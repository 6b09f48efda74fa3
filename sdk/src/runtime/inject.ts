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
// string Node would have decoded.
//
// That string is decoded once, already marked: the bytes and the markers are copied into one
// scratch buffer, reused for every module, and decoded from there. Decoding the bytes and then
// joining markers to them made a rope that V8 flattens when it compiles the module: every source
// was in the heap twice for a while. On the ES module handler of bench/sdk that was 0.6 MB of the
// SDK's 3 MB of allocation during init (the handler's own: 429 MB on Node.js 22), yet side by side
// its init + first response went from +2.9 % to +1.2 % on Node.js 22 (means of four runs,
// BENCHMARKS.md), and the handler's own last collection of init ran into the first response in
// 48 % of the environments instead of 65 % (28 % without the SDK). The scratch buffer is external memory the size of the largest
// module so far, one buffer, dropped when init ends (runtime.ts). The off-thread loader keeps its
// own for the hooks thread's life.

/** Markers calling `call` with (0 | 1, `ref`). */
export function markers(call: string, ref: string): [start: string, end: string] {
  return [`${call}(0,${ref});`, `\n;${call}(1,${ref});\n`];
}

/** The source with markers, as a string; undefined if it cannot be read. */
export function injectMarkers(source: unknown, markers: [string, string]): string | undefined {
  if (typeof source === 'string') return markText(source, markers);
  if (source instanceof ArrayBuffer) return markBytes(new Uint8Array(source), markers);
  if (ArrayBuffer.isView(source)) return markBytes(new Uint8Array(source.buffer, source.byteOffset, source.byteLength), markers);
  return undefined;
}

function markText(text: string, [start, end]: [string, string]): string {
  if (text.startsWith('#!')) {
    const newline = text.indexOf('\n');
    if (newline < 0) return text;
    return text.slice(0, newline + 1) + start + text.slice(newline + 1) + end;
  }
  return start + text + end;
}

/** Bytes and markers copied in order, to be decoded in one piece. */
let scratch: Buffer | undefined;

/** The scratch buffer goes: init is over (runtime.ts), modules loaded later are not marked. */
export function releaseScratch(): void {
  scratch = undefined;
}

/** UTF-8 bytes decoded once with the markers in place, a leading byte order mark dropped. */
function markBytes(bytes: Uint8Array, [start, end]: [string, string]): string {
  const begin = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  // where the start marker goes: the first line, or the second after a hashbang
  let split = begin;
  if (bytes[begin] === 0x23 && bytes[begin + 1] === 0x21) {
    const newline = bytes.indexOf(0x0a, begin);
    if (newline < 0) return Buffer.from(bytes.buffer, bytes.byteOffset + begin, bytes.length - begin).toString('utf8');
    split = newline + 1;
  }
  const size = bytes.length - begin + Buffer.byteLength(start) + Buffer.byteLength(end);
  if (scratch === undefined || scratch.length < size)
    scratch = Buffer.allocUnsafeSlow(Math.max(size, 2 * (scratch?.length ?? 0), 64 * 1024));
  const out = scratch;
  out.set(bytes.subarray(begin, split), 0);
  let at = split - begin;
  at += out.write(start, at);
  out.set(bytes.subarray(split), at);
  at += bytes.length - split;
  at += out.write(end, at);
  return out.toString('utf8', 0, at);
}

/** Only plain files of format "module" are instrumented. */
export function shouldInstrument(url: string, format: unknown): boolean {
  return format === 'module' && url.startsWith('file:');
}
