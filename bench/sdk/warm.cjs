'use strict';
// Warm invocations: CPU per invocation and heap growth. Usage: node --expose-gc warm.cjs <bare|sdk> <count>
// Each invocation is followed by one event-loop turn (setImmediate), as between Lambda invocations,
// so that the SDK's background batches really go out during the run.
const mode = process.argv[2];
const count = Number(process.argv[3] ?? 100000);
const original = require('./app/trivial.js').handler;
const handler = mode === 'sdk' ? require('@coldstart/analyzer').analyze(original) : original;
const context = (i) => ({ functionName: 'bench', awsRequestId: `r-${i}`, getRemainingTimeInMillis: () => 30000 });
const turn = () => new Promise((resolve) => setImmediate(resolve));
const heap = () => {
  global.gc();
  global.gc();
  return process.memoryUsage().heapUsed;
};
(async () => {
  await handler({}, context(0)); // the cold one (awaited send)
  for (let i = 1; i <= 1000; i++) {
    await handler({}, context(i));
    await turn();
  }
  const heapStart = heap();
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  const samples = [];
  for (let i = 1; i <= count; i++) {
    await handler({}, context(i));
    await turn();
    if (i % (count / 10) === 0) samples.push(heap());
  }
  const cpu = process.cpuUsage(cpuStart);
  const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  const heapEnd = heap();
  const runtime = globalThis[Symbol.for('coldstart.analyzer.runtime')];
  const stats = runtime ? [...runtime.senders.values()].map((sender) => sender.stats) : [];
  process.stdout.write(
    JSON.stringify({
      mode,
      count,
      cpuUsPerInvocation: (cpu.user + cpu.system) / count,
      wallMs,
      heapStart,
      heapEnd,
      heapSamples: samples,
      stats,
    }) + '\n',
  );
})();
