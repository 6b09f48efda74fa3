'use strict';
// The backends of the cold-request benchmark, in a process of their own (their CPU is not the
// function's): one that answers every POST with 202 at once and counts the cold-start records per
// function (GET /cold?fn=NAME), and one that accepts connections and never answers. Prints both
// ports, then runs until killed.
const http = require('node:http');
const net = require('node:net');

const cold = new Map();
const answering = http.createServer((request, response) => {
  if (request.method === 'GET') {
    const name = new URL(request.url, 'http://x').searchParams.get('fn');
    response.end(String(cold.get(name) ?? 0));
    return;
  }
  const chunks = [];
  request.on('data', (c) => chunks.push(c));
  request.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      for (const record of Array.isArray(body.invocations) ? body.invocations : [body]) {
        if (record.cold_start && record.complete !== false) cold.set(record.function_name, (cold.get(record.function_name) ?? 0) + 1);
      }
    } catch {}
    response.writeHead(202, { 'content-type': 'application/json' });
    response.end('{"status":"accepted"}');
  });
});
answering.keepAliveTimeout = 60_000;
const silent = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.resume(); // reads, never answers
});
answering.listen(0, '127.0.0.1', () => {
  silent.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${answering.address().port} ${silent.address().port}\n`);
  });
});
process.on('SIGTERM', () => process.exit(0));
