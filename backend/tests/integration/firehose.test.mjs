// POST /api/v1/ingest/firehose: the logs transport's records as Amazon Data Firehose delivers them
// from a CloudWatch Logs subscription (the emulator in cloudwatch-firehose.mjs builds every request
// from AWS's published formats with Node's real gzip). Lines raw, after the Node.js console prefix
// and in Lambda's JSON log format; CONTROL_MESSAGE; the rest of the log group skipped; gzip
// Content-Encoding; retries stored once; the same rows as direct ingest; invalid lines skipped
// while their neighbours are stored; malformed deliveries 400 naming the record; keys 401; caps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { useServer, fullRecord, minimalRecord, lit, uid, freePort, http, createProject } from './harness.mjs';
import {
  recordLine,
  nodeConsoleLine,
  jsonFormatLine,
  platformLines,
  logEvents,
  filterTerm,
  dataMessage,
  controlMessage,
  recordData,
  deliveryRequest,
  nonConformities,
  deliverLikeFirehose,
} from './cloudwatch-firehose.mjs';

const PATH = '/api/v1/ingest/firehose';
const MAX_BODY_BATCH = 2 * 1024 * 1024;
const metricsPort = await freePort();
const ctx = useServer({ env: { MAX_BODY_BATCH, METRICS_PORT: metricsPort, RATE_LIMIT_INGEST: 100000 } });

/** POSTs a delivery request built by deliveryRequest(); resolves the harness response. */
const send = (request) => ctx.request('POST', PATH, { body: request.body, headers: request.headers });

/** One Firehose request holding one record per subscription message, with the project's key. */
function firehoseRequest(messages, opts = {}) {
  const records = messages.map((m) => (typeof m === 'string' ? { data: m } : { data: recordData(m, opts) }));
  return deliveryRequest(records, { accessKey: ctx.key, ...opts });
}

/** What the function's log group holds for these records, after the subscription filter. */
function filtered(lines) {
  return filterTerm('coldstart_record', logEvents(lines));
}

const countIds = (ids) => ctx.count(`SELECT count(*) FROM invocations WHERE invocation_id IN (${ids.map(lit).join(',')})`);

function assertConforms(res, request, status) {
  assert.equal(res.status, status, res.text);
  assert.deepEqual(nonConformities(res, request.requestId), [], res.text);
}

// The stored columns that must not depend on the transport.
const COLUMNS = `i.invocation_id, i.request_id, i."timestamp", i.cold_start, i.init_duration_ms, i.execution_duration_ms,
  i.billed_duration_ms, i.memory_used_mb, i.memory_allocated_mb, i.module_timings, i.runtime_version, i.architecture,
  i.init_type, i.start_kind, i.module_tree, i.sdk_version, i.sdk_overhead_ms, i.module_source, f.function_name,
  f.runtime, f.region, f.memory_allocated_mb AS f_memory`;
const stored = (ids) =>
  ctx.rows(`SELECT ${COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id
            WHERE invocation_id IN (${ids.map(lit).join(',')}) ORDER BY invocation_id`);

test('record lines raw, after the console prefix and in the JSON log format are stored; the rest is skipped', async () => {
  const fn = 'fh-lines-' + randomBytes(3).toString('hex');
  const recs = [0, 1, 2, 3].map(() => minimalRecord({ function_name: fn, invocation_id: uid('fh') }));
  const requestId = randomUUID();
  const lines = [
    ...platformLines(requestId),
    recordLine(recs[0]) + '\n',
    nodeConsoleLine(recordLine(recs[1]), { requestId }),
    jsonFormatLine(recordLine(recs[2]) + '\n', { requestId }),
    jsonFormatLine({ coldstart_record: recs[3] }, { requestId, level: 'WARN' }),
    nodeConsoleLine('{"note": "a structured log that names coldstart_record"}', { requestId }),
  ];
  const events = filtered(lines);
  assert.equal(events.length, 6, 'the filter keeps the four records and two other lines that contain the term');
  const request = firehoseRequest([dataMessage(events)]);
  const res = await send(request);
  assertConforms(res, request, 200);
  assert.equal(res.json.records, 1);
  assert.equal(res.json.log_events, 6);
  assert.equal(res.json.accepted, 4);
  assert.equal(res.json.invalid, 0);
  assert.equal(res.json.ignored, 2);
  assert.deepEqual(res.json.failures, []);
  assert.equal(await countIds(recs.map((r) => r.invocation_id)), 4);
  // everything else in the log group (not matched by the filter) is skipped too, not an error
  const unfiltered = firehoseRequest([dataMessage(logEvents(platformLines()))]);
  const res2 = await send(unfiltered);
  assertConforms(res2, unfiltered, 200);
  assert.equal(res2.json.ignored, 5);
  assert.equal(res2.json.accepted, 0);
});

