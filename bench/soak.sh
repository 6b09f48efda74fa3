#!/usr/bin/env bash
# bench/soak.sh: the endurance run (`make soak`; not part of make test). Holds coldstartd at a
# steady ingest rate, a fraction of the peak in bench/results/ingest-latest.md, for a bounded time
# and samples every SOAK_INTERVAL seconds: server RSS, open file descriptors, threads, requests
# answered by status, connection errors and latency percentiles of that interval. At the end it
# checks that every acknowledged record is in PostgreSQL, that SIGTERM exits 0 (with an ASan build,
# LeakSanitizer runs at that exit), and judges the trend: RSS and fds flat, no error growth,
# p99 stable. The table and verdict are printed and appended to RELIABILITY.md.
#
# It starts its own PostgreSQL (scripts/pg.sh, .data/soak-pg, port 55475) and a fresh database,
# migrates it, creates a project and key, and starts the server binary.
#
# Settings (environment):
#   SOAK_SECONDS=600     run length (bounded; the script stops itself)
#   SOAK_RATE=500        ingest requests per second, open loop (one in ten a batch of SOAK_BATCH)
#   SOAK_BATCH=20        records per batch request
#   SOAK_INTERVAL=10     seconds per sample
#   SOAK_PORT=18475 SOAK_PG_DIR=.data/soak-pg SOAK_PG_PORT=55475
#   COLDSTARTD           server binary (default backend/build/coldstartd; backend/build-asan/coldstartd
#                        for the sanitizer soak: RSS is then ASan's, still expected flat)
#   SOAK_RECORD=0        do not append to RELIABILITY.md
# Exit status: 0 when the verdict is "pass", 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECONDS_TOTAL=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-500}
BATCH=${SOAK_BATCH:-20}
INTERVAL=${SOAK_INTERVAL:-10}
PORT=${SOAK_PORT:-18475}
PG_DIR=${SOAK_PG_DIR:-$ROOT/.data/soak-pg}
PG_PORT=${SOAK_PG_PORT:-55475}
BIN=${COLDSTARTD:-$ROOT/backend/build/coldstartd}
WORK=$(mktemp -d /tmp/csa-soak.XXXXXX)

die() { echo "soak: $*" >&2; exit 2; }
[ -x "$BIN" ] || die "no server binary at $BIN (run: make build)"
command -v node >/dev/null || die "node is not installed"
command -v psql >/dev/null || die "psql is not installed"
if ss -ltnH "sport = :$PORT" 2>/dev/null | grep -q .; then die "port $PORT is in use (set SOAK_PORT)"; fi

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  scripts/pg.sh stop "$PG_DIR" "$PG_PORT" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "soak: PostgreSQL in $PG_DIR on port $PG_PORT" >&2
scripts/pg.sh start "$PG_DIR" "$PG_PORT" >/dev/null
base_url=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT")
db=csa_soak
psql "${base_url%/coldstart}/postgres" -qtAX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
DB_URL=${base_url%/coldstart}/$db
(cd "$WORK" && env -i PATH="$PATH" DATABASE_URL="$DB_URL" "$BIN" migrate >/dev/null)
KEY=$(cd "$WORK" && env -i PATH="$PATH" DATABASE_URL="$DB_URL" "$BIN" create-project --name Soak --slug soak | tail -1)

(cd "$WORK" && exec env -i PATH="$PATH" DATABASE_URL="$DB_URL" HOST=127.0.0.1 PORT="$PORT" LOG_LEVEL=warn \
  RATE_LIMIT_INGEST=100000000 ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=8}" "$BIN" serve 2>"$WORK/server.log") &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited at start"; }
  sleep 0.1
done

echo "soak: ${SECONDS_TOTAL}s at ${RATE} req/s (1 in 10 a batch of $BATCH), sample every ${INTERVAL}s, server pid $SERVER_PID" >&2
export SOAK_PID=$SERVER_PID SOAK_BASE="http://127.0.0.1:$PORT" SOAK_KEY=$KEY SOAK_SECONDS_TOTAL=$SECONDS_TOTAL \
  SOAK_RATE_RPS=$RATE SOAK_BATCH_SIZE=$BATCH SOAK_INTERVAL_S=$INTERVAL SOAK_ACKED_FILE=$WORK/acked
