'use strict';
// Starts AWS's Runtime Interface Client (aws-lambda-ric, Node.js 22+) as Lambda's managed runtime
// does: `aws-lambda-ric <_HANDLER>`, from the task root, under the Node.js of the process tests
// (RIC_NODE). The emulator (extension/tests/lambda-emulator.mjs) runs this file with its own
// Node.js, which can be older than the client needs; this wrapper only hands over to it and ends
// with it. RIC_INDEX: the client's index.mjs.
const { spawn } = require('node:child_process');

const child = spawn(process.env.RIC_NODE, [process.env.RIC_INDEX, process.env._HANDLER], {
  cwd: process.env.LAMBDA_TASK_ROOT,
  env: process.env,
  stdio: 'inherit',
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
