// Where records go: the function's logs with the logs transport (LogSink), else the coldstart
// Lambda extension when it is installed, else the backend (config.endpoint).
//
// The extension (extension/, a layer that unpacks to /opt/extensions/coldstart) takes records on
// 127.0.0.1 and ships them itself after the response has gone out, joined with Lambda's own
// figures. The SDK keeps one persistent connection to its stream endpoint (port 7244, stream.ts):
// each record is one JSON line written to the socket, acknowledged asynchronously by the
// extension. A warm invocation waits for nothing unless its bytes could not be handed to the
// kernel at once (still connecting, or the socket's buffer full): then it waits for that, at most
// EXTENSION_ANSWER_MS, so that no record is left in this process when Lambda freezes it. The
// cold-start copies are written after the response and waited for by nothing; if they are not in
// the kernel within EXTENSION_COLD_ANSWER_MS of awake time the extension is taken for gone.
// Records not yet acknowledged when the stream fails are sent again to
// the backend directly (the backend and the extension store each invocation_id once). A warm
// record that waits for nothing is built and written after the function's response has gone out
// (warmAfterResponse).
// An extension that can build warm records from Lambda's own reports offers to on the stream
// (stream.ts); the SDK then leaves them to it (leaveWarm): it sends a template of the fields that
// are the same for every invocation once, and from then on a warm invocation writes nothing at all.
// It keeps what it needs to build each such record itself until the extension says it has taken
// care of that invocation ("done", every 64 invocations or 10 s): if the stream fails first, those records
// go to the backend directly, like the unacknowledged ones.
// When the stream endpoint refuses the very first connection, the extension's HTTP endpoint
// (127.0.0.1:7242, the backend's ingest API, answering 202 at once) is used instead, one awaited
// POST per record: that is an extension layer older than this SDK. If that one refuses or does not
// answer in time either, that record and every later one go to the backend directly.

import type { ResolvedConfig } from '../runtime/config';
import type { Later } from '../runtime/start';
import { EXTENSION_ANSWER_MS, EXTENSION_COLD_ANSWER_MS, INGEST_PATH, LOG_RECORD_KEY, MAX_LOG_LINE_BYTES } from '../shared/constants';
import { holdBeforeExit, Sender, type SendResult } from '../shared/sender';
import { Stream, type StreamEntry } from './stream';
import { extensionEndpoint, extensionStream, type EarlyStream } from '../shared/extension-endpoint';
import { warnOnce } from '../shared/warn';

/**
 * The extension answers 202, or 400/413/422 for a record it cannot take (the backend would refuse
 * it too). No answer, or any other status (404 or 405: something else listens on that port; 5xx),
 * means the extension is not there to take records.
 */
function extensionAnswer(result: SendResult): boolean {
  const status = result.status;
  return status !== undefined && ((status >= 200 && status < 300) || status === 400 || status === 413 || status === 422);
}

/**
 * Invocations left to the extension and not yet "done" beyond this: it is taken for hung (it says
 * "done" at least every 64 invocations, and within 10 s of the last one).
 */
const MAX_LEFT = 1000;

/** stream: the extension's stream endpoint; http: its HTTP endpoint; direct: the backend */
type Route = 'stream' | 'http' | 'direct';

/** A warm invocation the extension may build the record of (see Delivery.leaveWarm). */
export interface WarmLeave {
  readonly describe: () => object;
  readonly requestId: string;
}

const sampled = (sampleRate: number): boolean => sampleRate >= 1 || Math.random() < sampleRate;
const now: Later = (work) => void work();

/** Where an invocation's records go: the network (Delivery) or the function's logs (LogSink). */
export interface RecordSink {
  /** Opens what records go through, if that takes a connection (the extension's stream). */
  connect(): void;
  /**
   * Hands off a cold-start record (either copy). Returns a promise that settles once its bytes
   * have left the process (or there is nothing to wait for now: the record is kept for later), or
   * undefined when they left at once; the function's response never waits for it.
   */
  cold(record: object): Promise<void> | undefined;
  /** See Delivery.warmAfterResponse. */
  warmAfterResponse(build: () => object, later: Later, sampleRate?: number, leave?: WarmLeave): Promise<void> | undefined;
  /** See Delivery.leaveWarm. */
  leaveWarm(describe: () => object, sampleRate: number, requestId: string, build: () => object, later: Later): boolean;
}

