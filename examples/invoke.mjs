// Runs an example function the way Lambda does, against a local coldstartd:
//   node invoke.mjs <function dir> [--cold N] [--warm M] [--name FUNCTION]
// Each cold start is a fresh Node.js process (a new execution environment) that loads the
// handler and invokes it 1 + M times, with Lambda's environment variables set. The SDK inside
// the handler sends its records to COLDSTART_ENDPOINT with COLDSTART_API_KEY. The function's name
// is the folder's, or --name: running another folder under the same name is a new deployment of
// that function (the SDK's code_id changes with the code).
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const dir = path.resolve(here, args[0] || 'orders-v2');
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const cold = opt('--cold', 5);
const warm = opt('--warm', 3);
const nameAt = args.indexOf('--name');
const name = nameAt >= 0 && args[nameAt + 1] ? args[nameAt + 1] : path.basename(dir);

if (!process.env.COLDSTART_API_KEY || !process.env.COLDSTART_ENDPOINT) {
  console.error('invoke.mjs: set COLDSTART_API_KEY and COLDSTART_ENDPOINT');
  process.exit(2);
}

// One execution environment: load the handler (the init phase), then invoke it.
const environment = `
  const handler = require(${JSON.stringify(path.join(dir, 'handler.js'))}).handler;
  (async () => {
    for (let i = 0; i <= ${warm}; i++) {
      const requestId = require('node:crypto').randomUUID();
      const deadline = Date.now() + 30000;
      const context = {
        functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, awsRequestId: requestId,
        memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, callbackWaitsForEmptyEventLoop: true,
        getRemainingTimeInMillis: () => deadline - Date.now(),
      };
      await handler({ orderId: 'o-' + i }, context);
    }
  })().catch((e) => { console.error(e); process.exit(1); });
`;

let failures = 0;
for (let i = 0; i < cold; i++) {
  const r = spawnSync(process.execPath, ['-e', environment], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      AWS_LAMBDA_FUNCTION_NAME: name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_EXECUTION_ENV: `AWS_Lambda_nodejs${process.versions.node.split('.')[0]}.x`,
      AWS_REGION: 'us-east-1',
      LAMBDA_TASK_ROOT: dir,
      _X_AMZN_TRACE_ID: `Root=1-${randomUUID()}`,
      NODE_NO_WARNINGS: '1',
    },
  });
  if (r.status !== 0) failures++;
}
console.log(`${name}: ${cold} cold starts x ${1 + warm} invocations sent${failures ? `, ${failures} failed` : ''}`);
process.exit(failures ? 1 : 0);
