'use strict';
// The backend stand-in for the warm benchmark: answers every POST with 200, in its own process
// so that its CPU is not counted; also the coldstart extension's stream endpoint (newline-delimited
// records, "ack <n>" after each read: extension/src/stream.h). Prints its HTTP and stream ports,
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
  socket.setNoDelay(true);
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    const before = taken;
    for (const line of lines) if (line !== '' && !line.startsWith('{"coldstart":"hello"')) taken++;
    records += taken - before;
    if (taken !== before) socket.write(`ack ${taken}\n`);
  });
});
server.listen(0, '127.0.0.1', () =>
  stream.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port} ${stream.address().port}\n`)),
);
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify({ records }) + '\n');
  process.exit(0);
});
