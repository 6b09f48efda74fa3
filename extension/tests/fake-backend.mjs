// A stand-in for coldstartd that records what the extension ships. mode: 'ok' (200), 'down'
// (503), 'reset' (connection destroyed without an answer); delayMs holds every answer.
// Like the real backend, a record is stored once per invocation_id (idempotent ingest).
import http from 'node:http';
import https from 'node:https';

export class FakeBackend {
  constructor() {
    this.mode = 'ok';
    this.delayMs = 0;
    this.attempts = []; // {at, path, status, ids, key}
    this.stored = new Map(); // invocation_id -> record
    this.storeCounts = new Map(); // invocation_id -> times accepted in a 2xx batch
  }

  /** tls: {key, cert} (PEM) to serve https:// */
  async listen(tls) {
    const handler = (req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        const list = req.url === '/api/v1/ingest/batch' ? body?.invocations ?? [] : body ? [body] : [];
        const attempt = { at: Date.now(), path: req.url, ids: list.map((r) => r.invocation_id), key: req.headers['x-api-key'], mode: this.mode };
        this.attempts.push(attempt);
        if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
        if (attempt.mode === 'reset') return req.socket.destroy();
        if (attempt.mode === 'down') {
          attempt.status = 503;
          res.writeHead(503, { 'content-type': 'application/json' });
          return res.end('{"detail":"down","error_code":"SERVICE_UNAVAILABLE"}');
        }
        for (const r of list) {
          this.storeCounts.set(r.invocation_id, (this.storeCounts.get(r.invocation_id) ?? 0) + 1);
          if (!this.stored.has(r.invocation_id)) this.stored.set(r.invocation_id, r);
        }
        attempt.status = 200;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accepted: list.length }));
      });
    };
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    this.tlsErrors = 0;
    this.server.on('tlsClientError', () => this.tlsErrors++);
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  records() {
    return [...this.stored.values()];
  }

  close() {
    this.server.close();
    this.server.closeAllConnections?.();
  }
}

// Run as a program: `node fake-backend.mjs <count> [key.pem cert.pem]` starts <count> backends
// (https with the key and certificate) in a process of their own, so that a benchmark's own event
// loop does not receive what the extension ships. Prints their URLs as one JSON line; each "stats"
// line on stdin is answered with a JSON line of the records each has stored.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync } = await import('node:fs');
  const tls = process.argv[3] ? { key: readFileSync(process.argv[3]), cert: readFileSync(process.argv[4]) } : undefined;
  const backends = [];
  for (let i = 0; i < Number(process.argv[2] || 1); i++) backends.push(await new FakeBackend().listen(tls));
  process.stdout.write(JSON.stringify(backends.map((b) => b.url)) + '\n');
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    input += chunk;
    for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) {
      if (input.slice(0, nl) === 'stats') process.stdout.write(JSON.stringify(backends.map((b) => b.stored.size)) + '\n');
      input = input.slice(nl + 1);
    }
  });
  process.stdin.on('end', () => process.exit(0));
}
