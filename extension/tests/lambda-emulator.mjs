// An emulator of one Lambda execution environment: the Runtime API (2018-06-01), the Extensions
// API (2020-01-01) and the Telemetry API (2022-07-01), built from AWS's published descriptions.
//
// Phases as Lambda runs them: INIT (extensions start and register, then the runtime starts; init
// ends when the runtime and every extension have asked for their next event), INVOKE (the event to
// the runtime, platform.start, INVOKE to the extensions subscribed to it, platform.runtimeDone when
// the runtime answers, platform.report once the runtime and those extensions are all waiting
// again), then the environment is frozen (SIGSTOP per process, or the cgroup freezer: see the
// constructor) until the next invoke or SHUTDOWN. Telemetry is buffered per subscription
// (maxItems, maxBytes, timeoutMs) and only delivered while thawed; a timeout that ran out while
// frozen delivers at thaw. SHUTDOWN kills the runtime, sends the SHUTDOWN event
// with a deadline, then SIGKILLs whatever is still running at the deadline.
// Zero dependencies: node: built-ins only.

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const FREEZER = '/sys/fs/cgroup/freezer';
let cgroups = 0;

const SCHEMAS = new Set(['2022-07-01', '2022-12-13', '2025-01-29']);
const TYPES = new Set(['platform', 'function', 'extension']);
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** A stamp of the test runtime's (process.hrtime.bigint() there, the clock of now() here) from a header, in ms; NaN if absent. */
function stamp(text) {
  return typeof text === 'string' && /^\d{1,20}$/.test(text) ? Number(BigInt(text)) / 1e6 : NaN;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function vmHwmMb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** A loopback port that was free a moment ago (the kernel's pick). */
export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

export function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
  } catch {
    return NaN;
  }
}

export class LambdaEmulator {
  /**
   * options: extension (path), taskRoot, handler ('index.handler'), env (for both processes),
   * extensionEnv / runtimeEnv (for one of them), node (the runtime's Node.js binary, default this
   * one's) and nodeArgs (before the runtime's script),
   * functionName, memoryMB, timeoutMs, freeze (default true), shutdownMs (2000 with external
   * extensions), runtime (path of the runtime client), freezer ('signal', the default: SIGSTOP and
   * SIGCONT to each process; 'cgroup': the cgroup v1 freezer, as Lambda freezes an environment,
   * one write for all its processes, when /sys/fs/cgroup/freezer is writable, else 'signal')
   */
  constructor(options) {
    this.o = { functionName: 'emulated-fn', memoryMB: 512, timeoutMs: 3000, freeze: true, shutdownMs: 2000, handler: 'index.handler', ...options };
    this.events = []; // every telemetry event emitted, in order
    this.deliveries = []; // {status, count} per telemetry POST
    this.registrations = [];
    this.subscriptions = [];
    this.errors = []; // init/exit errors reported by extensions
    this.extensions = new Map(); // id -> {name, events, next: res|null, queue: [], proc}
    this.waiters = [];
    this.frozen = false;
    this.invokes = 0;
    this.exited = new Map(); // process -> {code, signal, at}
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  async listen() {
    this.server = http.createServer((req, res) => this.route(req, res));
    this.server.keepAliveTimeout = 0;
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.address = `127.0.0.1:${this.server.address().port}`;
  }

  async route(req, res) {
    const body = await readBody(req);
    const url = req.url.split('?')[0];
    const id = req.headers['lambda-extension-identifier'];
    const ext = id ? this.extensions.get(id) : undefined;
    let m;
    if (req.method === 'POST' && url === '/2020-01-01/extension/register') return this.register(req, res, body);
    if (req.method === 'GET' && url === '/2020-01-01/extension/event/next') {
      if (!ext) return send(res, 403, { errorMessage: 'Extension identifier missing or unknown', errorType: 'Extension.ForbiddenError' });
      ext.next = res;
      ext.nextCalls++;
      this.pump(ext);
      return this.wake();
    }
    if (req.method === 'POST' && (m = /^\/2020-01-01\/extension\/(init|exit)\/error$/.exec(url))) {
      if (!ext) return send(res, 403, { errorType: 'Extension.ForbiddenError', errorMessage: 'unknown extension' });
      this.errors.push({ kind: m[1], type: req.headers['lambda-extension-function-error-type'], body });
      return send(res, 202, { status: 'OK' });
    }
    if (req.method === 'PUT' && (url === '/2022-07-01/telemetry' || url === '/2022-07-01/telemetry/')) return this.subscribe(req, res, body, ext);
    if (req.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      // the test runtime's stamps: what the invocation that ends here ran after its response (runtime.cjs)
      if (this.current && this.current.respondedAt !== undefined)
        this.current.afterResponseMs = stamp(req.headers['x-emulator-next-asked-ns']) - stamp(req.headers['x-emulator-response-posted-ns']);
      this.runtimeNext = res;
      this.pumpRuntime();
      return this.wake();
    }
    if (req.method === 'POST' && (m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url))) {
      const inv = this.current;
      if (!inv || inv.requestId !== m[1]) return send(res, 400, { errorType: 'InvalidRequestID', errorMessage: 'unknown request id' });
      inv.respondedAt = now();
      // the test runtime's stamps (runtime.cjs), on the same monotonic clock as now() here
      inv.eventRead = stamp(req.headers['x-emulator-event-read-ns']);
      inv.responseReady = stamp(req.headers['x-emulator-response-ready-ns']);
      inv.status = m[2] === 'response' ? 'success' : 'error';
      inv.body = body;
      send(res, 202, { status: 'OK' });
      this.emit('platform.runtimeDone', {
        requestId: inv.requestId,
        status: inv.status,
        ...(inv.status === 'error' ? { errorType: safeType(body) } : {}),
        metrics: { durationMs: round(inv.respondedAt - inv.startedAt), producedBytes: Buffer.byteLength(body) },
        spans: [{ name: 'responseLatency', start: new Date().toISOString(), durationMs: round(inv.respondedAt - inv.startedAt) }],
      });
      return this.wake();
    }
    if (req.method === 'POST' && url === '/2018-06-01/runtime/init/error') {
      this.initError = { type: req.headers['lambda-runtime-function-error-type'], body };
      send(res, 202, { status: 'OK' });
      return this.wake();
    }
    send(res, 404, { errorMessage: `no route ${req.method} ${url}`, errorType: 'NotFound' });
  }

