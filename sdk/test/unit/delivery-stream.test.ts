// Delivery through the extension's stream endpoint (src/invoke/stream.ts), in this process, against a
// real TCP peer speaking the protocol (startStreamPeer) and real HTTP listeners standing in for the
// backend and for the extension's HTTP endpoint.
import { afterEach, describe, expect, test } from 'vitest';
import { Delivery } from '../../src/invoke/delivery';
import { Sender } from '../../src/shared/sender';
import { afterResponse } from '../../src/runtime/start';
import { closedPort, startCollector, startStreamPeer, waitFor, type Collector, type StreamPeer } from '../harness/helpers';

let direct: Collector | undefined;
let local: Collector | undefined;
let peer: StreamPeer | undefined;
afterEach(async () => {
  await direct?.close();
  await local?.close();
  await peer?.close();
  direct = local = peer = undefined;
});

const KEY = 'csa_stream_key';
const record = (n: number) => ({ function_name: 'f', invocation_id: `inv-${n}`, request_id: `req-${n}`, cold_start: false });
const accepted = (_q: unknown, response: any) => {
  response.writeHead(202, { 'content-type': 'application/json' });
  response.end('{"accepted":1}');
};

function delivery(streamPort: number, localUrl?: string): Delivery {
  return new Delivery(
    new Sender(direct!.url, KEY),
    localUrl !== undefined ? new Sender(localUrl, KEY, { maxAttempts: 1, quiet: true }) : undefined,
    { host: '127.0.0.1', port: streamPort, apiKey: KEY },
  );
}

