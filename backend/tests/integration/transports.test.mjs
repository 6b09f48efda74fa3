// The same function through two of the SDK's transports ends up as the same rows: directly to
// coldstartd over HTTP, and as lines on stdout (COLDSTART_TRANSPORT=logs) that CloudWatch Logs and
// Firehose bring to POST /api/v1/ingest/firehose (emulated from AWS's published formats, real gzip,
// cloudwatch-firehose.mjs). Real handler with real npm dependencies (examples/orders-v3), the real
// built SDK, fresh Node.js processes, the real server and PostgreSQL. (The extension's transport is
// tested against the same server by extension/tests.)
// Needs `cd sdk && npm ci && npm run build` and `cd examples && npm ci` (scripts/test.sh does both).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import {
  dataMessage,
  deliverLikeFirehose,
  deliveryRequest,
  filterTerm,
  logEvents,
  nodeConsoleLine,
  recordData,
} from './cloudwatch-firehose.mjs';
import { REPO, useServer } from './harness.mjs';

const ctx = useServer({ projectName: 'Transports', slug: 'transports' });
const WARM = 2;
const DIR = path.join(REPO, 'examples', 'orders-v3');

/** One execution environment: loads the handler (init), invokes it 1 + WARM times; returns its stdout lines. */
function environment(name, env) {
  const script = `
    const handler = require(${JSON.stringify(path.join(DIR, 'handler.js'))}).handler;
    (async () => {
      for (let i = 0; i <= ${WARM}; i++) {
        const deadline = Date.now() + 30000;
        await handler({ orderId: 'o-' + i }, { functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
          awsRequestId: require('node:crypto').randomUUID(), getRemainingTimeInMillis: () => deadline - Date.now() });
      }
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const run = spawnSync(process.execPath, ['-e', script], {
    cwd: DIR,
    encoding: 'utf8',
    timeout: 60000,
    env: {
      PATH: process.env.PATH,
      AWS_LAMBDA_FUNCTION_NAME: name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      AWS_REGION: 'eu-west-1',
      LAMBDA_TASK_ROOT: DIR,
      NODE_NO_WARNINGS: '1',
      ...env,
    },
  });
  assert.equal(run.status, 0, `environment failed: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\[coldstart\]/, 'no delivery problem reported');
  return run.stdout.split('\n').filter((line) => line !== '');
}

async function rowsOf(name, expected) {
  const query = `SELECT i.cold_start AS cold, i.start_kind AS kind, i.init_duration_ms IS NOT NULL AS init,
      i.execution_duration_ms IS NOT NULL AS exec, i.memory_used_mb IS NOT NULL AS mem, i.module_timings AS modules,
      i.module_tree IS NOT NULL AS tree, i.module_tree::text LIKE '%"version"%' AS versions, i.sdk_version AS sdk,
      i.runtime_version AS runtime, f.region, i.init_type, i.memory_allocated_mb AS allocated, i.module_source AS source
    FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = '${name}' ORDER BY i.cold_start DESC, i.timestamp`;
  return ctx.rowsAtLeast(query, expected, 10000);
}

test('direct and logs transports: the same function makes the same rows', async () => {
  const direct = `transport-direct-${randomUUID().slice(0, 8)}`;
  const logs = `transport-logs-${randomUUID().slice(0, 8)}`;
  const directOut = environment(direct, { COLDSTART_TRANSPORT: 'direct', COLDSTART_API_KEY: ctx.key, COLDSTART_ENDPOINT: ctx.base });
  assert.equal(directOut.length, 0, 'nothing on stdout with the direct transport');

  // logs: no API key and no endpoint in the function; one line per record on stdout
  const lines = environment(logs, { COLDSTART_TRANSPORT: 'logs', COLDSTART_ENDPOINT: 'http://127.0.0.1:9' });
  assert.equal(lines.length, 1 + WARM, 'one line per invocation');
  for (const line of lines) assert.ok(JSON.parse(line).coldstart_record, line.slice(0, 80));
  // the log group as CloudWatch stores it: the platform's lines around, one record line as the
  // Node.js runtime's console would prefix it; the subscription filter keeps the term's events
  const requestId = randomUUID();
  const messages = [
    `START RequestId: ${requestId} Version: $LATEST`,
    lines[0],
    `END RequestId: ${requestId}`,
    nodeConsoleLine('an order was placed', { requestId }),
    nodeConsoleLine(lines[1], { requestId }),
    ...lines.slice(2),
  ];
  const events = filterTerm('coldstart_record', logEvents(messages));
  assert.equal(events.length, lines.length);
  const request = deliveryRequest([{ data: recordData(dataMessage(events, { logGroup: `/aws/lambda/${logs}` })) }], {
    accessKey: ctx.key,
    gzip: true,
  });
  const send = (req) => ctx.request('POST', '/api/v1/ingest/firehose', { body: req.body, headers: req.headers });
  const delivered = await deliverLikeFirehose(send, request);
  assert.equal(delivered.outcome, 'delivered', JSON.stringify(delivered.last?.body));
  // Firehose delivers again (it retries a batch whose answer it did not get): stored once
  assert.equal((await deliverLikeFirehose(send, request)).outcome, 'delivered');

  const a = await rowsOf(direct, 1 + WARM);
  const b = await rowsOf(logs, 1 + WARM);
  assert.equal(a.length, 1 + WARM);
  assert.equal(b.length, 1 + WARM);
  for (const [i, row] of a.entries()) {
    const other = b[i];
    // every column but the measured values agrees; the module timings have the same packages
    const { modules: ma, ...restA } = row;
    const { modules: mb, ...restB } = other;
    assert.deepEqual(restB, restA, `row ${i}`);
    assert.deepEqual(Object.keys(mb ?? {}).sort(), Object.keys(ma ?? {}).sort(), `module_timings keys, row ${i}`);
  }
  const cold = a[0];
  assert.equal(cold.cold, true);
  assert.equal(cold.kind, 'cold');
  assert.ok(cold.init && cold.exec && cold.tree && cold.versions, JSON.stringify(cold));
  assert.ok('@aws-sdk/client-dynamodb' in cold.modules, Object.keys(cold.modules).join(','));
});
