// Handler redirect: set the Lambda handler to node_modules/@coldstart/analyzer/handler.handler
// and COLDSTART_HANDLER to the original (e.g. index.handler). The SDK loads before the function's
// code, then loads and wraps the original handler during init.
import { createRequire } from 'node:module';

const start = process.hrtime.bigint();
const core = createRequire(import.meta.url)('./dist/index.cjs');

export const handler = await core.__redirectHandler(start);