describe('Delivery through the stream endpoint', () => {
  test('the key in a hello line, then one line per record; the acknowledgements empty the in-flight list', async () => {
    direct = await startCollector();
    peer = await startStreamPeer();
    const d = delivery(peer.port);
    // the first record waits for the connection (the cold-start copies do that)
    expect(await d.single(JSON.stringify({ ...record(0), cold_start: true, complete: false }))).toMatchObject({ ok: true });
    const waits = [1, 2, 3].map((n) => d.warm(record(n)));
    // connected: each warm record is in the kernel as soon as it is written, nothing to wait for
    expect(waits).toEqual([undefined, undefined, undefined]);
    await waitFor(() => peer!.lines.length >= 4 && d.state.unacknowledged === 0);
    expect(peer.hellos).toEqual([{ coldstart: 'hello', api_key: KEY, warm: 'platform' }]);
    expect(peer.lines.map((r) => r.invocation_id)).toEqual(['inv-0', 'inv-1', 'inv-2', 'inv-3']);
    expect(d.state).toEqual({ route: 'stream', unacknowledged: 0, warmLeft: false });
    expect(peer.connections).toBe(1);
    // acknowledged records are the extension's: when it goes away, nothing is sent again
    peer.dropConnections();
    await waitFor(() => d.state.route === 'direct');
    expect(d.state.route).toBe('direct');
    await new Promise((r) => setTimeout(r, 300));
    expect(direct.received).toHaveLength(0);
  });

  test('no acknowledgement: the records stay in flight; when the connection closes they go to the backend, once each', async () => {
    direct = await startCollector();
    peer = await startStreamPeer(false);
    const d = delivery(peer.port);
    const cold = await d.single(JSON.stringify({ ...record(0), cold_start: true }));
    expect(cold.ok).toBe(true);
    for (let n = 1; n <= 5; n++) expect(d.warm(record(n))).toBeUndefined();
    await waitFor(() => peer!.lines.length >= 6);
    expect(d.state).toEqual({ route: 'stream', unacknowledged: 6, warmLeft: false });
    peer.dropConnections();
    await waitFor(() => direct!.allRecords().length >= 6);
    expect(d.state.route).toBe('direct');
    const ids = direct
      .allRecords()
      .map((r) => r.invocation_id)
      .sort();
    expect(ids).toEqual(['inv-0', 'inv-1', 'inv-2', 'inv-3', 'inv-4', 'inv-5']);
    // the cold-start copy on its own, the warm ones in a batch
    expect(direct.received.find((r) => r.path === '/api/v1/ingest')?.body.invocation_id).toBe('inv-0');
    expect(direct.received.some((r) => r.path === '/api/v1/ingest/batch')).toBe(true);
    // later records go to the backend (batched)
    expect(d.warm(record(6))).toBeUndefined();
    await d.direct.flush();
    expect(direct.allRecords().filter((r) => r.invocation_id === 'inv-6')).toHaveLength(1);
  });

  test('partly acknowledged: only what the count does not cover is sent again', async () => {
    direct = await startCollector();
    peer = await startStreamPeer();
    const d = delivery(peer.port);
    await d.single(JSON.stringify(record(0)));
    d.warm(record(1));
    await waitFor(() => d.state.unacknowledged === 0 && peer!.lines.length >= 2);
    peer.acks = false;
    d.warm(record(2));
    d.warm(record(3));
    await waitFor(() => peer!.lines.length >= 4);
    expect(d.state.unacknowledged).toBe(2);
    peer.dropConnections();
    await waitFor(() => direct!.allRecords().length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(
      direct
        .allRecords()
        .map((r) => r.invocation_id)
        .sort(),
    ).toEqual(['inv-2', 'inv-3']);
  });

  test('a stream port that refuses (an older extension layer): the HTTP endpoint gets the records', async () => {
    direct = await startCollector();
    local = await startCollector(accepted);
    const d = delivery(await closedPort(), local.url);
    const cold = await d.single(JSON.stringify({ ...record(0), cold_start: true }));
    expect(cold).toMatchObject({ ok: true, status: 202 });
    expect(d.state.route).toBe('http');
    await d.warm(record(1));
    expect(local.allRecords().map((r) => r.invocation_id)).toEqual(['inv-0', 'inv-1']);
    expect(direct.received).toHaveLength(0);
  });

  test('neither endpoint there: the backend, the first record included', async () => {
    direct = await startCollector();
    const d = delivery(await closedPort(), `http://127.0.0.1:${await closedPort()}`);
    const cold = await d.single(JSON.stringify({ ...record(0), cold_start: true }));
    expect(cold).toMatchObject({ ok: true, status: 200 });
    expect(d.state.route).toBe('direct');
    expect(direct.allRecords().map((r) => r.invocation_id)).toEqual(['inv-0']);
  });

  test('a rejected line is reported and not sent again; an answer outside the protocol takes the stream down', async () => {
    direct = await startCollector();
    peer = await startStreamPeer();
    const d = delivery(peer.port);
    await d.single('"not an object"');
    await waitFor(() => peer!.lines.length >= 1 && d.state.unacknowledged === 0);
    expect(d.state).toEqual({ route: 'stream', unacknowledged: 0, warmLeft: false });
    // something that is not the extension answers garbage
    const { createServer: tcp } = await import('node:net');
    const impostor = tcp((socket) => socket.on('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const other = delivery((impostor.address() as { port: number }).port);
      expect((await other.single(JSON.stringify(record(7)))).ok).toBe(true);
      await waitFor(() => other.state.route === 'direct' && direct!.allRecords().length >= 1);
      expect(direct.allRecords().map((r) => r.invocation_id)).toEqual(['inv-7']);
    } finally {
      await new Promise<void>((resolve) => impostor.close(() => resolve()));
    }
  });
  test("a warm record is built and written after the function's response, before the runtime asks for the next event", async () => {
    direct = await startCollector();
    peer = await startStreamPeer();
    const d = delivery(peer.port);
    // still connecting: nothing could reach the kernel, so the record is written at once and the
    // invocation gets a promise to wait for
    const first = d.warmAfterResponse(() => record(1), afterResponse);
    expect(first).toBeInstanceOf(Promise);
    expect(d.state.unacknowledged).toBe(1);
    await first;
    await waitFor(() => d.state.unacknowledged === 0);
    // connected and flowing: as Lambda's Node.js runtime does it, the handler's promise settles,
    // the reaction posts the response synchronously, and a setImmediate callback asks for the next
    // event
    const order: string[] = [];
    const handler = Promise.resolve().then(() => {
      expect(
        d.warmAfterResponse(() => {
          order.push('record built');
          return record(2);
        }, afterResponse),
      ).toBeUndefined();
    });
    await handler.then(() => {
      order.push(`response posted, ${d.state.unacknowledged} unacknowledged`);
      setImmediate(() => order.push(`next event asked for, ${d.state.unacknowledged} unacknowledged`));
    });
    await waitFor(() => order.length === 3);
    expect(order).toEqual(['response posted, 0 unacknowledged', 'record built', 'next event asked for, 1 unacknowledged']);
    await waitFor(() => peer!.lines.length >= 2 && d.state.unacknowledged === 0);
    expect(peer.lines.map((r) => r.invocation_id)).toEqual(['inv-1', 'inv-2']);
    // a build that throws never reaches the function
    expect(
      d.warmAfterResponse(() => {
        throw new Error('bad record');
      }, afterResponse),
    ).toBeUndefined();
    await new Promise((r) => setImmediate(r));
    expect(d.state).toEqual({ route: 'stream', unacknowledged: 0, warmLeft: false });
  });

  test("with the runtime interface client 4 (InvokeStore on globalThis.awslambda), the record is built after that client's response too", async () => {
    direct = await startCollector();
    peer = await startStreamPeer();
    const d = delivery(peer.port);
    d.connect();
    await waitFor(() => d.state.unacknowledged === 0 && peer!.hellos.length > 0);
    const holder = globalThis as { awslambda?: Record<string, unknown> };
    const saved = holder.awslambda;
    holder.awslambda = { InvokeStore: {} };
    try {
      // as aws-lambda-ric 4 does it: the handler's promise settles, then `await setImmediate`,
      // then the response is posted, then the next event is asked for (async, in a thread)
      const order: string[] = [];
      const handler = Promise.resolve().then(() => {
        expect(
          d.warmAfterResponse(() => {
            order.push('record built');
            return record(3);
          }, afterResponse),
        ).toBeUndefined();
      });
      await handler;
      await new Promise((resolve) => setImmediate(resolve));
      order.push('response posted');
      await waitFor(() => order.length === 2);
      expect(order).toEqual(['response posted', 'record built']);
    } finally {
      holder.awslambda = saved;
    }
  });

  test('an extension that offers builds the warm records: the template once, after the response and behind every record written before; then nothing per invocation', async () => {
    direct = await startCollector();
    peer = await startStreamPeer(true, true);
    const d = delivery(peer.port);
    const template = { function_name: 'f', sdk_version: 'x' };
    const built: string[] = [];
    const leave = (n: number, onTemplate = () => undefined as unknown) =>
      d.leaveWarm(
        () => {
          onTemplate();
          return template;
        },
        1,
        `req-${n}`,
        () => {
          built.push(`req-${n}`);
          return record(n);
        },
        afterResponse,
      );
    // no offer read yet (still connecting): the record is the SDK's
    expect(leave(1)).toBe(false);
    await d.warmAfterResponse(() => record(1), afterResponse);
    await waitFor(() => d.state.unacknowledged === 0);
    // the offer has come with the acknowledgement: from now on the extension builds them
    const order: string[] = [];
    await Promise.resolve().then(() => {
      expect(leave(2, () => order.push('template built'))).toBe(true);
      order.push('response posted');
      setImmediate(() => order.push(`next event asked for, ${peer!.delegates.length} delegate lines`));
    });
    expect(d.state.warmLeft).toBe(true);
    expect(leave(3, () => order.push('template built again'))).toBe(true);
    await waitFor(() => peer!.delegates.length === 1);
    expect(order).toEqual(['response posted', 'template built', 'next event asked for, 0 delegate lines']);
    expect(peer.delegates).toEqual([{ coldstart: 'delegate', record: template, sample_rate: 1 }]);
    expect(peer.lines.map((r) => r.invocation_id)).toEqual(['inv-1']);
    expect(built).toEqual([]);
    // the extension has taken care of req-2 and goes away before req-3's report: the SDK builds
    // req-3's record and sends it to the backend; warm records are the SDK's again
    peer.done('req-2');
    await new Promise((r) => setTimeout(r, 100));
    peer.dropConnections();
    await waitFor(() => d.state.route === 'direct' && direct!.allRecords().length >= 1);
    expect(built).toEqual(['req-3']);
    expect(direct.allRecords().map((r) => r.invocation_id)).toEqual(['inv-3']);
    expect(d.state.warmLeft).toBe(false);
    expect(leave(4)).toBe(false);
  });

  test('an extension that does not offer (an older layer, or no telemetry): every warm record is written by the SDK', async () => {
    direct = await startCollector();
    peer = await startStreamPeer();
    const d = delivery(peer.port);
    await d.warmAfterResponse(() => record(1), afterResponse);
    await waitFor(() => d.state.unacknowledged === 0);
    expect(
      d.leaveWarm(
        () => ({ function_name: 'f' }),
        1,
        'req-2',
        () => record(2),
        afterResponse,
      ),
    ).toBe(false);
    expect(peer.delegates).toEqual([]);
    expect(peer.hellos[0].warm).toBe('platform');
  });

  test('without the extension the warm record joins the batch after the response', async () => {
    direct = await startCollector();
    const d = new Delivery(new Sender(direct.url, KEY), undefined, undefined);
    expect(d.warmAfterResponse(() => record(1), afterResponse)).toBeUndefined();
    expect(d.direct.queued).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(d.direct.queued).toBe(1);
    await d.direct.flush();
    expect(direct.allRecords().map((r) => r.invocation_id)).toEqual(['inv-1']);
  });
});
