// The Python SDK (sdk-python/) end to end: the ground-truth fixture function (real dist-info
// metadata, a namespace package, a C extension when gcc can build it, a circular and a failing
// import) loaded through the handler redirect in fresh python3 processes under the Lambda runtime
// emulator (sdk-python/tests/lambda_emulator.py), its records sent directly to the real coldstartd
// and, for a second function, as log lines delivered the CloudWatch Logs -> Firehose way. The rows
// and the detail API must show the distributions, their versions and a Python runtime.
// PYTHON (default /usr/bin/python3) runs the fixture.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { dataMessage, deliverLikeFirehose, deliveryRequest, filterTerm, logEvents, recordData } from './cloudwatch-firehose.mjs';
import { REPO, useServer } from './harness.mjs';

const ctx = useServer({ projectName: 'Python SDK', slug: 'python-sdk' });
const PYTHON = process.env.PYTHON || '/usr/bin/python3';
const SDK = path.join(REPO, 'sdk-python');
const WARM = 2;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'csa-python-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const taskRoot = path.join(scratch, 'task');
const built = spawnSync(PYTHON, [path.join(SDK, 'tests', 'fixture_builder.py'), taskRoot], { encoding: 'utf8' });
const hasCext = built.stdout.trim() === 'True';

function environment(name, env) {
  const run = spawnSync(PYTHON, [path.join(SDK, 'tests', 'lambda_emulator.py')], {
    encoding: 'utf8',
    timeout: 120000,
    env: {
      PATH: process.env.PATH,
      PYTHONPATH: SDK,
      LAMBDA_TASK_ROOT: taskRoot,
      _HANDLER: 'coldstart_analyzer.handler.handler',
      COLDSTART_HANDLER: 'app.handler',
      AWS_LAMBDA_FUNCTION_NAME: name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_EXECUTION_ENV: 'AWS_Lambda_python3.12',
      AWS_REGION: 'eu-west-1',
      AWS_LAMBDA_FUNCTION_VERSION: '3',
      EMULATOR_INVOCATIONS: String(1 + WARM),
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
      i.module_tree IS NOT NULL AS tree, i.sdk_version AS sdk, i.runtime_version AS runtime, f.region, i.init_type,
      i.memory_allocated_mb AS allocated, i.module_source AS source, i.function_version AS version, i.code_id
    FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = '${name}' ORDER BY i.cold_start DESC, i.timestamp`;
  return ctx.rowsAtLeast(query, expected, 15000);
}

const DISTRIBUTIONS = [
  'alpha-dist',
  'Beta-Pkg',
  'Fancy-Name',
  'nsp-one',
  'nsp-two',
  'circ',
  'flaky-dist',
  'pyc-only',
  './app',
  './lib/util',
];

test('a Python function: records stored, the detail API shows its distributions and versions', async () => {
  const name = `python-direct-${randomUUID().slice(0, 8)}`;
  // outside Lambda (no AWS_LAMBDA_RUNTIME_API) the warm batch still waiting is sent at exit
  const out = environment(name, { COLDSTART_TRANSPORT: 'direct', COLDSTART_API_KEY: ctx.key, COLDSTART_ENDPOINT: ctx.base });
  assert.equal(out.length, 0, 'nothing on stdout with the direct transport');
  const rows = await rowsOf(name, 1 + WARM);
  assert.equal(rows.length, 1 + WARM);
  const [cold, ...warm] = rows;
  assert.equal(cold.cold, true);
  assert.equal(cold.kind, 'cold');
  assert.equal(cold.runtime, 'python3.12');
  assert.equal(cold.source, 'hooks');
  assert.ok(cold.init && cold.exec && cold.mem && cold.tree, JSON.stringify(cold));
  for (const key of DISTRIBUTIONS.concat(hasCext ? ['cext-dist'] : []))
    assert.ok(cold.modules[key] > 0, `${key} in ${Object.keys(cold.modules)}`);
  assert.ok(!('lazy-dist' in cold.modules), 'the lazy import in the handler is not init');
  assert.deepEqual(
    warm.map((r) => r.kind),
    ['warm', 'warm'],
  );
  // the deployment identity: Lambda's version, and the code's fingerprint on every row
  assert.deepEqual(
    rows.map((r) => r.version),
    ['3', '3', '3'],
  );
  assert.match(cold.code_id, /^[0-9a-f]{32}$/);
  assert.deepEqual(
    warm.map((r) => r.code_id),
    [cold.code_id, cold.code_id],
  );

  const list = await ctx.get('/api/v1/functions', { headers: { 'X-API-Key': ctx.key } });
  assert.equal(list.status, 200);
  const fn = list.json.functions.find((f) => f.function_name === name);
  assert.equal(fn.runtime, 'python3.12');
  const detail = await ctx.get(`/api/v1/functions/${fn.id}`, { headers: { 'X-API-Key': ctx.key } });
  assert.equal(detail.status, 200);
  assert.equal(detail.json.cold_starts, 1);
  const breakdown = detail.json.module_breakdown;
  assert.ok(breakdown['alpha-dist'].p50_ms >= 160, JSON.stringify(breakdown['alpha-dist']));
  assert.equal(breakdown['alpha-dist'].version, '1.2.3');
  // nested a level down (alpha imports beta); the tree keeps a node's 8 largest children, so the
  // fixture's smallest distributions are in "(other)" and have no version here
  assert.equal(breakdown['Beta-Pkg'].version, '0.4');
  assert.equal(detail.json.module_tree.coverage, 'redirect');
  // the rules are picked by the function's runtime: the Python variant of the generic advice
  const advice = detail.json.recommendations.find((r) => r.module === 'alpha-dist');
  assert.equal(advice?.rule_id, 'python-large-module', JSON.stringify(detail.json.recommendations));
});

test('a Python function through the logs transport and Firehose makes the same rows as direct', async () => {
  const direct = `python-d-${randomUUID().slice(0, 8)}`;
  const logs = `python-l-${randomUUID().slice(0, 8)}`;
  environment(direct, { COLDSTART_TRANSPORT: 'direct', COLDSTART_API_KEY: ctx.key, COLDSTART_ENDPOINT: ctx.base });
  const lines = environment(logs, { COLDSTART_TRANSPORT: 'logs', AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9' });
  assert.equal(lines.length, 1 + WARM, 'one line per invocation');
  const requestId = randomUUID();
  const messages = [`START RequestId: ${requestId} Version: $LATEST`, ...lines, `END RequestId: ${requestId}`];
  const events = filterTerm('coldstart_record', logEvents(messages));
  assert.equal(events.length, lines.length);
  const request = deliveryRequest([{ data: recordData(dataMessage(events, { logGroup: `/aws/lambda/${logs}` })) }], {
    accessKey: ctx.key,
    gzip: true,
  });
  const send = (req) => ctx.request('POST', '/api/v1/ingest/firehose', { body: req.body, headers: req.headers });
  const delivered = await deliverLikeFirehose(send, request);
  assert.equal(delivered.outcome, 'delivered', JSON.stringify(delivered.last?.body));

  const a = await rowsOf(direct, 1 + WARM);
  const b = await rowsOf(logs, 1 + WARM);
  assert.equal(a.length, 1 + WARM);
  assert.equal(b.length, 1 + WARM);
  for (const [i, row] of a.entries()) {
    const { modules: ma, ...restA } = row;
    const { modules: mb, ...restB } = b[i];
    assert.deepEqual(restB, restA, `row ${i}`);
    assert.deepEqual(Object.keys(mb ?? {}).sort(), Object.keys(ma ?? {}).sort(), `module_timings keys, row ${i}`);
  }
});

test('python -m coldstart_analyzer profile --send: one cold start per run, marked as a profile', async () => {
  const name = `python-profile-${randomUUID().slice(0, 8)}`;
  const run = spawnSync(
    PYTHON,
    ['-m', 'coldstart_analyzer', 'profile', path.join(taskRoot, 'app.py'), '--runs', '2', '--send', '--function-name', name],
    {
      encoding: 'utf8',
      timeout: 120000,
      env: { PATH: process.env.PATH, PYTHONPATH: SDK, COLDSTART_ENDPOINT: ctx.base, COLDSTART_API_KEY: ctx.key },
    },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /sent 2 records/);
  assert.match(run.stdout, /alpha-dist 1\.2\.3/);
  const rows = await ctx.rowsAtLeast(
    `SELECT i.cold_start AS cold, i.start_kind AS kind, i.init_type, i.runtime_version AS runtime, i.function_version AS version, i.code_id,
        (i.module_timings->>'alpha-dist')::float AS alpha
      FROM invocations i JOIN functions f ON f.id = i.function_id WHERE f.function_name = '${name}'`,
    2,
    15000,
  );
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.deepEqual([row.cold, row.kind, row.init_type, row.version], [true, 'cold', 'coldstart-profile', '$LATEST']);
    assert.match(row.runtime, /^python3\.\d+$/);
    assert.match(row.code_id, /^[0-9a-f]{32}$/);
    assert.ok(row.alpha >= 160, JSON.stringify(row));
  }
  assert.equal(rows[0].code_id, rows[1].code_id, 'the same code, the same code_id');
});
