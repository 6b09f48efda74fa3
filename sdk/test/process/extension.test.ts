// The coldstart Lambda extension, when installed, gets the records instead of the backend: a real
// TCP peer speaking its stream protocol and a real HTTP listener stand in for its stream and HTTP
// endpoints (the extension's own suite runs the real binary).
// Detection: the file COLDSTART_EXTENSION_PATH (for tests; /opt/extensions/coldstart in Lambda)
// exists; the ports come from COLDSTART_EXTENSION_STREAM_PORT and COLDSTART_EXTENSION_PORT. The
// HTTP cases give a stream port where nothing listens: an extension layer older than the stream.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  API_KEY,
  closedPort,
  runFixture,
  startCollector,
  startStreamPeer,
  waitFor,
  type Collector,
  type StreamPeer,
} from '../harness/helpers';

let dir: string;
let marker: string;
let direct: Collector | undefined;
let local: Collector | undefined;
let peer: StreamPeer | undefined;
/** a port where nothing listens, for the stream in the HTTP cases */
let noStream: string;
beforeAll(async () => {
  noStream = String(await closedPort());
  dir = mkdtempSync(join(tmpdir(), 'coldstart-extension-'));
  marker = join(dir, 'coldstart');
  writeFileSync(marker, '#!/bin/sh\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await direct?.close();
  await local?.close();
  await peer?.close();
  direct = local = peer = undefined;
});

const accepted = (_q: unknown, response: any) => {
  response.writeHead(202, { 'content-type': 'application/json' });
  response.end('{"status":"accepted"}');
};
const portOf = (url: string) => new URL(url).port;

describe('coldstart extension detection', () => {
  test('installed: every record is a line on the stream, hello with the key first; nothing to the HTTP endpoint or the backend', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    peer = await startStreamPeer();
    const result = await runFixture({
      handler: 'awaits.handler',
      endpoint: direct.url,
      invocations: 3,
      env: {
        COLDSTART_EXTENSION_PATH: marker,
        COLDSTART_EXTENSION_PORT: portOf(local.url),
        COLDSTART_EXTENSION_STREAM_PORT: String(peer.port),
      },
    });
    expect(result.code).toBe(0);
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr).not.toContain('[coldstart]');
    // the process exits right after the last invocation: its warm record is there because its
    // bytes were in the kernel before the invocation ended
    await waitFor(() => peer!.lines.length >= 3);
    expect(peer.connections).toBe(1);
    expect(peer.hellos).toEqual([{ coldstart: 'hello', api_key: API_KEY, warm: 'platform' }]);
    expect(peer.records().filter((r) => r.cold_start)).toHaveLength(1);
    expect(peer.records().filter((r) => !r.cold_start)).toHaveLength(2);
    // a handler that is done within EARLY_COPY_AFTER_MS: no early copy, the complete record after the response
    expect(peer.lines.filter((r) => r.complete === false)).toHaveLength(0);
    expect(peer.lines).toHaveLength(3); // the cold-start record, 2 warm records
    await new Promise((r) => setTimeout(r, 200));
    expect(local.received).toHaveLength(0);
    expect(direct.received).toHaveLength(0);
  });

  test('the extension never acknowledges: invocations wait for nothing; when the connection closes, every record goes to the backend once', async () => {
    direct = await startCollector();
    peer = await startStreamPeer(false);
    const running = runFixture({
      handler: 'async.handler',
      endpoint: direct.url,
      invocations: 6,
      lingerMs: 3000,
      nice: true,
      env: {
        COLDSTART_EXTENSION_PATH: marker,
        COLDSTART_EXTENSION_PORT: String(await closedPort()),
        COLDSTART_EXTENSION_STREAM_PORT: String(peer.port),
      },
    });
    await waitFor(() => peer!.lines.length >= 6, 10_000); // the cold record, 5 warm records
    peer.dropConnections(); // the process lingers: the SDK sees the connection close
    const result = await running;
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true, true, true, true]);
    // nothing waited for an answer that never came (the HTTP path waited up to 100 ms per record);
    // a wide margin for a shared machine
    const warm = result.results
      .slice(1)
      .map((r) => r.ms)
      .sort((a, b) => a - b);
    expect(warm[2]).toBeLessThan(50);
    expect(result.stderr.split('the coldstart extension did not answer (stream: connection closed)').length - 1).toBe(1);
    await waitFor(() => direct!.records().length >= 6);
    const ids = direct.records().map((r) => r.invocation_id);
    expect(new Set(ids).size).toBe(6);
    expect(ids).toHaveLength(6);
    expect(direct.records().filter((r) => r.cold_start)).toHaveLength(1);
  });

  test('installed, an older layer without the stream: every record goes to the HTTP endpoint, one POST per record, warm ones awaited; none to the backend', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    const result = await runFixture({
      handler: 'awaits.handler',
      endpoint: direct.url,
      invocations: 3,
      env: { COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url), COLDSTART_EXTENSION_STREAM_PORT: noStream },
    });
    expect(result.code).toBe(0);
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr).not.toContain('[coldstart]');
    // the process exits right after the last invocation: its warm record is there because the
    // invocation awaited it (nothing keeps a plain node process alive for the SDK's sockets)
    const records = local.records();
    expect(records.filter((r) => r.cold_start)).toHaveLength(1);
    expect(records.filter((r) => !r.cold_start)).toHaveLength(2);
    expect(local.earlyRecords()).toHaveLength(0);
    expect(local.received.every((r) => r.path === '/api/v1/ingest' && r.apiKey === API_KEY)).toBe(true);
    expect(local.received).toHaveLength(3); // the cold-start record, 2 warm records
    await new Promise((r) => setTimeout(r, 200));
    expect(direct.received).toHaveLength(0);
  });

  test('COLDSTART_EXTENSION=off, or no extension installed: records go to the backend', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    for (const env of [
      {
        COLDSTART_EXTENSION: 'off',
        COLDSTART_EXTENSION_PATH: marker,
        COLDSTART_EXTENSION_PORT: portOf(local.url),
        COLDSTART_EXTENSION_STREAM_PORT: noStream,
      },
      {
        COLDSTART_EXTENSION_PATH: join(dir, 'missing'),
        COLDSTART_EXTENSION_PORT: portOf(local.url),
        COLDSTART_EXTENSION_STREAM_PORT: noStream,
      },
    ]) {
      const result = await runFixture({ handler: 'async.handler', endpoint: direct.url, invocations: 2, env });
      expect(result.results.map((r) => r.ok)).toEqual([true, true]);
    }
    await waitFor(() => direct!.records().length >= 4);
    expect(direct.records()).toHaveLength(4);
    expect(local.received).toHaveLength(0);
  });

  test('an endpoint option in code wins over the extension', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    const result = await runFixture({
      handler: 'endpoint-option.handler',
      endpoint: 'http://127.0.0.1:9',
      env: {
        TEST_ENDPOINT_OPTION: direct.url,
        COLDSTART_EXTENSION_PATH: marker,
        COLDSTART_EXTENSION_PORT: portOf(local.url),
        COLDSTART_EXTENSION_STREAM_PORT: noStream,
      },
    });
    expect(result.results[0]).toMatchObject({ ok: true, value: { shape: 'endpoint-option' } });
    await waitFor(() => direct!.records().length >= 1);
    expect(direct.records().filter((r) => r.cold_start)).toHaveLength(1);
    expect(local.received).toHaveLength(0);
  });

  test('the local endpoint refuses: this record and later ones go to the backend, one warning', async () => {
    direct = await startCollector();
    const result = await runFixture({
      handler: 'async.handler',
      endpoint: direct.url,
      invocations: 3,
      env: {
        COLDSTART_EXTENSION_PATH: marker,
        COLDSTART_EXTENSION_PORT: String(await closedPort()),
        COLDSTART_EXTENSION_STREAM_PORT: noStream,
      },
    });
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr.split('the coldstart extension did not answer').length - 1).toBe(1);
    await waitFor(() => direct!.records().length >= 3);
    expect(direct.records().filter((r) => r.cold_start)).toHaveLength(1);
    expect(direct.records().filter((r) => !r.cold_start)).toHaveLength(2);
  });

  test('something else answers on the local port (HTTP 404): the records go to the backend', async () => {
    direct = await startCollector();
    local = await startCollector((_q, response) => {
      response.writeHead(404);
      response.end('not here');
    });
    const result = await runFixture({
      handler: 'async.handler',
      endpoint: direct.url,
      invocations: 3,
      gapMs: 300, // the cold-start record's answer (after the first response) comes before the next invocation
      env: { COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url), COLDSTART_EXTENSION_STREAM_PORT: noStream },
    });
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr).toContain('the coldstart extension did not answer (HTTP 404)');
    await waitFor(() => direct!.records().length >= 3);
    expect(direct.records().filter((r) => r.cold_start)).toHaveLength(1);
    expect(direct.records()).toHaveLength(3);
  });

  test('the local endpoint does not answer: the backend gets the records after a short wait', async () => {
    direct = await startCollector();
    local = await startCollector(() => {
      /* accepts the connection, never answers */
    });
    const result = await runFixture({
      handler: 'async.handler',
      endpoint: direct.url,
      invocations: 3,
      env: {
        COLDSTART_EXTENSION_PATH: marker,
        COLDSTART_EXTENSION_PORT: portOf(local.url),
        COLDSTART_EXTENSION_STREAM_PORT: noStream,
        COLDSTART_TIMEOUT: '2000',
      },
    });
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    // the first invocation waits for nothing (its record is handed over after the response); a warm
    // one waits at most the extension's answer time for a warm record (100 ms) while the HTTP
    // endpoint is still believed to be there, then records go to the backend (batched, not awaited)
    expect(result.results[0].ms).toBeLessThan(100);
    for (const warm of result.results.slice(1)) expect(warm.ms).toBeLessThan(100 + 150);
    await waitFor(() => direct!.records().length >= 3);
    expect(direct.records().filter((r) => r.cold_start)).toHaveLength(1);
    expect(direct.records()).toHaveLength(3);
    expect(result.stderr).toContain('the coldstart extension did not answer');
  });
});
