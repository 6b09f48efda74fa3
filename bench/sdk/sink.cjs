'use strict';
// The backend stand-in for the warm benchmark: answers every POST with 200, in its own process
// so that its CPU is not counted. Prints its port, then counts records until killed.
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
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\n'));
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify({ records }) + '\n');
  process.exit(0);
});
