// Delivery of records to the backend over node:http(s) with keep-alive.
//
// Nothing here keeps the event loop alive: sockets and timers are unref'd, so Lambda's
// callbackWaitsForEmptyEventLoop and a plain `node` process are unaffected (outside Lambda, a
// process about to exit is held open briefly for what is still undelivered). Failed sends are
// retried (network error, 429, 5xx) with the same body, hence the same invocation_id: the backend
// ignores a record it already stored. Nothing here throws or rejects.
//
// Cold-start records (deliver) are kept until the backend has acknowledged them, retried with
// backoff for as long as the process lives: inside Lambda the process is frozen between
// invocations, and a retry whose time came while frozen runs as soon as the environment is thawed
// for its next invocation. The kept records are bounded (MAX_KEPT, MAX_KEPT_BYTES).

import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { BATCH_PATH, SDK_VERSION } from './constants';
import { warnOnce } from './warn';

export interface SendResult {
  ok: boolean;
  status?: number;
  attempts: number;
  error?: string;
  /** the start of the backend's answer to the last attempt (up to 300 characters), when it answered */
  detail?: string;
}

export interface SenderOptions {
  maxAttempts?: number;
  backoffMs?: number;
  maxQueue?: number;
  maxBatch?: number;
  /** a batch goes out once this many records wait... */
  batchSize?: number;
  /** ...or once the oldest has waited this long (ms) */
  maxDelayMs?: number;
  /** no warning when the endpoint cannot be reached (the caller handles it); HTTP errors still warn */
  quiet?: boolean;
  /** no warning at all: the caller reports every failure itself (`coldstart profile --send`) */
  silent?: boolean;
  /** how long one attempt of deliver() waits for the answer, ms (default 1000) */
  answerMs?: number;
}

/** Cold-start records kept for redelivery: at most this many, and this many bytes of bodies. */
const MAX_KEPT = 32;
const MAX_KEPT_BYTES = 4 * 1024 * 1024;
/** Longest pause between two attempts of a kept record, ms. */
const MAX_BACKOFF_MS = 30_000;
/** Outside Lambda, how long a process about to exit is held open for undelivered records, ms. */
const EXIT_HOLD_MS = 1000;

interface Kept {
  readonly bytes: number;
  dropped: boolean;
  wake: (() => void) | undefined;
  readonly done: Promise<SendResult>;
}

interface Attempt {
  status?: number;
  error?: string;
  detail?: string;
}

type HttpModule = typeof import('node:http');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Waits for `promise` at most `ms`, keeping the process alive meanwhile. */
export function holdOpen(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}

/**
 * Outside Lambda (scripts, tests) a process ends when its event loop is empty: what is still
 * undelivered is given EXIT_HOLD_MS first, once per new `pending()` count (0: nothing pending), so
 * that a dead endpoint cannot keep the process alive. Inside Lambda (AWS_LAMBDA_RUNTIME_API) the
 * process is frozen, not ended, and an empty loop is how the runtime knows a callback handler is
 * done: nothing is held there.
 */
export function holdBeforeExit(pending: () => number, settle: () => Promise<unknown>): void {
  if (process.env.AWS_LAMBDA_RUNTIME_API) return;
  let heldFor = 0;
  process.on('beforeExit', () => {
    const now = pending();
    if (now === 0 || now === heldFor) return;
    heldFor = now;
    void holdOpen(settle(), EXIT_HOLD_MS);
  });
}

function retryable(attempt: Attempt): boolean {
  if (attempt.status === undefined) return true;
  return attempt.status === 429 || attempt.status >= 500;
}

export class Sender {
  /** counters, for tests and debugging */
  readonly stats = { sent: 0, failed: 0, dropped: 0, requests: 0 };
  private readonly base: URL;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxQueue: number;
  private readonly maxBatch: number;
  private http: HttpModule | undefined;
  private agent: Agent | undefined;
  private queue: object[] = [];
  private inFlight: Promise<void> | undefined;
  private exitHookInstalled = false;
  private readonly batchSize: number;
  private readonly maxDelayMs: number;
  private readonly quiet: boolean;
  private readonly silent: boolean;
  private oldestAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private enqueued = 0;
  private readonly answerMs: number;
  private kept: Kept[] = [];
  private keptBytes = 0;