node --input-type=module >"$WORK/samples.json" <<'EOF'
// Open-loop load at a fixed rate, keep-alive connections, one sample line per interval on stderr
// and all samples as JSON on stdout.
import http from 'node:http';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const env = process.env;
const pid = Number(env.SOAK_PID);
const base = new URL(env.SOAK_BASE);
const total = Number(env.SOAK_SECONDS_TOTAL) * 1000;
const rate = Number(env.SOAK_RATE_RPS);
const batchSize = Number(env.SOAK_BATCH_SIZE);
const interval = Number(env.SOAK_INTERVAL_S) * 1000;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

let acked = 0; // records acknowledged
let seq = 0;
let cur = { lat: [], status: {}, errors: 0 };
const samples = [];

function record() {
  const ts = new Date(Date.now() - 60000).toISOString();
  return { function_name: `soak-${seq % 50}`, invocation_id: randomUUID(), timestamp: ts, cold_start: seq % 7 === 0,
    init_duration_ms: 400, execution_duration_ms: 12, memory_allocated_mb: 512,
    module_timings: { 'aws-sdk': 120, lodash: 15, './src/handler': 3 } };
}

function send() {
  seq++;
  const batch = seq % 10 === 0;
  const body = JSON.stringify(batch ? { invocations: Array.from({ length: batchSize }, record) } : record());
  const n = batch ? batchSize : 1;
  const t0 = process.hrtime.bigint();
  const sample = cur;
  const req = http.request({ host: base.hostname, port: base.port, method: 'POST', agent,
    path: batch ? '/api/v1/ingest/batch' : '/api/v1/ingest',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': env.SOAK_KEY, 'Content-Length': Buffer.byteLength(body) } },
  (res) => {
    res.resume();
    res.on('end', () => {
      sample.lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      sample.status[res.statusCode] = (sample.status[res.statusCode] || 0) + 1;
      if (res.statusCode === 200) acked += n;
    });
  });
  req.on('error', () => sample.errors++);
  req.setTimeout(30000, () => req.destroy(new Error('timeout')));
  req.end(body);
}

function proc() {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] || 0);
  return { rss_mib: +(kb('VmRSS') / 1024).toFixed(1), threads: kb('Threads'), fds: readdirSync(`/proc/${pid}/fd`).length };
}

const pct = (sorted, p) => (sorted.length ? +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(2) : null);

const start = Date.now();
let sent = 0;
const ticker = setInterval(() => {
  // catch up to the schedule (timers are coarse): sent requests follow elapsed time x rate
  const due = Math.floor(((Date.now() - start) / 1000) * rate);
  while (sent < due) { send(); sent++; }
}, 5);
const sampler = setInterval(() => {
  const s = cur;
  cur = { lat: [], status: {}, errors: 0 };
  s.lat.sort((a, b) => a - b);
  const row = { t: Math.round((Date.now() - start) / 1000), requests: s.lat.length, status: s.status, errors: s.errors,
    p50_ms: pct(s.lat, 50), p95_ms: pct(s.lat, 95), p99_ms: pct(s.lat, 99), max_ms: pct(s.lat, 100), ...proc() };
  samples.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}, interval);
setTimeout(async () => {
  clearInterval(ticker);
  await new Promise((r) => setTimeout(r, 3000)); // let the last answers arrive
  clearInterval(sampler);
  agent.destroy();
  writeFileSync(env.SOAK_ACKED_FILE, String(acked));
  process.stdout.write(JSON.stringify(samples));
}, total);
EOF

ACKED=$(cat "$WORK/acked")
STORED=$(psql "$DB_URL" -qtAX -c "SELECT count(*) FROM invocations")
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
EXIT=$?
set -e
SERVER_PID=""
LEAKS=$(grep -c "ERROR: LeakSanitizer" "$WORK/server.log" || true)
VERSION=$("$BIN" --version 2>/dev/null || echo coldstartd)

