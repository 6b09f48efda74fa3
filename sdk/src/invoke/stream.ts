// The coldstart extension's stream endpoint: one persistent loopback connection, one JSON line per
// record, acknowledged asynchronously with cumulative counts (the protocol is described in
// extension/src/stream.h). A record costs one socket.write, which libuv hands to the kernel at
// once when it can; nothing waits for the extension's answer.
//
// Every record written stays in `unacked` until an "ack <n>" covers it. When the connection fails
// (refused, reset, closed, an answer that is not the protocol, too many records unacknowledged),
// the stream is down for good and every unacknowledged record is handed back to the owner
// (onDown), which sends it another way: the backend and the extension both store a record once
// per invocation_id, so a record the extension had taken but not yet acknowledged costs nothing.
// The socket is unref'd: it never keeps the process alive. Nothing here throws.
//
// The hello asks the extension whether it can build warm records itself, from Lambda's reports
// ("warm":"platform"); an extension that can answers "offer platform" (`offered`), and the owner
// may then leave its warm records to it with a control line (control()): Delivery.leaveWarm.

import type { Socket } from 'node:net';
import { helloLine, type EarlyStream } from '../shared/extension-endpoint';
import { warnOnce } from '../shared/warn';

export interface StreamEntry {
  /** the record as JSON, without the newline */
  readonly line: string;
  /** a warm record: resent in a batch (absent: a cold-start copy, resent on its own) */
  readonly record?: object;
}

/**
 * A timer that fires this much later than asked was held up: the environment was frozen (Lambda
 * freezes it between invocations) or the thread was busy. What it waited for may be ready in the
 * same turn of the event loop (timers run before I/O callbacks), so such a wait is given its time
 * again instead of ending.
 */
const LATE_MS = 50;

/**
 * Records written and not acknowledged beyond this: the extension is taken for hung (it
 * acknowledges at least every 64 records, and within a second of the last one).
 */
const MAX_UNACKED = 1000;
/** An answer line longer than this is not the protocol. */
const MAX_ANSWER = 4096;

export type StreamDown = (unacked: StreamEntry[], connected: boolean, why: string) => void;
/** "done <request id>": the extension has taken care of every invocation left to it up to that one */
export type StreamDone = (requestId: string) => void;

