// Where the coldstart Lambda extension listens, and the stream connection the first invocation
// opens to it. Shared by both halves of the SDK: the init half (start.ts) opens the connection as
// the first invocation starts, so that it is open by the time the cold-start record is written
// after the response; the invocation half (stream.ts) adopts it.

import type { Socket } from 'node:net';
import type { ResolvedConfig } from '../runtime/config';
import {
  DEFAULT_EXTENSION_HOST,
  DEFAULT_EXTENSION_PATH,
  DEFAULT_EXTENSION_PORT,
  DEFAULT_EXTENSION_STREAM_PORT,
  ENV_EXTENSION_HOST,
  ENV_EXTENSION_PATH,
  ENV_EXTENSION_PORT,
  ENV_EXTENSION_STREAM_PORT,
} from './constants';

function portFrom(text: string | undefined, fallback: number): number {
  const trimmed = text?.trim();
  return trimmed !== undefined && /^\d{1,5}$/.test(trimmed) && Number(trimmed) > 0 && Number(trimmed) < 65536 ? Number(trimmed) : fallback;
}

function extensionInstalled(config: Pick<ResolvedConfig, 'extension'>, env: NodeJS.ProcessEnv): boolean {
  if (config.extension === 'off') return false;
  try {
    // required here, not at the top: this module is part of the SDK's init bundle
    const { existsSync } = require('node:fs') as typeof import('node:fs');
    return existsSync(env[ENV_EXTENSION_PATH] || DEFAULT_EXTENSION_PATH);
  } catch {
    return false;
  }
}

/** The extension's local endpoint if it is installed and not switched off, else undefined. */
export function extensionEndpoint(config: Pick<ResolvedConfig, 'extension'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!extensionInstalled(config, env)) return undefined;
  const port = portFrom(env[ENV_EXTENSION_PORT], DEFAULT_EXTENSION_PORT);
  const host = env[ENV_EXTENSION_HOST]?.trim() || DEFAULT_EXTENSION_HOST;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/** The extension's stream endpoint if it is installed and not switched off, else undefined. */
export function extensionStream(
  config: Pick<ResolvedConfig, 'extension'>,
  env: NodeJS.ProcessEnv = process.env,
): { host: string; port: number } | undefined {
  if (!extensionInstalled(config, env)) return undefined;
  const host = (env[ENV_EXTENSION_HOST]?.trim() || DEFAULT_EXTENSION_HOST).replace(/^\[(.*)\]$/, '$1');
  return { host, port: portFrom(env[ENV_EXTENSION_STREAM_PORT], DEFAULT_EXTENSION_STREAM_PORT) };
}

/** The stream's first line: the API key, and the question whether the extension builds warm records. */
export function helloLine(apiKey: string): string {
  return JSON.stringify({ coldstart: 'hello', api_key: apiKey, warm: 'platform' }) + '\n';
}

/** A stream connection opened before its Stream exists (see Stream's constructor). */
export interface EarlyStream {
  readonly host: string;
  readonly port: number;
  readonly apiKey: string;
  readonly socket: Socket;
  /** an error the socket had before it was adopted */
  error: NodeJS.ErrnoException | undefined;
  /** the hello is in the kernel */
  helloFlushed: boolean;
  /** called when it gets there, once adopted */
  onHelloFlushed: (() => void) | undefined;
}

/**
 * Opens the stream connection and writes the hello: a loopback connect, about 0.1 ms, nothing
 * waited for. The socket is unref'd and its errors are kept (an unhandled 'error' would throw) until
 * the invocation half adopts it.
 */
export function connectEarly(host: string, port: number, apiKey: string): EarlyStream {
  const net = require('node:net') as typeof import('node:net');
  const socket = net.connect({ host, port, noDelay: true });
  const early: EarlyStream = { host, port, apiKey, socket, error: undefined, helloFlushed: false, onHelloFlushed: undefined };
  socket.unref();
  socket.on('error', (error: NodeJS.ErrnoException) => {
    early.error ??= error;
  });
  socket.write(helloLine(apiKey), (error) => {
    if (error) return;
    early.helloFlushed = true;
    early.onHelloFlushed?.();
  });
  return early;
}
