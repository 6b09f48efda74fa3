// Markers around the body of an ES module. ESM evaluates a module's dependencies before its
// body, so the time between a module's two markers is its own (self) time, apart from dynamic
// imports awaited inside it, which the recorder's stack separates out.
//
// The start marker goes on the first line (after a hashbang), so line numbers in stack traces are
// unchanged; the end marker goes on a new last line. A module that throws never reaches its end
// marker; the recorder closes it at the next event.

const CALL = 'globalThis[Symbol.for("coldstart.analyzer.esm")]?.';

export function injectMarkers(source: string): string {
  const start = `${CALL}(0,import.meta.url);`;
  const end = `\n;${CALL}(1,import.meta.url);\n`;
  if (source.startsWith('#!')) {
    const newline = source.indexOf('\n');
    if (newline < 0) return source;
    return source.slice(0, newline + 1) + start + source.slice(newline + 1) + end;
  }
  return start + source + end;
}

let decoder: { decode(input: Uint8Array): string } | undefined;

/** Source as the load hook got it (string, Buffer, TypedArray or ArrayBuffer) -> string. */
export function sourceText(source: unknown): string | undefined {
  if (typeof source === 'string') return source;
  if (source instanceof ArrayBuffer) return (decoder ??= new TextDecoder()).decode(new Uint8Array(source));
  if (ArrayBuffer.isView(source)) return (decoder ??= new TextDecoder()).decode(source as Uint8Array);
  return undefined;
}

/** Only plain files of format "module" are instrumented. */
export function shouldInstrument(url: string, format: unknown): boolean {
  return format === 'module' && url.startsWith('file:');
}