/**
 * The logs transport: each record is one line `{"coldstart_record":{...}}` on stdout, written
 * synchronously (stdout is a pipe or a file in Lambda: the write is in the kernel when it returns).
 * Lambda ships the function's output to CloudWatch Logs on its own, after the response; a
 * subscription filter and a Firehose stream bring the lines to coldstartd
 * (`POST /api/v1/ingest/firehose`). No network, no API key in the function.
 */
export class LogSink implements RecordSink {
  connect(): void {}

  cold(record: object): undefined {
    this.write(record);
    return undefined;
  }

  warmAfterResponse(build: () => object, later: Later, sampleRate = 1): undefined {
    if (sampled(sampleRate)) later(() => this.write(build()));
    return undefined;
  }

  leaveWarm(): boolean {
    return false;
  }

  private write(record: object): void {
    try {
      let line = JSON.stringify({ [LOG_RECORD_KEY]: record });
      // CloudWatch Logs truncates long events: a large module tree stays out, the timings stay in.
      if (line.length > MAX_LOG_LINE_BYTES / 4 && Buffer.byteLength(line) > MAX_LOG_LINE_BYTES && 'module_tree' in record) {
        const { module_tree: _tree, ...rest } = record as Record<string, unknown>;
        line = JSON.stringify({ [LOG_RECORD_KEY]: rest });
      }
      process.stdout.write(line + '\n');
    } catch {
      // stdout closed: nothing else to do
    }
  }
}

export class Delivery implements RecordSink {
  private route: Route;
  private readonly stream: Stream | undefined;
  /** warm records are left to the extension (leaveWarm) */
  private warmLeft = false;
  /** the invocations left to it that it has not said "done" for: their records, built on demand */
  private left: { requestId: string; build: () => object; sampleRate: number }[] = [];
  /** cold-start copies handed off, and those not yet taken (see holdBeforeExit) */
  private coldSent = 0;
  private readonly coldSending = new Set<Promise<SendResult>>();
  /** what to call when a cold-start copy on the stream has left the process (see single) */
  private readonly outs = new WeakMap<StreamEntry, () => void>();
  /** the cold-start copies the stream lost, and their second sending */
  private readonly resends = new WeakMap<StreamEntry, Promise<SendResult>>();

  constructor(
    /** the backend (config.endpoint) */
    readonly direct: Sender,
    /** the extension's HTTP endpoint, when installed */
    readonly local: Sender | undefined,
    /** the extension's stream endpoint, when installed */
    stream?: { host: string; port: number; apiKey: string },
    /** a connection to it opened as the first invocation started */
    early?: EarlyStream,
  ) {
    this.stream =
      stream !== undefined
        ? new Stream(
            stream.host,
            stream.port,
            stream.apiKey,
            (unacked, connected, why) => this.streamDown(unacked, connected, why),
            (id) => this.done(id),
            early,
          )
        : undefined;
    this.route = this.stream !== undefined ? 'stream' : local !== undefined ? 'http' : 'direct';
  }

  /** counters of the direct sender, for benchmarks and debugging */
  get stats(): Sender['stats'] {
    return this.direct.stats;
  }

  /**
   * True when this warm invocation's record is left to the extension, which builds it from
   * Lambda's report: the extension offered to, on a stream that is up. `build` makes the record
   * here if the stream fails before the extension has said "done" for `requestId`. The first
   * time, the template (`describe()`: the record's fields that are the same for every invocation)
   * and the sample rate go to it in a control line, written after the function's response like a
   * record: every record the SDK wrote before is ahead of it on the stream, and none follows.
   */
  leaveWarm(describe: () => object, sampleRate: number, requestId: string, build: () => object, later: Later): boolean {
    if (this.route !== 'stream') return false;
    const stream = this.stream!;
    if (!this.warmLeft && !stream.offered) return false;
    this.left.push({ requestId, build, sampleRate });
    if (this.left.length > MAX_LEFT) stream.fail(`${MAX_LEFT} invocations left to the extension and not done`);
    if (this.warmLeft) return true;
    this.warmLeft = true;
    later(() => {
      let line: string | undefined;
      try {
        line = JSON.stringify({ coldstart: 'delegate', record: describe(), sample_rate: sampleRate });
      } catch {
        // never break the function: without its template the extension builds nothing
      }
      if (line === undefined || !stream.control(line)) stream.fail('cannot leave the warm records to the extension');
    });
    return true;
  }