export class Stream {
  private socket: Socket | undefined;
  private connected = false;
  private down = false;
  private unacked: StreamEntry[] = [];
  /** records acknowledged so far (the extension's cumulative count) */
  private acked = 0;
  /** writes handed to the socket (hello included), and those the kernel has taken */
  private written = 0;
  private inKernel = 0;
  private waiters: { n: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }[] = [];
  private answer = '';
  private offer = false;
  private readonly onFlushed = (error?: Error | null): void => {
    if (error) return; // 'error' follows and takes the stream down
    this.inKernel++;
    if (this.waiters.length > 0) this.wake();
  };

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly apiKey: string,
    private readonly onDown: StreamDown,
    private readonly onDone: StreamDone = () => undefined,
    /** a connection to the same endpoint opened earlier (connectEarly), adopted at the first use */
    private early?: EarlyStream,
  ) {}

  get isDown(): boolean {
    return this.down;
  }

  /** A record written now goes straight to the kernel: connected, and nothing waits in user space. */
  get flowing(): boolean {
    return !this.down && this.connected && this.socket !== undefined && this.socket.writableLength === 0;
  }

  /** The extension offered to build warm records from Lambda's reports. */
  get offered(): boolean {
    return this.offer && !this.down;
  }

  /**
   * Writes a control line (not a record: never acknowledged, never resent). Returns false when the
   * stream is down or not connected yet.
   */
  control(line: string): boolean {
    if (this.down || !this.connected || this.socket === undefined) return false;
    try {
      this.written++;
      this.socket.write(line + '\n', this.onFlushed);
      return true;
    } catch (error) {
      this.fail(String(error));
      return false;
    }
  }

  /** Opens the connection (and sends the hello) if it is not open yet. */
  connect(): void {
    if (this.down || this.socket !== undefined) return;
    try {
      this.open();
    } catch (error) {
      this.fail(String(error));
    }
  }

  /** records written and not yet acknowledged, for tests and debugging */
  get pending(): number {
    return this.unacked.length;
  }

  /**
   * Writes one record (connecting at the first). Returns true when its bytes are already in the
   * kernel (nothing left to wait for), false when they wait in user space (connecting, or the
   * socket's buffer is full): then flushed() tells when they have gone.
   */
  write(entry: StreamEntry): boolean {
    if (this.down) return true;
    try {
      const socket = this.socket ?? this.open();
      this.unacked.push(entry);
      if (this.unacked.length > MAX_UNACKED) {
        this.fail(`${MAX_UNACKED} records not acknowledged`);
        return true;
      }
      this.written++;
      socket.write(entry.line + '\n', this.onFlushed);
      return this.connected && socket.writableLength === 0;
    } catch (error) {
      this.fail(String(error));
      return true;
    }
  }

  /**
   * Resolves true once everything written so far is in the kernel, false if the stream goes down
   * first or `ms` pass (awake: a wait that spans a freeze is given its time again once, see
   * LATE_MS). Never rejects. Does not keep the process alive (callers that must wait use holdOpen).
   */
  flushed(ms: number): Promise<boolean> {
    if (this.down) return Promise.resolve(false);
    if (this.inKernel >= this.written && this.connected) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const wait = Math.max(0, ms);
      const waiter = { n: this.written, resolve, timer: undefined as unknown as NodeJS.Timeout };
      const arm = (again: boolean): void => {
        const due = performance.now() + wait;
        waiter.timer = setTimeout(() => {
          if (!again && performance.now() - due > LATE_MS) arm(true);
          else this.settle(waiter, false);
        }, wait);
        waiter.timer.unref();
      };
      arm(false);
      this.waiters.push(waiter);
    });
  }

  /** Takes the stream down (see the header); the unacknowledged records go to onDown. */
  fail(why: string): void {
    if (this.down) return;
    this.down = true;
    const unacked = this.unacked;
    this.unacked = [];
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    try {
      this.socket?.destroy();
    } catch {
      // already gone
    }
    this.onDown(unacked, this.connected, why);
  }

  private open(): Socket {
    const early = this.early;
    this.early = undefined;
    if (early !== undefined) return this.adopt(early);
    const net = require('node:net') as typeof import('node:net');
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    socket.unref();
    this.listen(socket);
    this.written++;
    socket.write(helloLine(this.apiKey), this.onFlushed);
    return socket;
  }

  /** Takes over a connection opened (and greeted) before this Stream existed. */
  private adopt(early: EarlyStream): Socket {
    const socket = early.socket;
    this.socket = socket;
    this.written++; // the hello
    if (early.helloFlushed) this.inKernel++;
    else early.onHelloFlushed = () => this.onFlushed();
    this.listen(socket);
    if (!socket.connecting && !socket.destroyed) this.connected = true;
    // an error or close before the adoption: the stream goes down once the caller's record is in
    // `unacked`, so that it is sent another way
    if (early.error !== undefined || socket.destroyed) {
      const why = early.error?.code ?? early.error?.message ?? 'connection closed';
      process.nextTick(() => this.fail(why));
    }
    return socket;
  }

  private listen(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      this.connected = true;
      if (this.waiters.length > 0) this.wake();
    });
    socket.on('data', (chunk: string) => this.read(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error.code ?? error.message));
    socket.on('close', () => this.fail('connection closed'));
  }

  private read(chunk: string): void {
    const text = this.answer + chunk;
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      const line = text.slice(start, end);
      start = end + 1;
      const [word, count, ...reason] = line.split(' ');
      const n = Number(count);
      if (word === 'ack' && Number.isSafeInteger(n) && n >= this.acked && n - this.acked <= this.unacked.length) {
        this.unacked.splice(0, n - this.acked);
        this.acked = n;
      } else if (word === 'offer' && count === 'platform' && reason.length === 0) {
        this.offer = true;
      } else if (word === 'done' && this.offer && count !== undefined && count !== '' && reason.length === 0) {
        this.onDone(count);
      } else if (word === 'rej' && Number.isSafeInteger(n)) {
        // a record the extension cannot take (the backend would refuse it too): not resent
        warnOnce(`the coldstart extension rejected a record: ${reason.join(' ').slice(0, 200)}`);
      } else {
        this.fail(`unexpected answer ${JSON.stringify(line.slice(0, 80))}`);
        return;
      }
    }
    this.answer = text.slice(start);
    if (this.answer.length > MAX_ANSWER) this.fail('unexpected answer');
  }

  private wake(): void {
    if (!this.connected) return;
    for (const waiter of this.waiters.slice()) if (this.inKernel >= waiter.n) this.settle(waiter, true);
  }

  private settle(waiter: Stream['waiters'][number], ok: boolean): void {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return;
    this.waiters.splice(index, 1);
    clearTimeout(waiter.timer);
    waiter.resolve(ok);
  }
}