test('CONTROL_MESSAGE is acknowledged and skipped', async () => {
  const request = firehoseRequest([controlMessage()]);
  const res = await send(request);
  assertConforms(res, request, 200);
  assert.equal(res.json.control_messages, 1);
  assert.equal(res.json.accepted, 0);
});

test('a gzip Content-Encoding body, Firehose decompression (plain data) and several records in one delivery', async () => {
  const recs = [0, 1, 2].map(() => minimalRecord({ function_name: 'fh-gzip', invocation_id: uid('gz') }));
  const request = firehoseRequest(
    [
      dataMessage(filtered([recordLine(recs[0]) + '\n'])),
      controlMessage(),
      dataMessage(filtered([recordLine(recs[1]) + '\n']), { logStream: 'other' }),
    ],
    { gzip: true, commonAttributes: { env: 'test' } },
  );
  assert.equal(request.headers['Content-Encoding'], 'gzip');
  const res = await send(request);
  assertConforms(res, request, 200);
  assert.equal(res.json.records, 3);
  assert.equal(res.json.control_messages, 1);
  assert.equal(res.json.accepted, 2);
  const plain = firehoseRequest([dataMessage(filtered([recordLine(recs[2]) + '\n']))], { decompressed: true });
  assertConforms(await send(plain), plain, 200);
  assert.equal(await countIds(recs.map((r) => r.invocation_id)), 3);
});

test('a retried delivery and a redelivered log event are stored once', async () => {
  const rec = fullRecord({ function_name: 'fh-retry', invocation_id: uid('retry') });
  // no invocation_id: the row's id comes from the log event, so the event's redelivery matches it
  const anonymous = minimalRecord({ function_name: 'fh-retry-anon' });
  delete anonymous.invocation_id;
  const events = filtered([recordLine(rec) + '\n', recordLine(anonymous) + '\n']);
  const request = firehoseRequest([dataMessage(events)]);
  for (let i = 0; i < 3; i++) assertConforms(await send(request), request, 200);
  // CloudWatch Logs delivering the same events again, in a new Firehose request
  const again = firehoseRequest([dataMessage(events)]);
  assertConforms(await send(again), again, 200);
  assert.equal(await countIds([rec.invocation_id]), 1);
  assert.equal(
    await ctx.count(`SELECT count(*) FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = 'fh-retry-anon'`),
    1,
  );
});

test('the same record makes the same row as direct ingest, and one row whichever way it came', async () => {
  // the same record in two projects: one by POST /api/v1/ingest, one through Firehose
  const other = await createProject(ctx.db.url, 'Firehose twin', 'fh-twin-' + randomBytes(3).toString('hex'));
  const rec = fullRecord({ function_name: 'fh-same-rows', invocation_id: uid('same') });
  assert.equal((await ctx.ingest(rec, { key: other })).status, 200);
  const request = firehoseRequest([dataMessage(filtered([nodeConsoleLine(recordLine(rec))]))]);
  assertConforms(await send(request), request, 200);
  const rows = await stored([rec.invocation_id]);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], rows[1]);
  // and within one project: direct first, then the log line, one row
  const both = fullRecord({ function_name: 'fh-same-rows', invocation_id: uid('both') });
  assert.equal((await ctx.ingest(both)).status, 200);
  const r2 = firehoseRequest([dataMessage(filtered([recordLine(both) + '\n']))]);
  assertConforms(await send(r2), r2, 200);
  assert.equal(await countIds([both.invocation_id]), 1);
});

test('the early copy of a cold-start record (complete: false) is completed by its full record', async () => {
  const full = fullRecord({ function_name: 'fh-early', invocation_id: uid('early'), module_source: 'hooks' });
  const { execution_duration_ms, billed_duration_ms, memory_used_mb, module_tree, ...early } = full;
  const row = async () =>
    ctx.rows(
      `SELECT execution_duration_ms AS exec, module_tree IS NOT NULL AS tree FROM invocations WHERE invocation_id = ${lit(full.invocation_id)}`,
    );
  const r1 = firehoseRequest([dataMessage(filtered([recordLine({ ...early, complete: false }) + '\n']))]);
  assertConforms(await send(r1), r1, 200);
  assert.deepEqual(await row(), [{ exec: null, tree: false }]);
  const r2 = firehoseRequest([dataMessage(filtered([recordLine(full) + '\n']))]);
  assertConforms(await send(r2), r2, 200);
  assert.deepEqual(await row(), [{ exec: full.execution_duration_ms, tree: true }]);
  // both copies in one delivery, the early one last: still one complete row
  const f2 = fullRecord({ function_name: 'fh-early', invocation_id: uid('early') });
  const { execution_duration_ms: _e, ...e2 } = f2;
  const r3 = firehoseRequest([dataMessage(filtered([recordLine(f2) + '\n', recordLine({ ...e2, complete: false }) + '\n']))]);
  assertConforms(await send(r3), r3, 200);
  assert.deepEqual(await ctx.rows(`SELECT execution_duration_ms AS exec FROM invocations WHERE invocation_id = ${lit(f2.invocation_id)}`), [
    { exec: f2.execution_duration_ms },
  ]);
});

