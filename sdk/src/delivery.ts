// Where records go: the coldstart Lambda extension's local endpoint when the extension is
// installed, else the backend (config.endpoint).
//
// The extension (extension/, a layer that unpacks to /opt/extensions/coldstart) listens on
// 127.0.0.1:7242 with the backend's ingest API, answers 202 at once and ships the records itself
// after the response has gone out, joined with Lambda's own figures. Through it, every record,
// warm ones included, is posted at once and awaited briefly (a loopback round trip), so that none
// is left in this process when Lambda freezes or shuts the environment down. If the local endpoint
// refuses or does not answer in time (EXTENSION_ANSWER_MS for warm records, EXTENSION_COLD_ANSWER_MS
// for the cold-start copies), that record and every later one go to the backend directly.

import { existsSync } from 'node:fs';
import type { ResolvedConfig } from './config';
import {
  DEFAULT_EXTENSION_HOST,
  DEFAULT_EXTENSION_PATH,
  DEFAULT_EXTENSION_PORT,
  ENV_EXTENSION_HOST,
  ENV_EXTENSION_PATH,
  ENV_EXTENSION_PORT,
  EXTENSION_ANSWER_MS,
  EXTENSION_COLD_ANSWER_MS,
  INGEST_PATH,
} from './constants';
import { Sender, type SendResult } from './sender';
import { warnOnce } from './warn';

/** The extension's local endpoint if it is installed and not switched off, else undefined. */
export function extensionEndpoint(config: Pick<ResolvedConfig, 'extension'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (config.extension === 'off') return undefined;
  try {
    if (!existsSync(env[ENV_EXTENSION_PATH] || DEFAULT_EXTENSION_PATH)) return undefined;
  } catch {
    return undefined;
  }
  const portText = env[ENV_EXTENSION_PORT]?.trim();
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) && Number(portText) > 0 && Number(portText) < 65536 ? Number(portText) : DEFAULT_EXTENSION_PORT;
  const host = env[ENV_EXTENSION_HOST]?.trim() || DEFAULT_EXTENSION_HOST;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/**
 * The extension answers 202, or 400/413/422 for a record it cannot take (the backend would refuse
 * it too). No answer, or any other status (404 or 405: something else listens on that port; 5xx),
 * means the extension is not there to take records.
 */
function extensionAnswer(result: SendResult): boolean {
  const status = result.status;
  return status !== undefined && ((status >= 200 && status < 300) || status === 400 || status === 413 || status === 422);
}

export class Delivery {
  private extensionUp: boolean;

  constructor(
    /** the backend (config.endpoint) */
    readonly direct: Sender,
    /** the extension's local endpoint, when installed */
    readonly local: Sender | undefined,
  ) {
    this.extensionUp = local !== undefined;
  }

  /** counters of the direct sender, for benchmarks and debugging */
  get stats(): Sender['stats'] {
    return this.direct.stats;
  }

  /** Records currently go to the extension. */
  get viaExtension(): boolean {
    return this.extensionUp;
  }

  /** Posts one record on its own (the cold-start copies), retried until `deadline`. Never rejects. */
  async single(body: string, deadline: number): Promise<SendResult> {
    if (this.extensionUp) {
      const result = await this.local!.send(INGEST_PATH, body, Math.min(deadline, performance.now() + EXTENSION_COLD_ANSWER_MS));
      if (extensionAnswer(result) || result.attempts === 0) return result; // answered, or no time left
      this.extensionDown(result);
    }
    return this.direct.send(INGEST_PATH, body, deadline);
  }

  /**
   * A warm record. Through the extension: posted at once; returns a promise (settled within
   * about EXTENSION_ANSWER_MS, never rejected) for the invocation to await. Otherwise queued for a
   * batch sent in the background; returns undefined.
   */
  warm(record: object): Promise<void> | undefined {
    if (!this.extensionUp) {
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

  private extensionDown(result: SendResult): void {
    if (!this.extensionUp) return;
    this.extensionUp = false;
    const why = result.status !== undefined ? `HTTP ${result.status}` : (result.error ?? 'no answer');
    warnOnce(`the coldstart extension did not answer (${why}); sending records to the backend directly`);
  }
}

/** The delivery for this configuration, one per process and endpoint/key/mode. */
export function deliveryFor(senders: Map<string, unknown>, config: ResolvedConfig): Delivery {
  const id = `${config.endpoint}\n${config.apiKey}\n${config.extension}`;
  let delivery = senders.get(id) as Delivery | undefined;
  if (delivery === undefined) {
    const local = extensionEndpoint(config);
    delivery = new Delivery(
      new Sender(config.endpoint, config.apiKey!),
      local !== undefined ? new Sender(local, config.apiKey!, { maxAttempts: 1, quiet: true }) : undefined,
    );
    senders.set(id, delivery);
  }
  return delivery;
}