  constructor(
    endpoint: string,
    private readonly apiKey: string,
    options: SenderOptions = {},
  ) {
    this.base = new URL(endpoint.endsWith('/') ? endpoint : endpoint + '/');
    this.maxAttempts = options.maxAttempts ?? 3;
    this.backoffMs = options.backoffMs ?? 50;
    this.maxQueue = options.maxQueue ?? 5000;
    this.maxBatch = options.maxBatch ?? 1000;
    this.batchSize = options.batchSize ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 2000;
    this.quiet = options.quiet ?? false;
    this.silent = options.silent ?? false;
    this.answerMs = options.answerMs ?? 1000;
  }

  /**
   * Delivers one record, retrying (network errors, 429, 5xx) with backoff until the backend
   * acknowledges it, gives a final answer, or the record is pushed out by newer ones beyond
   * MAX_KEPT / MAX_KEPT_BYTES. Nothing waits for it; the promise is for tests and callers that
   * want to know. `onWritten` is called once the first attempt's bytes are in the kernel, or once
   * that attempt has failed (there is nothing to wait for then: the record is kept for later).
   */
  deliver(path: string, body: string, onWritten?: () => void): Promise<SendResult> {
    const bytes = Buffer.byteLength(body);
    let entry!: Kept;
    const done = (async (): Promise<SendResult> => {
      await Promise.resolve(); // `entry` is set
      let attempts = 0;
      let last: Attempt = {};
      try {
        for (;;) {
          if (entry.dropped) return { ok: false, attempts, error: 'dropped: too many records waiting' };
          attempts++;
          last = await this.post(path, body, this.answerMs, attempts === 1 ? onWritten : undefined);
          if (last.status !== undefined && last.status >= 200 && last.status < 300) return { ok: true, status: last.status, attempts };
          if (!retryable(last)) break;
          if (attempts === 1) this.report(last);
          const pause = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** Math.min(attempts - 1, 20)) * (0.5 + Math.random());
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pause);
            timer.unref();
            entry.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          entry.wake = undefined;
        }
      } catch (error) {
        last = { error: String(error) };
      }
      this.report(last);
      return { ok: false, status: last.status, attempts, error: last.error };
    })();
    entry = { bytes, dropped: false, wake: undefined, done };
    this.kept.push(entry);
    this.keptBytes += bytes;
    while (this.kept.length > MAX_KEPT || (this.keptBytes > MAX_KEPT_BYTES && this.kept.length > 1)) {
      const oldest = this.kept.shift()!;
      this.keptBytes -= oldest.bytes;
      oldest.dropped = true;
      oldest.wake?.();
      this.stats.dropped++;
      warnOnce('too many records waiting for the backend: the oldest was dropped');
    }
    void done.then(() => {
      const at = this.kept.indexOf(entry);
      if (at >= 0) {
        this.kept.splice(at, 1);
        this.keptBytes -= entry.bytes;
      }
    });
    this.holdAtExit();
    return done;
  }

  /** records given to deliver() and not yet acknowledged or given up */
  get waiting(): number {
    return this.kept.length;
  }

  /** Posts `body` to `path`, retrying until success, a final answer, or `deadline` (performance.now() ms). */
  async send(path: string, body: string, deadline: number): Promise<SendResult> {
    let attempts = 0;
    let last: Attempt = {};
    try {
      while (attempts < this.maxAttempts) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        attempts++;
        last = await this.post(path, body, left);
        if (last.status !== undefined && last.status >= 200 && last.status < 300) {
          return { ok: true, status: last.status, attempts };
        }
        if (!retryable(last)) break;
        const pause = this.backoffMs * 2 ** (attempts - 1) * (0.5 + Math.random());
        if (attempts >= this.maxAttempts || performance.now() + pause >= deadline) break;
        await sleep(pause);
      }
    } catch (error) {
      last = { error: String(error) };
    }
    this.report(last);
    return { ok: false, status: last.status, attempts, error: last.error, detail: last.detail };
  }

  /** Queues a warm record; a batch goes out when no other one is in flight. Never waits. */
  enqueue(record: object): void {
    if (this.queue.length >= this.maxQueue) {
      this.queue.shift();
      this.stats.dropped++;
    }
    if (this.queue.length === 0) this.oldestAt = performance.now();
    this.queue.push(record);
    this.enqueued++;
    // Batches amortise the HTTP cost: a request per record would cost more CPU than the
    // invocation itself. Inside Lambda the process is frozen between invocations, so the age
    // check also runs here, not only in the timer.
    if (this.inFlight === undefined) {
      if (this.queue.length >= this.batchSize || performance.now() - this.oldestAt >= this.maxDelayMs) {
        this.inFlight = this.drain();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          if (this.inFlight === undefined && this.queue.length > 0) this.inFlight = this.drain();
        }, this.maxDelayMs);
        this.timer.unref();
      }
    }
    this.holdAtExit();
  }

  private holdAtExit(): void {
    if (this.exitHookInstalled) return;
    this.exitHookInstalled = true;
    holdBeforeExit(
      () => (this.queue.length === 0 && this.inFlight === undefined && this.kept.length === 0 ? 0 : this.enqueued + this.kept.length),
      () => {
        for (const entry of this.kept) entry.wake?.(); // retry now rather than after the backoff
        return this.flush();
      },
    );
  }

  /** Resolves when the queue is empty and the kept records are delivered (or given up). */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
    if (this.queue.length > 0) {
      this.inFlight = this.drain(true);
      await this.inFlight;
    }
    await Promise.all(this.kept.map((entry) => entry.done));
  }

  get queued(): number {
    return this.queue.length;
  }

  private async drain(everything = false): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        if (this.queue.length > 0) this.oldestAt = performance.now();
        const body = JSON.stringify({ invocations: batch });
        const result = await this.send(BATCH_PATH, body, performance.now() + 10_000);
        if (result.ok) this.stats.sent += batch.length;
        else this.stats.failed += batch.length;
        // what queued meanwhile waits for a full batch (or its age limit), unless flushing
        if (!everything && this.queue.length < this.batchSize && performance.now() - this.oldestAt < this.maxDelayMs) break;
      }
    } catch {
      // never escapes
    } finally {
      this.inFlight = undefined;
      if (this.queue.length > 0 && this.timer === undefined) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          if (this.inFlight === undefined && this.queue.length > 0) this.inFlight = this.drain();
        }, this.maxDelayMs);
        this.timer.unref();
      }
    }
  }

  private report(attempt: Attempt): void {
    if (this.silent) return;
    if (attempt.status === 401 || attempt.status === 403) {
      warnOnce(`the backend rejected the API key (HTTP ${attempt.status}); records are not stored`);
    } else if (attempt.status === 400 || attempt.status === 422 || attempt.status === 413) {
      warnOnce(`the backend rejected a record (HTTP ${attempt.status}): ${attempt.detail ?? ''}`.trim());
    } else if (attempt.status !== undefined || !this.quiet) {
      warnOnce(`could not deliver records to ${this.base.origin}: ${attempt.error ?? `HTTP ${attempt.status}`}`);
    }
  }

  /** One request; `onWritten` is called once, when its bytes are in the kernel or it has ended. */
  private post(path: string, body: string, timeoutMs: number, onWritten?: () => void): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let request: ClientRequest | undefined;
      let written = onWritten;
      const out = (): void => {
        const callback = written;
        written = undefined;
        callback?.();
      };
      const finish = (attempt: Attempt): void => {
        out();
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        resolve(attempt);
      };
      try {
        const url = new URL(path.replace(/^\//, ''), this.base);
        // loaded (first use) before the clock starts: the answer time is the endpoint's, not ours
        const http = this.httpModule(url.protocol);
        timer = setTimeout(() => {
          finish({ error: 'no answer in time' });
          request?.destroy();
        }, timeoutMs);
        timer.unref();
        this.stats.requests++;
        request = http.request(
          url,
          {
            method: 'POST',
            agent: this.agent,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              'x-api-key': this.apiKey,
              'user-agent': `coldstart-analyzer-node/${SDK_VERSION}`,
            },
          },
          (response: IncomingMessage) => {
            const chunks: Buffer[] = [];
            let size = 0;
            response.on('data', (chunk: Buffer) => {
              if (size < 2048) chunks.push(chunk);
              size += chunk.length;
            });
            response.on('end', () => finish({ status: response.statusCode, detail: Buffer.concat(chunks).toString('utf8').slice(0, 300) }));
            response.on('error', (error: Error) => finish({ error: error.message }));
          },
        );
        request.on('socket', (socket) => socket.unref());
        request.on('error', (error: Error) => finish({ error: error.message }));
        request.on('finish', out);
        request.end(body);
      } catch (error) {
        finish({ error: String(error) });
      }
    });
  }

  private httpModule(protocol: string): HttpModule {
    if (this.http === undefined) {
      // Loaded on first use, after init: node:https pulls in TLS and would add to the cold start.
      this.http = (protocol === 'https:' ? require('node:https') : require('node:http')) as HttpModule;
      this.agent = new this.http.Agent({ keepAlive: true, maxSockets: 4 }) as Agent;
    }
    return this.http;
  }
}
