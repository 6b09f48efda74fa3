'use strict';
// The backend stand-in for the warm benchmark: answers every POST with 200, in its own process
// so that its CPU is not counted; also the coldstart extension's stream endpoint (newline-delimited
// records, "ack <n>" coalesced as the extension does: extension/src/stream.h). Prints its HTTP and stream ports,
// then counts records until killed.
const http = require('node:http');
let records = 0;
const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (c) => chunks.push(c));
  request.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      records += Array.isArray(body.invocations) ? body.invocations.length : 1;
    } catch {}
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"status":"ok"}');
  });
});
server.keepAliveTimeout = 60_000;
const stream = require('node:net').createServer((socket) => {
  let rest = '';
  let taken = 0;
  let acked = 0;
  let timer;
  const ack = () => {
    clearTimeout(timer);
    timer = undefined;
    acked = taken;
    if (!socket.destroyed) socket.write(`ack ${taken}\n`);
  };
  socket.setNoDelay(true);
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('close', () => clearTimeout(timer));
  socket.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    const before = taken;
    for (const line of lines) if (line !== '' && !line.startsWith('{"coldstart":"hello"')) taken++;
    records += taken - before;
    // acknowledged as the extension does (extension/src/stream.c): one per 64 lines, the rest within a second
    if (taken - acked >= 64) ack();
    else if (taken !== acked && !timer) timer = setTimeout(ack, 1000);
  });
});
server.listen(0, '127.0.0.1', () =>
  stream.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port} ${stream.address().port}\n`)),
);
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify({ records }) + '\n');
  process.exit(0);
});