  /** The extension has taken care of every invocation left to it up to requestId's. */
  private done(requestId: string): void {
    const at = this.left.findIndex((entry) => entry.requestId === requestId);
    if (at >= 0) this.left.splice(0, at + 1);
  }

  /** Records currently go to the extension. */
  get viaExtension(): boolean {
    return this.route !== 'direct';
  }

  /** where records go now, and how many the stream has not had acknowledged: tests, debugging */
  get state(): { route: Route; unacknowledged: number; warmLeft: boolean } {
    return { route: this.route, unacknowledged: this.stream?.pending ?? 0, warmLeft: this.warmLeft && this.route === 'stream' };
  }

  connect(): void {
    if (this.route === 'stream') this.stream!.connect();
  }

  cold(record: object): Promise<void> {
    let out!: () => void;
    const left = new Promise<void>((resolve) => (out = resolve));
    const sending = this.single(JSON.stringify(record), out);
    if (this.coldSending.size === 0 && this.coldSent === 0)
      holdBeforeExit(
        () => (this.coldSending.size > 0 ? this.coldSent : 0),
        () => Promise.all(this.coldSending),
      );
    this.coldSent++;
    this.coldSending.add(sending);
    void sending.then(() => {
      this.coldSending.delete(sending);
      out(); // whatever happened, nothing is left to wait for
    });
    return left;
  }

  /**
   * Sends one record on its own (the cold-start copies). To the backend, it is retried until it is
   * acknowledged (Sender.deliver). Never rejects; resolves when the record has been taken (by the
   * kernel on the extension's stream) or given up. `out` is called when its bytes have left the
   * process (or cannot for now).
   */
  async single(body: string, out: () => void = () => undefined): Promise<SendResult> {
    if (this.route === 'stream') {
      const stream = this.stream!;
      const entry: StreamEntry = { line: body };
      this.outs.set(entry, out); // a resend (streamDown) calls it instead
      const inKernel = stream.write(entry) || (await stream.flushed(EXTENSION_COLD_ANSWER_MS));
      if (inKernel) out();
      // Not in the kernel within the extension's time: it is not there (or hung), the stream goes
      // down and every record it has not acknowledged, this one included, is sent again
      // (streamDown).
      if (!inKernel) stream.fail('no connection in time');
      return this.resends.get(entry) ?? (inKernel ? { ok: true, attempts: 1 } : { ok: false, attempts: 1, error: 'no connection in time' });
    }
    if (this.route === 'http') {
      const result = await this.local!.send(INGEST_PATH, body, performance.now() + EXTENSION_COLD_ANSWER_MS);
      if (extensionAnswer(result)) {
        out();
        return result;
      }
      this.extensionDown(result);
    }
    return this.direct.deliver(INGEST_PATH, body, out);
  }

  /**
   * A warm record, built by `build` and handed over after the function's response has gone out
   * when nothing needs to be awaited for it: on a flowing stream or towards a batch, it is built
   * and written by `later` (start.ts afterResponse: after the runtime has posted the response;
   * with the older runtime clients, before it asks for the next event, so before Lambda can freeze
   * the environment), and its cost is not in the response's time. Otherwise (still connecting, a
   * full socket buffer, the extension's HTTP endpoint) as warm(build()).
   */
  warmAfterResponse(build: () => object, later: Later, sampleRate = 1, leave?: WarmLeave): Promise<void> | undefined {
    if (this.route === 'direct' || (this.route === 'stream' && this.stream!.flowing)) {
      later(() => {
        // The extension's offer may have been read since the handler finished (it comes once, in
        // answer to the hello; after a thaw, in the same turn of the event loop as the event):
        // decided here, after the response, the invocation is left to it as soon as it can be.
        if (leave !== undefined && this.leaveWarm(leave.describe, sampleRate, leave.requestId, build, now)) return;
        if (sampled(sampleRate)) void this.warm(build());
      });
      return undefined;
    }
    if (!sampled(sampleRate)) return undefined;
    return this.warm(build());
  }

