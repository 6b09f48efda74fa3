// One line on stderr per distinct problem, per process: a misconfigured SDK must be visible
// in the function's logs without flooding them, and must never throw.

const KEY = Symbol.for('coldstart.analyzer.warned');
type Holder = { [KEY]?: Set<string> };

export function warnOnce(message: string): void {
  try {
    const holder = globalThis as Holder;
    const seen = (holder[KEY] ??= new Set<string>());
    if (seen.has(message)) return;
    seen.add(message);
    process.stderr.write(`[coldstart] ${message}\n`);
  } catch {
    // stderr closed: nothing else to do
  }
}