  register(req, res, body) {
    const name = req.headers['lambda-extension-name'];
    let events;
    try {
      events = JSON.parse(body).events;
    } catch {
      return send(res, 400, { errorMessage: 'invalid JSON', errorType: 'InvalidRequestFormat' });
    }
    if (!name) return send(res, 400, { errorMessage: 'Lambda-Extension-Name header is required', errorType: 'Extension.InvalidName' });
    if (this.phase !== 'init') return send(res, 403, { errorMessage: 'register is allowed only during init', errorType: 'Extension.InvalidState' });
    if (!Array.isArray(events) || events.some((e) => e !== 'INVOKE' && e !== 'SHUTDOWN'))
      return send(res, 400, { errorMessage: 'events must be INVOKE and/or SHUTDOWN', errorType: 'Extension.InvalidEventType' });
    const id = randomUUID();
    const proc = this.extensionProcs.find((p) => p.name === name);
    this.extensions.set(id, { id, name, events, next: null, queue: [], nextCalls: 0, proc: proc && proc.child });
    this.registrations.push({ name, events, headers: req.headers, atMs: proc ? now() - proc.spawnedAt : NaN });
    send(res, 200, { functionName: this.o.functionName, functionVersion: '$LATEST', handler: this.o.handler }, { 'Lambda-Extension-Identifier': id });
    this.wake();
  }