  /**
   * A warm record. Through the stream: written at once; returns undefined, or, when its bytes
   * could not reach the kernel at once, a promise (settled within about EXTENSION_ANSWER_MS, never
   * rejected) for the invocation to await. Through the HTTP endpoint: posted at once, the promise
   * settles with the answer. Otherwise queued for a batch sent in the background; returns undefined.
   */
  warm(record: object): Promise<void> | undefined {
    if (this.route === 'stream') {
      const stream = this.stream!;
      if (stream.write({ line: JSON.stringify(record), record })) return undefined;
      return stream.flushed(EXTENSION_ANSWER_MS).then((ok) => {
        if (!ok) stream.fail('no connection in time');
      });
    }
    if (this.route === 'direct') {
      this.direct.enqueue(record);
      return undefined;
    }
    return this.local!.send(INGEST_PATH, JSON.stringify(record), performance.now() + EXTENSION_ANSWER_MS).then(
      (result) => {
        if (!extensionAnswer(result)) {
          this.extensionDown(result);
          this.direct.enqueue(record);
        }
      },
      () => undefined,
    );
  }

  /**
   * The stream failed. Never connected (refused): the extension layer predates the stream
   * endpoint, or no extension runs; its HTTP endpoint is tried, which keeps Lambda's figures with
   * an older layer and costs one refused loopback connection otherwise (then the backend). Lost
   * after connecting: the extension crashed or was killed, and its HTTP endpoint was in the same
   * process, so the records go to the backend directly, the unacknowledged ones at once.
   */
  private streamDown(unacked: StreamEntry[], connected: boolean, why: string): void {
    this.route = connected || this.local === undefined ? 'direct' : 'http';
    if (this.route === 'direct')
      warnOnce(`the coldstart extension did not answer (stream: ${why}); sending records to the backend directly`);
    let batched = false;
    // the invocations left to the extension that it has not said "done" for: built here now
    for (const entry of this.left.splice(0)) {
      try {
        if (entry.sampleRate < 1 && !(Math.random() < entry.sampleRate)) continue;
        this.direct.enqueue(entry.build());
        batched = true;
      } catch {
        // never break the function
      }
    }
    for (const entry of unacked) {
      if (entry.record === undefined) {
        this.resends.set(entry, this.single(entry.line, this.outs.get(entry)));
      } else if (this.route === 'direct') {
        this.direct.enqueue(entry.record);
        batched = true;
      } else {
        void this.warm(entry.record);
      }
    }
    if (batched) void this.direct.flush();
  }

  private extensionDown(result: SendResult): void {
    if (this.route === 'direct') return;
    this.route = 'direct';
    const why = result.status !== undefined ? `HTTP ${result.status}` : (result.error ?? 'no answer');
    warnOnce(`the coldstart extension did not answer (${why}); sending records to the backend directly`);
  }
}

/**
 * The delivery for this configuration, one per process and transport/endpoint/key/mode. `early`: a
 * stream connection opened as the first invocation started; used if it goes where this one would.
 */
export function deliveryFor(senders: Map<string, unknown>, config: ResolvedConfig, early?: EarlyStream): RecordSink {
  if (config.transport === 'logs') {
    let sink = senders.get('logs') as LogSink | undefined;
    if (sink === undefined) senders.set('logs', (sink = new LogSink()));
    return sink;
  }
  const id = `${config.endpoint}\n${config.apiKey}\n${config.extension}`;
  let delivery = senders.get(id) as Delivery | undefined;
  if (delivery === undefined) {
    const local = extensionEndpoint(config);
    const stream = extensionStream(config);
    const matches =
      early !== undefined &&
      stream !== undefined &&
      early.host === stream.host &&
      early.port === stream.port &&
      early.apiKey === config.apiKey;
    if (early !== undefined && !matches) early.socket.destroy();
    delivery = new Delivery(
      new Sender(config.endpoint, config.apiKey!, { answerMs: config.timeout }),
      local !== undefined ? new Sender(local, config.apiKey!, { maxAttempts: 1, quiet: true }) : undefined,
      stream !== undefined ? { ...stream, apiKey: config.apiKey! } : undefined,
      matches ? early : undefined,
    );
    senders.set(id, delivery);
  }
  return delivery;
}
