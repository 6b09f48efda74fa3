// Delivery of records to the backend over node:http(s) with keep-alive.
//
// Nothing here keeps the event loop alive: sockets and timers are unref'd, so Lambda's
// callbackWaitsForEmptyEventLoop and a plain `node` process are unaffected. A caller that must
// wait (the end of the first invocation) holds the loop open itself with holdOpen(), for a bounded
// time. Failed sends are retried (network error, 429, 5xx) with the same body, hence the same
// invocation_id: the backend ignores a record it already stored. Nothing here throws or rejects.

import type { Agent, ClientRequest, IncomingMessage } from 'node:http';
import { BATCH_PATH, SDK_VERSION } from './constants';
import { warnOnce } from './warn';

export interface SendResult {
  ok: boolean;
  status?: number;
  attempts: number;
  error?: string;
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
}

interface Attempt {
  status?: number;
  error?: string;
  detail?: string;
}

type HttpModule = typeof import('node:http');

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms).unref());

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
  private oldestAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private enqueued = 0;

  constructor(endpoint: string, private readonly apiKey: string, options: SenderOptions = {}) {
    this.base = new URL(endpoint.endsWith('/') ? endpoint : endpoint + '/');
    this.maxAttempts = options.maxAttempts ?? 3;
    this.backoffMs = options.backoffMs ?? 50;
    this.maxQueue = options.maxQueue ?? 5000;
    this.maxBatch = options.maxBatch ?? 1000;
    this.batchSize = options.batchSize ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 2000;
    this.quiet = options.quiet ?? false;
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
    return { ok: false, status: last.status, attempts, error: last.error };
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
    if (!this.exitHookInstalled) {
      // Outside Lambda (scripts, tests) the process ends when the loop is empty: send what is
      // left first, for at most 1 s. Inside Lambda the runtime's loop never empties.
      // Once per batch of new records, so that a dead endpoint cannot keep the process alive.
      this.exitHookInstalled = true;
      let heldFor = -1;
      process.on('beforeExit', () => {
        if (heldFor === this.enqueued || (this.queue.length === 0 && this.inFlight === undefined)) return;
        heldFor = this.enqueued;
        void holdOpen(this.flush(), 1000);
      });
    }
  }

  /** Resolves when the queue is empty (or its records were given up). */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
    if (this.queue.length > 0) {
      this.inFlight = this.drain(true);
      await this.inFlight;
    }
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
    if (attempt.status === 401 || attempt.status === 403) {
      warnOnce(`the backend rejected the API key (HTTP ${attempt.status}); records are not stored`);
    } else if (attempt.status === 400 || attempt.status === 422 || attempt.status === 413) {
      warnOnce(`the backend rejected a record (HTTP ${attempt.status}): ${attempt.detail ?? ''}`.trim());
    } else if (attempt.status !== undefined || !this.quiet) {
      warnOnce(`could not deliver records to ${this.base.origin}: ${attempt.error ?? `HTTP ${attempt.status}`}`);
    }
  }

  private post(path: string, body: string, timeoutMs: number): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let request: ClientRequest | undefined;
      const finish = (attempt: Attempt): void => {
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
            response.on('end', () =>
              finish({ status: response.statusCode, detail: Buffer.concat(chunks).toString('utf8').slice(0, 300) }),
            );
            response.on('error', (error: Error) => finish({ error: error.message }));
          },
        );
        request.on('socket', (socket) => socket.unref());
        request.on('error', (error: Error) => finish({ error: error.message }));
        request.end(body);
      } catch (error) {
        finish({ error: String(error) });
      }
    });
  }

  private httpModule(protocol: string): HttpModule {
    if (this.http === undefined) {
      // Loaded on first use, after init: node:https pulls in TLS and would add to the cold start.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      this.http = (protocol === 'https:' ? require('node:https') : require('node:http')) as HttpModule;
      this.agent = new this.http.Agent({ keepAlive: true, maxSockets: 4 }) as Agent;
    }
    return this.http;
  }
}
