// A stand-in for AWS's runtime interface client 4 in instructions.mjs: it loads node:module and
// uses import.meta as the client does, import()s the handler file as the client does (argv[2]),
// calls the handler once and exits as soon as its promise settles (init and the first response,
// not what the SDK does after the response). With BENCH_SPAN=invocation it lets the process end on
// its own instead, once the event loop is empty: the SDK's work after the response (the cold-start
// record, the collection of gc.ts) is counted too, as in the first invocation's billed time.
import { createRequire } from 'node:module';

createRequire(import.meta.url);
const loaded = await import(process.argv[2]);
const handler = loaded.handler ?? loaded.default?.handler;
const result = await handler({}, { awsRequestId: 'instructions', getRemainingTimeInMillis: () => 10_000 });
process.stdout.write(`${JSON.stringify({ responded: result !== undefined })}\n`);
if (process.env.BENCH_SPAN !== 'invocation') process.exit(0);