# The verdict and the markdown, from the samples (the first sample is warm-up: the trend is judged
# from the second one on).
set +e
node --input-type=module - "$WORK/samples.json" "$ACKED" "$STORED" "$EXIT" "$LEAKS" "$SECONDS_TOTAL" "$RATE" "$BATCH" "$VERSION" "$(basename "$(dirname "$BIN")")" "$INTERVAL" >"$WORK/report.md" <<'EOF'
import { readFileSync } from 'node:fs';
const [file, acked, stored, exit, leaks, secs, rate, batch, version, build, interval] = process.argv.slice(2);
const s = JSON.parse(readFileSync(file, 'utf8'));
const body = s.slice(1, -1).length >= 3 ? s.slice(1, -1) : s; // drop warm-up and the drain sample
const first = body.slice(0, Math.max(1, Math.floor(body.length / 4)));
const last = body.slice(-Math.max(1, Math.floor(body.length / 4)));
const avg = (a, k) => a.reduce((x, r) => x + (r[k] ?? 0), 0) / a.length;
const non200 = (r) => Object.entries(r.status).filter(([k]) => k !== '200').reduce((x, [, v]) => x + v, 0) + r.errors;
const checks = [
  ['RSS flat (last quarter <= first quarter + 10% + 8 MiB)', avg(last, 'rss_mib') <= avg(first, 'rss_mib') * 1.1 + 8,
    `${avg(first, 'rss_mib').toFixed(1)} -> ${avg(last, 'rss_mib').toFixed(1)} MiB`],
  ['fds flat (last quarter <= first quarter + 8)', avg(last, 'fds') <= avg(first, 'fds') + 8, `${avg(first, 'fds').toFixed(0)} -> ${avg(last, 'fds').toFixed(0)}`],
  ['no errors (non-200 answers and connection errors)', body.every((r) => non200(r) === 0), `${s.reduce((x, r) => x + non200(r), 0)} in all`],
  ['p99 stable (last quarter <= 2x first quarter + 5 ms)', avg(last, 'p99_ms') <= 2 * avg(first, 'p99_ms') + 5,
    `${avg(first, 'p99_ms').toFixed(1)} -> ${avg(last, 'p99_ms').toFixed(1)} ms`],
  ['throughput held (every interval >= 90% of the rate)', body.every((r) => r.requests >= 0.9 * rate * interval), `${Math.min(...body.map((r) => r.requests))} requests in the slowest interval`],
  ['every acknowledged record stored', Number(stored) >= Number(acked), `${acked} acknowledged, ${stored} rows`],
  ['SIGTERM exit 0, no LeakSanitizer report', Number(exit) === 0 && Number(leaks) === 0, `exit ${exit}, leak reports ${leaks}`],
];
const pass = checks.every(([, ok]) => ok);
const out = [];
out.push(`### Soak ${new Date().toISOString().slice(0, 16)}Z: ${pass ? 'pass' : 'FAIL'}`, '');
out.push(`- ${version} (${build}), ${secs} s at ${rate} req/s open loop (1 in 10 a batch of ${batch} records), keep-alive, 64 sockets; bench/soak.sh`);
out.push(`- machine: ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm).length} cores, load average at the end ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`, '');
out.push('| check | result | |', '|---|---|---|');
for (const [name, ok, detail] of checks) out.push(`| ${name} | ${ok ? 'ok' : '**FAIL**'} | ${detail} |`);
out.push('', '| t (s) | requests | non-200 + errors | p50 ms | p95 ms | p99 ms | max ms | RSS MiB | fds | threads |', '|---|---|---|---|---|---|---|---|---|---|');
for (const r of s) out.push(`| ${r.t} | ${r.requests} | ${non200(r)} | ${r.p50_ms} | ${r.p95_ms} | ${r.p99_ms} | ${r.max_ms} | ${r.rss_mib} | ${r.fds} | ${r.threads} |`);
out.push('');
console.log(out.join('\n'));
process.exitCode = pass ? 0 : 1;
EOF
VERDICT=$?
set -e
cat "$WORK/report.md"
if [ "${SOAK_RECORD:-1}" != 0 ]; then
  [ -f RELIABILITY.md ] || echo "# Reliability" >RELIABILITY.md
  { echo; cat "$WORK/report.md"; } >>RELIABILITY.md
  echo "soak: appended to RELIABILITY.md" >&2
fi
exit $VERDICT
