// Test helpers: a real HTTP listener standing in for the backend, and a way to run a fixture
// handler in a fresh Node.js process through the runtime stand-in (runner.mjs).
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';

export const SDK_ROOT = join(__dirname, '..', '..');
export const APP = join(SDK_ROOT, 'test', 'fixtures', 'app');
export const RUNNER = join(__dirname, 'runner.mjs');
/** Node.js binary for the process tests (the multi-version run sets COLDSTART_TEST_NODE). */
export const NODE = process.env.COLDSTART_TEST_NODE || process.execPath;
export const API_KEY = 'csa_testtesttesttesttesttesttesttest';
/** Version of the Node.js that runs the fixtures (NODE), e.g. "22.23.3". */
export const NODE_VERSION: string =
  NODE === process.execPath
    ? process.versions.node
    : require('node:child_process').spawnSync(NODE, ['-p', 'process.versions.node']).stdout.toString().trim();

export interface Received {
  path: string;
  apiKey: string | undefined;
  contentType: string | undefined;
  body: any;
  at: number;
}

export interface Collector {
  url: string;
  received: Received[];
  /**
   * every record received, batches flattened, early copies of cold-start records
   * (`complete: false`, sent at the start of the first invocation) left out: what the backend ends
   * up with, one record per invocation (plus retries)
   */
  records(): any[];
  /** the early copies only */
  earlyRecords(): any[];
  /** everything posted, early copies included */
  allRecords(): any[];
  respond: (request: IncomingMessage, response: ServerResponse, index: number) => void;
  close(): Promise<void>;
}

export async function startCollector(
  respond: Collector['respond'] = (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"status":"ok"}');
  },
  port = 0,
): Promise<Collector> {
  const received: Received[] = [];
  const collector = {} as Collector;
  collector.respond = respond;
  let count = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      received.push({
        path: request.url ?? '',
        apiKey: request.headers['x-api-key'] as string | undefined,
        contentType: request.headers['content-type'],
        body,
        at: Date.now(),
      });
      collector.respond(request, response, count++);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  collector.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  collector.received = received;
  collector.allRecords = () =>
    received.flatMap((r) =>
      r.path === '/api/v1/ingest/batch' ? (r.body?.invocations ?? []) : r.path === '/api/v1/ingest' ? [r.body] : [],
    );
  collector.records = () => collector.allRecords().filter((r) => r?.complete !== false);
  collector.earlyRecords = () => collector.allRecords().filter((r) => r?.complete === false);
  collector.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  return collector;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: any[];
  stderr: string;
  loaded: any;
  results: any[];
  ms: number;
}

export interface RunOptions {
  handler: string;
  endpoint?: string;
  env?: Record<string, string | undefined>;
  preload?: 'require' | 'import';
  redirect?: boolean;
  invocations?: number;
  timeoutMs?: number;
  lingerMs?: number;
  gapMs?: number;
  event?: unknown;
  cwd?: string;
  /** run at raised priority if allowed (timing tests on a shared machine) */
  nice?: boolean;
  /** Node.js options before the runner script (those NODE_OPTIONS does not take) */
  execArgv?: string[];
}

/** Lambda's environment for a fixture function, plus the SDK's settings. */
export function lambdaEnv(options: RunOptions): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    LAMBDA_TASK_ROOT: options.cwd ?? APP,
    _HANDLER: options.redirect ? 'node_modules/@coldstart/analyzer/handler.handler' : options.handler,
    AWS_LAMBDA_FUNCTION_NAME: 'fixture-function',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x',
    AWS_REGION: 'eu-west-1',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    TZ: ':UTC',
    COLDSTART_API_KEY: API_KEY,
    COLDSTART_ENDPOINT: options.endpoint,
    COLDSTART_HANDLER: options.redirect ? options.handler : undefined,
    RUNNER_INVOCATIONS: String(options.invocations ?? 1),
    RUNNER_TIMEOUT_MS: options.timeoutMs !== undefined ? String(options.timeoutMs) : undefined,
    RUNNER_LINGER_MS: options.lingerMs !== undefined ? String(options.lingerMs) : undefined,
    RUNNER_GAP_MS: options.gapMs !== undefined ? String(options.gapMs) : undefined,
    RUNNER_EVENT: JSON.stringify(options.event ?? { n: 1 }),
    NODE_OPTIONS: options.preload ? `--${options.preload} @coldstart/analyzer/register` : undefined,
    ...options.env,
  };
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  return clean;
}