test('an invalid record line is skipped and counted while the good ones of the same delivery are stored', async () => {
  const good = [0, 1].map(() => minimalRecord({ function_name: 'fh-invalid', invocation_id: uid('good') }));
  const bad = minimalRecord({ function_name: 'fh-invalid', invocation_id: uid('bad'), cold_start: 'yes' });
  const cut = recordLine(minimalRecord({ function_name: 'fh-invalid' })).slice(0, 40); // cut short (e.g. truncated)
  const request = firehoseRequest([
    dataMessage(filtered([recordLine(good[0]) + '\n', recordLine(bad) + '\n'])),
    dataMessage(filtered([cut + '\n', recordLine(good[1]) + '\n'])),
  ]);
  const res = await send(request);
  assertConforms(res, request, 200);
  assert.equal(res.json.accepted, 2);
  assert.equal(res.json.invalid, 2);
  assert.deepEqual(
    res.json.failures.map((f) => [f.record, f.event]),
    [
      [0, 1],
      [1, 0],
    ],
  );
  const e = res.json.failures[0].errors.find((x) => x.loc.at(-1) === 'cold_start');
  assert.deepEqual(e.loc, ['records', 0, 'logEvents', 1, 'coldstart_record', 'cold_start']);
  assert.equal(e.type, 'bool_type');
  assert.equal(res.json.failures[1].errors[0].type, 'json_invalid');
  assert.equal(await countIds(good.map((r) => r.invocation_id)), 2);
  assert.equal(await countIds([bad.invocation_id]), 0);
});

test("malformed deliveries are 400 in Firehose's shape, naming the record", async () => {
  const ok = recordData(dataMessage(filtered([recordLine(minimalRecord({ function_name: 'fh-bad' })) + '\n'])));
  const cases = [
    ['not JSON', deliveryRequest([], { accessKey: ctx.key }), 'Malformed JSON', (r) => (r.body = Buffer.from('{"requestId": '))],
    ['no records', deliveryRequest([], { accessKey: ctx.key }), 'records must be'],
    ['bad base64', firehoseRequest([ok, 'not base64!']), 'records[1]: data is not valid base64'],
    ['corrupt gzip', firehoseRequest([gzipSync('{"a":1}').subarray(0, 12).toString('base64')]), 'records[0]: data is not valid gzip'],
    [
      'data not JSON',
      firehoseRequest([ok, ok, gzipSync('hello').toString('base64')]),
      'records[2]: data is not CloudWatch Logs subscription JSON',
    ],
    ['not subscription data', firehoseRequest([{ hello: 'world' }]), 'records[0]: data has no messageType'],
    ['a body that is not gzip', firehoseRequest([ok]), 'not valid gzip', (r) => (r.headers['Content-Encoding'] = 'gzip')],
  ];
  for (const [what, request, fragment, tweak] of cases) {
    if (tweak) tweak(request);
    const res = await send(request);
    assert.equal(res.status, 400, `${what}: ${res.text}`);
    assert.equal(res.json.requestId, request.requestId, what);
    assert.ok(Number.isInteger(res.json.timestamp), what);
    assert.equal(res.json.error_code, 'VALIDATION_ERROR', what);
    assert.ok(res.json.errorMessage.includes(fragment), `${what}: ${res.json.errorMessage}`);
    assert.equal(res.json.detail, res.json.errorMessage);
    assert.deepEqual(nonConformities(res, request.requestId), [], what);
  }
  // Firehose retries a 400 until its retry duration, then the batch goes to the S3 backup
  const r = await deliverLikeFirehose(send, firehoseRequest([ok, 'not base64!']), { retryDurationMs: 100 });
  assert.equal(r.outcome, 's3-backup');
  assert.ok(r.attempts > 1);
});

test('the key: X-Amz-Firehose-Access-Key or X-API-Key; missing or wrong is 401', async () => {
  const rec = minimalRecord({ function_name: 'fh-keys', invocation_id: uid('key') });
  const data = [dataMessage(filtered([recordLine(rec) + '\n']))];
  for (const accessKey of [undefined, '', 'csa_' + 'x'.repeat(32), 'not-a-key']) {
    const request = firehoseRequest(data, { accessKey });
    const res = await send(request);
    assertConforms(res, request, 401);
    assert.equal(res.json.error_code, 'AUTHENTICATION_ERROR');
  }
  const viaApiKey = firehoseRequest(data, { accessKey: undefined });
  const res = await ctx.request('POST', PATH, { body: viaApiKey.body, headers: { ...viaApiKey.headers, 'X-API-Key': ctx.key } });
  assertConforms(res, viaApiKey, 200);
  assert.equal(await countIds([rec.invocation_id]), 1);
});