  subscribe(req, res, body, ext) {
    if (!ext) return send(res, 403, { errorMessage: 'Extension identifier missing or unknown', errorType: 'Extension.ForbiddenError' });
    // a test sets refuseTelemetry to have the subscription fail (Lambda's 500: no telemetry comes)
    if (this.refuseTelemetry) return send(res, 500, { errorMessage: 'Internal error', errorType: 'Telemetry.InternalError' });
    let s;
    try {
      s = JSON.parse(body);
    } catch {
      return send(res, 400, { errorMessage: 'invalid JSON', errorType: 'ValidationError' });
    }
    const b = { maxItems: 1000, maxBytes: 262144, timeoutMs: 1000, ...(s.buffering || {}) };
    const problems = [];
    if (!SCHEMAS.has(s.schemaVersion)) problems.push('schemaVersion');
    if (!s.destination || s.destination.protocol !== 'HTTP' || typeof s.destination.URI !== 'string') problems.push('destination');
    if (!Array.isArray(s.types) || s.types.length === 0 || s.types.some((t) => !TYPES.has(t))) problems.push('types');
    if (!(b.maxItems >= 25 && b.maxItems <= 10000)) problems.push('buffering.maxItems');
    if (!(b.maxBytes >= 262144 && b.maxBytes <= 1048576)) problems.push('buffering.maxBytes');
    if (!(b.timeoutMs >= 25 && b.timeoutMs <= 30000)) problems.push('buffering.timeoutMs');
    let url;
    try {
      url = new URL(s.destination.URI);
      if (url.hostname !== 'sandbox.localdomain') problems.push('destination.URI host must be sandbox.localdomain');
    } catch {
      problems.push('destination.URI');
    }
    if (problems.length) return send(res, 400, { errorMessage: `invalid subscription: ${problems.join(', ')}`, errorType: 'ValidationError' });
    url.hostname = '127.0.0.1'; // sandbox.localdomain resolves to the sandbox itself
    const sub = { ext, types: s.types, buffering: b, url: url.href, queue: [], timer: null, sending: false };
    this.subscriptions.push({ body: s, headers: req.headers, sub });
    // init-phase events emitted before the subscription are delivered too
    for (const e of this.events) if (s.types.includes(e.type.split('.')[0])) sub.queue.push(e);
    send(res, 200, 'OK', { 'content-type': 'text/plain' });
    this.emit('platform.telemetrySubscription', { name: ext.name, state: 'Subscribed', types: s.types });
  }

  // ---- telemetry -----------------------------------------------------------------------------

  emit(type, record) {
    const event = { time: new Date().toISOString(), type, record };
    this.events.push(event);
    for (const { sub } of this.subscriptions) {
      if (!sub.types.includes(type.split('.')[0])) continue;
      sub.queue.push(event);
      this.schedule(sub);
    }
  }

  schedule(sub) {
    if (this.frozen || sub.queue.length === 0) return;
    // a buffering timeout that ran out while the environment was frozen fires as it thaws, as a
    // timer inside a frozen process does
    if (sub.queue.length >= sub.buffering.maxItems || sub.due) return void this.deliver(sub);
    if (!sub.timer) sub.timer = setTimeout(() => this.deliver(sub), sub.buffering.timeoutMs);
  }

  async deliver(sub) {
    clearTimeout(sub.timer);
    sub.timer = null;
    sub.due = this.frozen && sub.queue.length > 0;
    if (this.frozen || sub.sending || sub.queue.length === 0) return;
    const batch = [];
    let bytes = 2;
    while (sub.queue.length && batch.length < sub.buffering.maxItems) {
      const size = Buffer.byteLength(JSON.stringify(sub.queue[0])) + 1;
      if (batch.length && bytes + size > sub.buffering.maxBytes) break;
      batch.push(sub.queue.shift());
      bytes += size;
    }
    sub.sending = true;
    await this.post(sub.url, JSON.stringify(batch)).then(
      (status) => this.deliveries.push({ status, count: batch.length }),
      (e) => this.deliveries.push({ status: 0, count: batch.length, error: e.message }),
    );
    sub.sending = false;
    this.schedule(sub);
    this.wake();
  }

  /** Sends a raw body to every subscriber (tests of malformed telemetry). */
  async injectTelemetry(rawBody) {
    return Promise.all(this.subscriptions.map(({ sub }) => this.post(sub.url, rawBody)));
  }