export function runFixture(options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Timing runs get their own session (hence scheduler autogroup) at raised priority, when allowed.
    const env = lambdaEnv(options);
    if (options.nice) env.RUNNER_PRIORITY = '1';
    const child = spawn(NODE, [...(options.execArgv ?? []), RUNNER], {
      detached: options.nice === true,
      cwd: options.cwd ?? APP,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          try {
            return JSON.parse(l);
          } catch {
            return { type: 'text', text: l };
          }
        });
      resolve({
        code,
        signal,
        lines,
        stderr,
        loaded: lines.find((l) => l.type === 'loaded'),
        results: lines.filter((l) => l.type === 'result'),
        ms: Date.now() - started,
      });
    });
  });
}

/** Waits until `check` is true or `ms` pass. */
export async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/**
 * A real TCP listener speaking the extension's stream protocol (extension/src/stream.h): takes
 * newline-delimited JSON, answers "ack <n>" after each read (while `acks` is true), and a record
 * line that is not a JSON object with "rej <n> ...". With `offer`, a hello that asks for it is
 * answered "offer platform", and delegate lines after it are kept apart (`delegates`). A test peer
 * for the SDK's side of the stream; the extension itself is tested with the SDK in extension/tests.
 */
export interface StreamPeer {
  port: number;
  /** first lines that were hellos */
  hellos: any[];
  /** delegate lines (after an offer) */
  delegates: any[];
  /** record lines, parsed (a line that is not JSON is kept as a string) */
  lines: any[];
  /** records received, early copies (`complete: false`) left out */
  records(): any[];
  connections: number;
  acks: boolean;
  /** writes "done <requestId>" on every connection (after an offer) */
  done(requestId: string): void;
  /** ends every connection (FIN), like an extension that goes away */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startStreamPeer(acks = true, offer = false): Promise<StreamPeer> {
  const sockets = new Set<Socket>();
  const peer = { hellos: [], delegates: [], lines: [], connections: 0, acks } as unknown as StreamPeer;
  const server = createNetServer((socket) => {
    peer.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let rest = '';
    let taken = 0;
    let first = true;
    let offered = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const text = rest + chunk;
      const lines = text.split('\n');
      rest = lines.pop()!;
      let answer = '';
      for (const line of lines) {
        if (line === '') continue;
        let value: any;
        try {
          value = JSON.parse(line);
        } catch {
          value = line;
        }
        if (first && value?.coldstart === 'hello') {
          first = false;
          peer.hellos.push(value);
          if (offer && value.warm === 'platform') {
            offered = true;
            answer += 'offer platform\n';
          }
          continue;
        }
        if (offered && value?.coldstart === 'delegate' && typeof value.record === 'object') {
          peer.delegates.push(value);
          continue;
        }
        first = false;
        taken++;
        peer.lines.push(value);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) answer += `rej ${taken} not a JSON object\n`;
      }
      if (peer.acks && lines.length > 0) answer += `ack ${taken}\n`;
      if (answer) socket.write(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  peer.port = (server.address() as AddressInfo).port;
  peer.records = () => peer.lines.filter((r) => r?.complete !== false);
  peer.done = (requestId) => {
    for (const socket of sockets) socket.write(`done ${requestId}\n`);
  };
  peer.dropConnections = () => {
    for (const socket of sockets) socket.end();
  };
  peer.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return peer;
}

/** A port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
