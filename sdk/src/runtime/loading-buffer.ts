// The ES module loading events of the hooks thread (module.register, Node.js 18.19+, 20, 22 before
// 22.15), handed to the main thread in a SharedArrayBuffer: the hooks thread (esm-loader.ts) writes
// one event per resolve of a new module and per load, the main thread (the recorder) reads them
// synchronously, without waiting on a message (one sent after init would come too late).
//
// Layout: a header of HEADER Int32 slots, then MAX_EVENTS events of EVENT_INTS Int32 slots (flags,
// URL offset, URL length) and of EVENT_TIMES BigInt64 slots (process.hrtime.bigint() at the hook's
// start, when Node's own resolve or load returned, when the hook returned: the same monotonic clock
// in both threads), then URL_BYTES bytes of URLs (latin1: file URLs are percent-encoded ASCII, and
// a load reuses its resolve's). The writer fills an event, then publishes it by storing the new
// count (Atomics); the reader reads up to the count it loaded. Bounded: past MAX_EVENTS events or
// URL_BYTES bytes, the writer stops and sets OVERFLOW (the record then says so, see Recorder).

/** header slots */
export const COUNT = 0;
export const URL_USED = 1;
export const OVERFLOW = 2;
/** 1 while the main thread's recorder records (init), 0 once it closed: the hooks stop writing */
export const RECORDING = 3;
const HEADER = 4;

export const EVENT_INTS = 3;
export const EVENT_TIMES = 3;
/** enough for about 8,000 modules (a resolve and a load each) */
export const MAX_EVENTS = 16_384;
export const URL_BYTES = 1 << 20;

/** event flags */
export const LOAD = 1; // else the resolve of a module not resolved before
export const OWN = 2; // a file of this SDK: its time is overhead
export const COUNTED = 4; // a load that counts as a module (no body marker, no CommonJS hook counts it)
export const COMMONJS = 8; // a load of format "commonjs" (evaluated later by require()'s loader)

const TIMES_AT = (HEADER + MAX_EVENTS * EVENT_INTS) * 4; // a multiple of 8
const URLS_AT = TIMES_AT + MAX_EVENTS * EVENT_TIMES * 8;

export const BUFFER_BYTES = URLS_AT + URL_BYTES;

export interface LoadingEvent {
  flags: number;
  url: string;
  /** when the hook started, when Node's resolve or load returned, when the hook returned (ns) */
  started: bigint;
  done: bigint;
  returned: bigint;
}

/** Views of the buffer, for either side. */
export class LoadingBuffer {
  readonly header: Int32Array;
  readonly ints: Int32Array;
  readonly times: BigInt64Array;
  readonly urls: Buffer;
  /** reader: events already read */
  private read = 0;

  constructor(readonly shared: SharedArrayBuffer) {
    this.header = new Int32Array(shared, 0, HEADER);
    this.ints = new Int32Array(shared, HEADER * 4, MAX_EVENTS * EVENT_INTS);
    this.times = new BigInt64Array(shared, TIMES_AT, MAX_EVENTS * EVENT_TIMES);
    this.urls = Buffer.from(shared, URLS_AT, URL_BYTES);
  }

  static create(): LoadingBuffer {
    const buffer = new LoadingBuffer(new SharedArrayBuffer(BUFFER_BYTES));
    Atomics.store(buffer.header, RECORDING, 1);
    return buffer;
  }

  get recording(): boolean {
    return Atomics.load(this.header, RECORDING) === 1;
  }

  stop(): void {
    Atomics.store(this.header, RECORDING, 0);
  }

  get overflowed(): boolean {
    return Atomics.load(this.header, OVERFLOW) === 1;
  }

  /**
   * Writer: stores `url` once (returns its [offset, length], or undefined if there is no room).
   */
  storeUrl(url: string): [number, number] | undefined {
    const at = this.header[URL_USED]!;
    if (at + url.length > URL_BYTES) return undefined;
    const length = this.urls.write(url, at, 'latin1');
    this.header[URL_USED] = at + length;
    return [at, length];
  }

  /** Writer: appends an event and publishes it; false (and OVERFLOW set) when full. */
  write(flags: number, url: [number, number] | undefined, started: bigint, done: bigint, returned: bigint): boolean {
    const index = this.header[COUNT]!;
    if (url === undefined || index >= MAX_EVENTS) {
      Atomics.store(this.header, OVERFLOW, 1);
      return false;
    }
    const ints = index * EVENT_INTS;
    this.ints[ints] = flags;
    this.ints[ints + 1] = url[0];
    this.ints[ints + 2] = url[1];
    const times = index * EVENT_TIMES;
    this.times[times] = started;
    this.times[times + 1] = done;
    this.times[times + 2] = returned;
    Atomics.store(this.header, COUNT, index + 1);
    return true;
  }

  /** Reader: the events published since the last call, in the order they were written. */
  take(): LoadingEvent[] {
    const count = Atomics.load(this.header, COUNT);
    const events: LoadingEvent[] = [];
    for (; this.read < count; this.read++) {
      const ints = this.read * EVENT_INTS;
      const times = this.read * EVENT_TIMES;
      const at = this.ints[ints + 1]!;
      events.push({
        flags: this.ints[ints]!,
        url: this.urls.toString('latin1', at, at + this.ints[ints + 2]!),
        started: this.times[times]!,
        done: this.times[times + 1]!,
        returned: this.times[times + 2]!,
      });
    }
    return events;
  }

  /** Reader: whether events wait to be read (one Atomics load). */
  get pending(): boolean {
    return Atomics.load(this.header, COUNT) > this.read;
  }
}
