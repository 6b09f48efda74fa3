'use strict';
// A minimal Lambda runtime interface client, as the managed Node.js runtime behaves: loads
// LAMBDA_TASK_ROOT/<file>.<export> from _HANDLER, reports init errors, then loops on the Runtime
// API (next -> handler -> response | error). Zero dependencies; run by lambda-emulator.mjs.
// Like AWS's runtime interface client, whose native client posts the response synchronously
// (rapid-client's done()), the response and error posts block this thread until the Runtime API
// has answered; the next iteration then starts from a setImmediate callback. Code the handler
// queued with setImmediate (the SDK's warm record) therefore runs after the Runtime API has the
// response, as on Lambda. The blocking post is made by a worker thread while this one waits.

const http = require('node:http');
const path = require('node:path');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`http://${api}${urlPath}`, { method, agent, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// postSync: the worker makes the request; this thread waits on a shared word for its status
const { Worker } = require('node:worker_threads');
const shared = new Int32Array(new SharedArrayBuffer(4));
const poster = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
  const http = require('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const word = new Int32Array(workerData);
  const done = (status) => { Atomics.store(word, 0, status); Atomics.notify(word, 0); };
  parentPort.on('message', ({ url, body, headers }) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode));
    });
    req.on('error', () => done(-1));
    req.end(body);
  });`,
  { eval: true, workerData: shared.buffer },
);
poster.unref();
function postSync(urlPath, body, headers) {
  Atomics.store(shared, 0, 0);
  poster.postMessage({ url: `http://${api}${urlPath}`, body, headers });
  Atomics.wait(shared, 0, 0);
  return Atomics.load(shared, 0);
}

const errorBody = (e) => JSON.stringify({ errorType: (e && e.name) || 'Error', errorMessage: String((e && e.message) || e), stackTrace: [] });

async function main() {
  const [file, exportName] = (process.env._HANDLER || 'index.handler').split('.');
  let handler;
  try {
    const mod = require(path.join(process.env.LAMBDA_TASK_ROOT, file));
    handler = mod[exportName];
    if (typeof handler !== 'function') throw Object.assign(new Error(`${exportName} is not a function`), { name: 'Runtime.HandlerNotFound' });
  } catch (e) {
    await request('POST', '/2018-06-01/runtime/init/error', errorBody(e));
    process.exit(129);
  }
  let postedAt;
  for (;;) {
    // when the previous response's post was answered and when this request leaves: the work that
    // invocation queued behind its response (the SDK's record), for the emulator's bench
    const after = postedAt === undefined ? {} : { 'x-emulator-response-posted-ns': String(postedAt), 'x-emulator-next-asked-ns': String(process.hrtime.bigint()) };
    const next = await request('GET', '/2018-06-01/runtime/invocation/next', undefined, after);
    const eventAt = process.hrtime.bigint();
    const id = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms']);
    const context = {
      awsRequestId: id,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    let result;
    let failed;
    try {
      result = await handler(JSON.parse(next.body), context);
    } catch (e) {
      failed = e;
    }
    // when this process read its event and had its response ready, on the machine's monotonic clock
    // (the emulator's too): the function's own duration, whatever the API's answers wait for, and
    // the event's and the response's way between the processes (for the emulator's bench)
    const body = failed === undefined ? JSON.stringify(result === undefined ? null : result) : errorBody(failed);
    const timing = { 'x-emulator-event-read-ns': String(eventAt), 'x-emulator-response-ready-ns': String(process.hrtime.bigint()) };
    postSync(`/2018-06-01/runtime/invocation/${id}/${failed === undefined ? 'response' : 'error'}`, body, timing);
    postedAt = process.hrtime.bigint();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

main().catch((e) => {
  process.stderr.write(`runtime: ${e && e.stack}\n`);
  process.exit(1);
});