  post(url, body) {
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('telemetry delivery timed out')));
      req.end(body);
    });
  }

  /** Resolves when every subscription's buffer has been delivered. */
  async drainTelemetry(timeoutMs = 2000) {
    await this.until(() => this.subscriptions.every(({ sub }) => sub.queue.length === 0 && !sub.sending), timeoutMs, 'telemetry drained');
  }

  // ---- phases --------------------------------------------------------------------------------

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  async until(predicate, timeoutMs, what) {
    const end = now() + timeoutMs;
    while (!predicate()) {
      if (now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
  }

  env() {
    return {
      PATH: process.env.PATH,
      ...(process.env.ASAN_OPTIONS ? { ASAN_OPTIONS: process.env.ASAN_OPTIONS } : {}),
      AWS_LAMBDA_RUNTIME_API: this.address,
      AWS_LAMBDA_FUNCTION_NAME: this.o.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.o.memoryMB),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${this.o.functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `2026/01/01/[$LATEST]${this.logStream ??= randomUUID().replace(/-/g, '')}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_REGION: 'eu-west-1',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x',
      LAMBDA_TASK_ROOT: this.o.taskRoot,
      _HANDLER: this.o.handler,
      TZ: ':UTC',
      ...this.o.env,
    };
  }

  spawnTracked(cmd, args, name, extraEnv = {}, cwd = undefined) {
    const spawnedAt = now();
    const child = spawn(cmd, args, { cwd, env: { ...this.env(), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (this.cgroup) writeFileSync(`${this.cgroup}/cgroup.procs`, String(child.pid));
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    const entry = { name, child, spawnedAt, output: '' };
    child.stdout.on('data', (d) => (entry.output += d));
    child.stderr.on('data', (d) => (entry.output += d));
    child.on('exit', (code, signal) => {
      this.exited.set(child, { code, signal, at: now() });
      this.wake();
    });
    return entry;
  }

  /** INIT: extensions, then the runtime; resolves when init is over (or failed). */
  async start() {
    if (this.o.freezer === 'cgroup' && existsSync(FREEZER)) {
      try {
        const dir = `${FREEZER}/csa-emulator-${process.pid}-${++cgroups}`;
        mkdirSync(dir);
        this.cgroup = dir;
      } catch {
        // not root, or no freezer hierarchy: signals
      }
    }
    await this.listen();
    this.phase = 'init';
    this.initStartedAt = now();
    this.emit('platform.initStart', { initializationType: 'on-demand', phase: 'init', runtimeVersion: 'nodejs:20.v99', runtimeVersionArn: 'arn:aws:lambda:eu-west-1::runtime:emulated', functionName: this.o.functionName, functionVersion: '$LATEST' });
    this.extensionProcs = (this.o.extensions || [this.o.extension]).filter(Boolean).map((p) => {
      const entry = this.spawnTracked(p, [], p.split('/').pop(), this.o.extensionEnv);
      return entry;
    });
    // Lambda starts the runtime once every extension has registered
    await this.until(() => this.extensions.size >= this.extensionProcs.length || this.extensionProcs.some((e) => this.exited.has(e.child)), 2000, 'extension registration');
    // the runtime starts in the task root, as Lambda's does in /var/task
    this.runtime = this.spawnTracked(this.o.node ?? process.execPath, [...(this.o.nodeArgs ?? []), this.o.runtime], 'runtime', this.o.runtimeEnv, this.o.taskRoot);
    await this.until(() => this.runtimeNext || this.initError || this.exited.has(this.runtime.child), 10000, 'runtime init');
    const status = this.initError ? 'error' : 'success';
    this.emit('platform.initRuntimeDone', { initializationType: 'on-demand', phase: 'init', status, ...(this.initError ? { errorType: safeType(this.initError.body) } : {}) });
    await this.until(() => this.allExtensionsWaiting(), 2000, 'extensions ready (next) at the end of init');
    this.initDurationMs = round(now() - this.initStartedAt);
    this.emit('platform.initReport', { initializationType: 'on-demand', phase: 'init', status, metrics: { durationMs: this.initDurationMs } });
    this.phase = status === 'success' ? 'ready' : 'init-failed';
    await this.freeze();
    return status;
  }

  allExtensionsWaiting() {
    return [...this.extensions.values()].every((e) => e.next || this.exited.has(e.proc));
  }

  processes() {
    return [this.runtime, ...(this.extensionProcs || [])].filter((p) => p && !this.exited.has(p.child));
  }

  async freeze() {
    if (!this.o.freeze) return;
    this.frozen = true;
    if (this.cgroup) writeFileSync(`${this.cgroup}/freezer.state`, 'FROZEN');
    else for (const p of this.processes()) p.child.kill('SIGSTOP');
  }

  /**
   * Thaws the environment. `first` runs once the runtime is thawed and before anything else is:
   * Lambda's RAPID thaws the whole environment at once and hands the runtime and each extension
   * its event in parallel (a goroutine each); this emulator is one thread, and does the runtime's
   * part first, so that its own serial work for the extensions (a SIGCONT each, their INVOKE
   * events, the telemetry that came due while frozen) does not sit on the runtime's path.
   */
  thaw(first) {
    const wasFrozen = this.frozen;
    const procs = wasFrozen && !this.cgroup ? this.processes() : [];
    this.frozen = false;
    if (wasFrozen && this.cgroup) writeFileSync(`${this.cgroup}/freezer.state`, 'THAWED');
    const runtime = procs.find((p) => p === this.runtime);
    runtime?.child.kill('SIGCONT');
    first?.();
    for (const p of procs) if (p !== runtime) p.child.kill('SIGCONT');
    if (wasFrozen) for (const { sub } of this.subscriptions) this.schedule(sub);
  }

  /** Removes the freezer cgroup once its processes are gone (retried for a few seconds). */
  dropCgroup(tries = 30) {
    if (!this.cgroup) return;
    try {
      writeFileSync(`${this.cgroup}/freezer.state`, 'THAWED');
      rmdirSync(this.cgroup);
      this.cgroup = undefined;
    } catch {
      // a killed process not reaped yet
      if (tries > 0) setTimeout(() => this.dropCgroup(tries - 1), 100).unref();
    }
  }

  pump(ext) {
    if (ext.next && ext.queue.length) {
      const res = ext.next;
      ext.next = null;
      const event = ext.queue.shift();
      send(res, 200, event, { 'Lambda-Extension-Event-Identifier': randomUUID() });
    }
  }

  pumpRuntime() {
    const inv = this.current;
    if (this.runtimeNext && inv && !inv.sentToRuntime) {
      inv.sentToRuntime = true;
      inv.sentAt = now();
      const res = this.runtimeNext;
      this.runtimeNext = null;
      send(res, 200, inv.event, {
        'Lambda-Runtime-Aws-Request-Id': inv.requestId,
        'Lambda-Runtime-Deadline-Ms': String(inv.deadlineMs),
        'Lambda-Runtime-Invoked-Function-Arn': inv.arn,
        'Lambda-Runtime-Trace-Id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)};Sampled=0`,
      });
    }
  }

  /** One invocation; resolves with what the caller of the function sees, and the report. */
  async invoke(event = {}) {
    if (this.phase !== 'ready') throw new Error(`cannot invoke in phase ${this.phase}`);
    const requestId = randomUUID();
    const startedAt = now();
    const arn = `arn:aws:lambda:eu-west-1:123456789012:function:${this.o.functionName}`;
    const inv = { requestId, startedAt, event, arn, deadlineMs: Date.now() + this.o.timeoutMs, sentToRuntime: false };
    this.current = inv;
    this.invokes++;
    this.thaw(() => this.pumpRuntime());
    this.emit('platform.start', { requestId, version: '$LATEST' });
    for (const ext of this.extensions.values()) {
      if (!ext.events.includes('INVOKE')) continue;
      ext.queue.push({ eventType: 'INVOKE', deadlineMs: inv.deadlineMs, requestId, invokedFunctionArn: arn, tracing: { type: 'X-Amzn-Trace-Id', value: 'Root=1-0-0;Sampled=0' } });
      this.pump(ext);
    }
    const runtimeGone = () => this.exited.has(this.runtime.child);
    await this.until(() => inv.respondedAt !== undefined || runtimeGone(), this.o.timeoutMs + 1000, `response to ${requestId}`);
    if (inv.respondedAt === undefined) {
      // the runtime process exited mid-invoke (process.exit, a native crash): Lambda reports the
      // invocation as an error of type Runtime.ExitError and re-initialises the environment before
      // the next invoke (not emulated: this environment only takes SHUTDOWN afterwards)
      inv.respondedAt = now();
      inv.status = 'error';
      inv.body = JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited` });
      this.emit('platform.runtimeDone', { requestId, status: 'error', errorType: 'Runtime.ExitError', metrics: { durationMs: round(inv.respondedAt - startedAt), producedBytes: 0 } });
      this.phase = 'crashed';
    }
    // responseMs: what the function's caller waits, from the invoke; runtimeMs: from the event
    // handed to the runtime to its response, the function's own duration. From runtime.cjs's stamps
    // (NaN from another runtime): functionMs, from its event read to its response ready, which no
    // wait in this one-thread emulator can lengthen; eventInMs, from the event handed over to its
    // read; responseOutMs, from the response ready to its receipt here (the three add up to
    // runtimeMs)
    const result = {
      requestId,
      status: inv.status,
      body: inv.body,
      responseMs: inv.respondedAt - startedAt,
      runtimeMs: inv.respondedAt - (inv.sentAt ?? startedAt),
      functionMs: inv.responseReady - inv.eventRead,
      eventInMs: inv.eventRead - inv.sentAt,
      responseOutMs: inv.respondedAt - inv.responseReady,
    };
    // the invocation ends when the runtime and every extension are waiting for their next event
    await this.until(() => (this.runtimeNext || runtimeGone()) && this.allExtensionsWaiting(), 5000, 'runtime and extensions done');
    const durationMs = round(now() - startedAt);
    // from the event handed to the runtime until the runtime and every extension subscribed to
    // INVOKE wait for their next event: the duration Lambda bills
    result.billedMs = now() - (inv.sentAt ?? startedAt);
    result.afterResponseMs = inv.afterResponseMs; // on the runtime's clock: its response answered → its next-event request
    const maxMemoryUsedMB = Math.max(1, Math.round(this.processes().reduce((sum, p) => sum + vmHwmMb(p.child.pid), 0)));
    const metrics = { durationMs, billedDurationMs: Math.ceil(durationMs), memorySizeMB: this.o.memoryMB, maxMemoryUsedMB };
    if (this.invokes === 1) metrics.initDurationMs = this.initDurationMs;
    const record = { requestId, status: inv.status, ...(this.phase === 'crashed' ? { errorType: 'Runtime.ExitError' } : {}), metrics };
    this.emit('platform.report', record);
    result.report = record;
    result.endedMs = now() - startedAt;
    this.current = undefined;
    await this.freeze();
    return result;
  }

  /** SHUTDOWN: resolves with how each extension ended relative to the deadline. */
  async shutdown(reason = 'spindown') {
    this.phase = 'shutdown';
    this.thaw();
    if (this.runtime && !this.exited.has(this.runtime.child)) this.runtime.child.kill('SIGKILL');
    const started = now();
    const deadlineMs = Date.now() + this.o.shutdownMs;
    for (const ext of this.extensions.values()) {
      if (!ext.events.includes('SHUTDOWN')) continue;
      ext.queue.push({ eventType: 'SHUTDOWN', shutdownReason: reason, deadlineMs });
      this.pump(ext);
    }
    const alive = () => this.extensionProcs.filter((e) => !this.exited.has(e.child));
    try {
      await this.until(() => alive().length === 0, this.o.shutdownMs, 'extensions to exit');
    } catch {
      for (const e of alive()) e.child.kill('SIGKILL');
    }
    await this.until(() => alive().length === 0, 1000, 'killed extensions');
    const out = this.extensionProcs.map((e) => ({ name: e.name, ...this.exited.get(e.child), exitMs: this.exited.get(e.child).at - started, output: e.output }));
    this.server.close();
    this.server.closeAllConnections?.();
    this.dropCgroup();
    return out;
  }

  /** Kills everything (test clean-up). */
  destroy() {
    if (this.cgroup) writeFileSync(`${this.cgroup}/freezer.state`, 'THAWED');
    for (const p of this.processes()) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
    }
    this.dropCgroup();
    this.server?.close();
    this.server?.closeAllConnections?.();
  }
}

function round(ms) {
  return Math.round(ms * 1000) / 1000;
}

function safeType(body) {
  try {
    return JSON.parse(body).errorType || 'Runtime.Unknown';
  } catch {
    return 'Runtime.Unknown';
  }
}
