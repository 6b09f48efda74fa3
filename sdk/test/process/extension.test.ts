// The coldstart Lambda extension, when installed, gets the records instead of the backend: a real
// HTTP listener stands in for its local endpoint (the extension's own suite runs the real binary).
// Detection: the file COLDSTART_EXTENSION_PATH (for tests; /opt/extensions/coldstart in Lambda)
// exists; the port comes from COLDSTART_EXTENSION_PORT.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { API_KEY, runFixture, startCollector, waitFor, type Collector } from '../harness/helpers';

let dir: string;
let marker: string;
let direct: Collector | undefined;
let local: Collector | undefined;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'coldstart-extension-'));
  marker = join(dir, 'coldstart');
  writeFileSync(marker, '#!/bin/sh\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await direct?.close();
  await local?.close();
  direct = local = undefined;
});

const accepted = (_q: unknown, response: any) => {
  response.writeHead(202, { 'content-type': 'application/json' });
  response.end('{"status":"accepted"}');
};
const portOf = (url: string) => new URL(url).port;

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('coldstart extension detection', () => {
  test('installed: every record goes to the local endpoint, one POST per record, warm ones awaited; none to the backend', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    const result = await runFixture({
      handler: 'awaits.handler',
      endpoint: direct.url,
      invocations: 3,
      env: { COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url) },
    });
    expect(result.code).toBe(0);
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(result.stderr).not.toContain('[coldstart]');
    // the process exits right after the last invocation: its warm record is there because the
    // invocation awaited it (nothing keeps a plain node process alive for the SDK's sockets)
    const records = local.records();
    expect(records.filter((r) => r.cold_start)).toHaveLength(1);
    expect(records.filter((r) => !r.cold_start)).toHaveLength(2);
    expect(local.earlyRecords()).toHaveLength(1);
    expect(local.received.every((r) => r.path === '/api/v1/ingest' && r.apiKey === API_KEY)).toBe(true);
    expect(local.received).toHaveLength(4); // early copy, complete cold record, 2 warm records
    await new Promise((r) => setTimeout(r, 200));
    expect(direct.received).toHaveLength(0);
  });

  test('COLDSTART_EXTENSION=off, or no extension installed: records go to the backend', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    for (const env of [
      { COLDSTART_EXTENSION: 'off', COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url) },
      { COLDSTART_EXTENSION_PATH: join(dir, 'missing'), COLDSTART_EXTENSION_PORT: portOf(local.url) },
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
      env: { TEST_ENDPOINT_OPTION: direct.url, COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url) },
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
      env: { COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: String(await closedPort()) },
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
      env: { COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url) },
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
      env: { COLDSTART_EXTENSION_PATH: marker, COLDSTART_EXTENSION_PORT: portOf(local.url), COLDSTART_TIMEOUT: '2000' },
    });
    expect(result.results.map((r) => r.ok)).toEqual([true, true, true]);
    // the first invocation: the extension's answer time for cold-start copies (500 ms), then the
    // backend's round trip; later ones go to the backend at once (batched, not awaited)
    expect(result.results[0].ms).toBeGreaterThanOrEqual(400);
    expect(result.results[0].ms).toBeLessThan(2000);
    expect(result.results[1].ms).toBeLessThan(100);
    await waitFor(() => direct!.records().length >= 3);
    expect(direct.records().filter((r) => r.cold_start)).toHaveLength(1);
    expect(direct.records()).toHaveLength(3);
    expect(result.stderr).toContain('the coldstart extension did not answer');
  });
});