test('inflation is bounded: per record (400) and for a gzip body (413); an oversized body is 413', async () => {
  // a record whose data inflates past 8 MiB: a decompression bomb stopped at the cap
  const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024, 0x20)).toString('base64');
  const good = recordData(dataMessage(filtered([recordLine(minimalRecord({ function_name: 'fh-bomb' })) + '\n'])));
  const r1 = firehoseRequest([good, bomb]);
  const res1 = await send(r1);
  assertConforms(res1, r1, 400);
  assert.match(res1.json.errorMessage, /^records\[1\]: data inflates to more than 8388608 bytes/);
  // a Content-Encoding: gzip body that inflates past 64 MiB
  const r2 = { ...firehoseRequest([good]) };
  r2.body = gzipSync(
    Buffer.concat([Buffer.from('{"requestId":"x","records":[{"data":"'), Buffer.alloc(65 * 1024 * 1024, 0x41), Buffer.from('"}]}')]),
  );
  r2.headers = { ...r2.headers, 'Content-Encoding': 'gzip' };
  assert.ok(r2.body.length < MAX_BODY_BATCH);
  const res2 = await send(r2);
  assertConforms(res2, r2, 413);
  assert.equal(res2.json.error_code, 'PAYLOAD_TOO_LARGE');
  // a body over MAX_BODY_BATCH
  const r3 = firehoseRequest([good]);
  r3.body = Buffer.concat([r3.body, Buffer.alloc(MAX_BODY_BATCH, 0x20)]);
  const res3 = await send(r3);
  assertConforms(res3, r3, 413);
  // Firehose drops a batch answered 413 (no retry, no S3 backup): the docs say so
  assert.equal((await deliverLikeFirehose(send, r3)).outcome, 'dropped');
});

test('an unsupported Content-Encoding is 415', async () => {
  const request = firehoseRequest([controlMessage()]);
  request.headers['Content-Encoding'] = 'br';
  const res = await send(request);
  assertConforms(res, request, 415);
});

test('the delivery counts reach the log and the metrics; the key and the records never reach the log', async () => {
  const marker = 'fh-secret-' + randomBytes(6).toString('hex');
  const rec = minimalRecord({ function_name: marker, invocation_id: uid('log') });
  const bad = minimalRecord({ function_name: marker, cold_start: 'no' });
  const request = firehoseRequest([dataMessage(filtered([recordLine(rec) + '\n', recordLine(bad) + '\n', 'x coldstart_record']))]);
  assertConforms(await send(request), request, 200);
  const line = await ctx.server.waitForLog((l) => l.msg === 'firehose delivery' && l.firehose_request_id === request.requestId);
  assert.ok(line, 'a "firehose delivery" log line');
  assert.equal(line.accepted, 1);
  assert.equal(line.invalid, 1);
  assert.equal(line.ignored, 1);
  const all = ctx.server.stderrLines.join('\n');
  assert.ok(!all.includes(ctx.key), 'the key is logged');
  assert.ok(!all.includes(marker), 'a record is logged');
  const m = (await http(`http://127.0.0.1:${metricsPort}`, 'GET', '/metrics')).text;
  const value = (name) =>
    Number((m.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{')) || ' NaN').split(' ').pop());
  assert.ok(value('csa_firehose_deliveries_total') >= 1, m);
  for (const outcome of ['accepted', 'invalid', 'ignored']) {
    const l = m.split('\n').find((x) => x.startsWith(`csa_firehose_lines_total{outcome="${outcome}"}`));
    assert.ok(l && Number(l.split(' ').pop()) >= 1, `csa_firehose_lines_total ${outcome}: ${l}`);
  }
});

test('what a Firehose stream does end to end: delivered on the first attempt, stored once', async () => {
  const recs = [0, 1, 2, 3, 4].map(() => fullRecord({ function_name: 'fh-e2e', invocation_id: uid('e2e') }));
  const request = firehoseRequest(
    [
      dataMessage(
        filtered(recs.flatMap((r) => [...platformLines(r.request_id), nodeConsoleLine(recordLine(r), { requestId: r.request_id })])),
      ),
    ],
    { gzip: true },
  );
  const r = await deliverLikeFirehose(send, request, { retryDurationMs: 1000 });
  assert.equal(r.outcome, 'delivered');
  assert.equal(r.attempts, 1);
  assert.equal(await countIds(recs.map((x) => x.invocation_id)), 5);
});
