#!/usr/bin/env bash
# bench/ingest.sh: the ingest benchmark (not a test). Measures, on this machine:
#   1. single ingest: wrk, BENCH_CONNECTIONS (64) connections, 2 threads, BENCH_DURATION (20 s),
#      each request one record with its own invocation_id -> req/s, p50/p99 latency
#   2. batch ingest: wrk, BENCH_BATCH_CONNECTIONS (16) connections, 100-record batches -> rows/s
#   each verified: SELECT count(*) must be >= the records of the 2xx responses;
#   server peak RSS (VmHWM) under that load;
#   3. the ceiling: the same rows written straight into the same table by pgbench with 100-row
#      multi-row INSERTs (-c 8 -j 2 -T 15) and by one COPY of BENCH_COPY_ROWS (200k) rows.
#   Each measurement starts from an empty invocations table (TRUNCATE after its check).
# It starts its own PostgreSQL (scripts/pg.sh, .data/bench-pg, port 55473) and a fresh database
# csa_bench, migrates it, creates a project and key, and starts backend/build/coldstartd (build it
# first: make build). Prints a markdown summary and writes it to bench/results/ingest-latest.md.
#
# Settings (environment): BENCH_DURATION=20 BENCH_CONNECTIONS=64 BENCH_THREADS=2
#   BENCH_BATCH_CONNECTIONS=16 BENCH_BATCH_SIZE=100 BENCH_PGBENCH_SECONDS=15 BENCH_COPY_ROWS=200000
#   BENCH_PORT=18473 BENCH_LOG_LEVEL=info BENCH_WORKERS, BENCH_WRITERS, BENCH_LOG_REQUESTS (server
#   defaults when unset)
#   BENCH_KEEP_PG=1 leaves the benchmark PostgreSQL running afterwards.
#   BENCH_NO_ROLLUP_TRIGGER=1 disables the rollup trigger (migrations/002) to measure its cost.
#   BENCH_NO_EXEC_TRIGGERS=1 disables the execution-time rollup triggers (migrations/012), likewise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-20}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
BATCH_CONNS=${BENCH_BATCH_CONNECTIONS:-16}
BATCH_SIZE=${BENCH_BATCH_SIZE:-100}
PGBENCH_SECONDS=${BENCH_PGBENCH_SECONDS:-15}
COPY_ROWS=${BENCH_COPY_ROWS:-200000}
PORT=${BENCH_PORT:-18473}
LOG_LEVEL_SETTING=${BENCH_LOG_LEVEL:-info}
PG_DIR=${BENCH_PG_DIR:-$ROOT/.data/bench-pg}
PG_PORT=${BENCH_PG_PORT:-55473}
BIN=${COLDSTARTD:-$ROOT/backend/build/coldstartd}
RESULTS=$ROOT/bench/results/ingest-latest.md
WORK=$(mktemp -d /tmp/csa-bench.XXXXXX)

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "no server binary at $BIN (run: make build)"
command -v wrk >/dev/null || die "wrk is not installed (scripts/deps.sh bench, or apt-get install wrk)"
for tool in psql pgbench; do command -v $tool >/dev/null || die "$tool is not installed (apt-get install postgresql-client)"; done
if ss -ltnH "sport = :$PORT" 2>/dev/null | grep -q .; then die "port $PORT is in use (set BENCH_PORT)"; fi

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [ "${BENCH_KEEP_PG:-0}" = 1 ] || scripts/pg.sh stop "$PG_DIR" "$PG_PORT" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "PostgreSQL ($PG_DIR, port $PG_PORT)"
scripts/pg.sh start "$PG_DIR" "$PG_PORT"
ADMIN_URL=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT")
POSTGRES_URL=${ADMIN_URL%/*}/postgres
DB_URL=${ADMIN_URL%/*}/csa_bench
psql "$POSTGRES_URL" -XqtAc "DROP DATABASE IF EXISTS csa_bench WITH (FORCE)" >/dev/null
psql "$POSTGRES_URL" -XqtAc "CREATE DATABASE csa_bench" >/dev/null
PG_VERSION=$(psql "$DB_URL" -XqtAc "SHOW server_version")
q() { psql "$DB_URL" -XqtA -v ON_ERROR_STOP=1 -c "$1"; }

say "migrate, project, key"
DATABASE_URL=$DB_URL "$BIN" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "migrate failed"; }
if [ "${BENCH_NO_ROLLUP_TRIGGER:-0}" = 1 ]; then
  # for a side-by-side measurement of what counting the rollups at ingest costs (not a setting to run with)
  psql "$DB_URL" -qc "ALTER TABLE invocations DISABLE TRIGGER invocations_count_inserted" || die "cannot disable the trigger"
fi
if [ "${BENCH_NO_EXEC_TRIGGERS:-0}" = 1 ]; then
  psql "$DB_URL" -qc "ALTER TABLE invocations DISABLE TRIGGER invocations_exec_count_inserted" \
    -c "ALTER TABLE invocations DISABLE TRIGGER invocations_exec_count_completed" || die "cannot disable the triggers"
fi
API_KEY=$(DATABASE_URL=$DB_URL "$BIN" create-project --name Bench --slug bench 2>"$WORK/cli.log" | tail -n 1)
[[ $API_KEY =~ ^csa_[A-Za-z0-9]{32}$ ]] || { cat "$WORK/cli.log" >&2; die "create-project printed no key"; }

say "coldstartd on 127.0.0.1:$PORT"
# The per-key rate limit (spec: 10,000 ingests a minute) would turn the run into a test of the
# limiter: the benchmark lifts it (BENCH_RATE_LIMIT) and says so in the results.
RATE_LIMIT=${BENCH_RATE_LIMIT:-100000000}
env_args=(DATABASE_URL="$DB_URL" HOST=127.0.0.1 PORT="$PORT" LOG_LEVEL="$LOG_LEVEL_SETTING" RATE_LIMIT_INGEST="$RATE_LIMIT")
[ -n "${BENCH_WORKERS:-}" ] && env_args+=(WORKERS="$BENCH_WORKERS")
[ -n "${BENCH_WRITERS:-}" ] && env_args+=(WRITERS="$BENCH_WRITERS")
[ -n "${BENCH_LOG_REQUESTS:-}" ] && env_args+=(LOG_REQUESTS="$BENCH_LOG_REQUESTS")
env -i PATH="$PATH" "${env_args[@]}" "$BIN" serve 2>"$WORK/server.log" &
SERVER_PID=$!
for i in $(seq 1 150); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v1/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; die "coldstartd exited"; }
  [ "$i" = 150 ] && { tail -20 "$WORK/server.log" >&2; die "coldstartd not healthy after 15 s"; }
  sleep 0.1
done

export CSA_API_KEY=$API_KEY CSA_RUN_ID=r$(date +%s) CSA_BATCH_SIZE=$BATCH_SIZE
export CSA_TIMESTAMP=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
URL="http://127.0.0.1:$PORT"

# field NAME FILE: the value of NAME=... on the CSA_RESULT line
field() { grep -o "CSA_RESULT.*" "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -n 1; }

say "warm-up (3 s)"
CSA_RUN_ID=${CSA_RUN_ID}w wrk -t"$THREADS" -c"$CONNS" -d3s -s bench/wrk/ingest.lua "$URL" >"$WORK/warmup.txt" 2>&1 || true
WARM=$(q "SELECT count(*) FROM invocations")

say "single ingest: wrk -t$THREADS -c$CONNS -d${DURATION}s"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s bench/wrk/ingest.lua "$URL" | tee "$WORK/single.txt"
S_REQ=$(field requests "$WORK/single.txt"); S_BAD=$(field non2xx "$WORK/single.txt")
[ -n "$S_REQ" ] || die "wrk printed no CSA_RESULT line (see above)"
S_US=$(field duration_us "$WORK/single.txt"); S_P50=$(field p50_us "$WORK/single.txt"); S_P99=$(field p99_us "$WORK/single.txt")
S_SOCK=$(( $(field connect_errors "$WORK/single.txt") + $(field read_errors "$WORK/single.txt") + $(field write_errors "$WORK/single.txt") + $(field timeouts "$WORK/single.txt") ))
S_OK=$((S_REQ - S_BAD))
sleep 1
S_ROWS=$(( $(q "SELECT count(*) FROM invocations") - WARM ))
S_RSS=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
q "TRUNCATE invocations" >/dev/null   # each measurement starts from an empty table

say "batch ingest: wrk -t$THREADS -c$BATCH_CONNS -d${DURATION}s, $BATCH_SIZE records per request"
BEFORE_BATCH=$(q "SELECT count(*) FROM invocations")
wrk -t"$THREADS" -c"$BATCH_CONNS" -d"${DURATION}s" --latency --timeout 10s -s bench/wrk/batch.lua "$URL" | tee "$WORK/batch.txt"
B_REQ=$(field requests "$WORK/batch.txt"); B_BAD=$(field non2xx "$WORK/batch.txt")
[ -n "$B_REQ" ] || die "wrk printed no CSA_RESULT line (see above)"
B_US=$(field duration_us "$WORK/batch.txt"); B_P99=$(field p99_us "$WORK/batch.txt")
B_SOCK=$(( $(field connect_errors "$WORK/batch.txt") + $(field read_errors "$WORK/batch.txt") + $(field write_errors "$WORK/batch.txt") + $(field timeouts "$WORK/batch.txt") ))
B_OK=$((B_REQ - B_BAD))
sleep 1
B_ROWS=$(( $(q "SELECT count(*) FROM invocations") - BEFORE_BATCH ))
RSS_HWM=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
RSS_NOW=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
# status counts from the server's request log lines (LOG_LEVEL=info), e.g. "200 x 1234, 503 x 2"
STATUSES=$({ grep -o '"path":"/api/v1/ingest[^"]*","status":[0-9]*' "$WORK/server.log" || true; } | sed 's/.*"status"://' | sort | uniq -c | awk '{printf "%s%s x %s", (NR > 1 ? ", " : ""), $2, $1}')
[ -n "$STATUSES" ] || STATUSES="none logged (LOG_LEVEL=$LOG_LEVEL_SETTING, LOG_REQUESTS=${BENCH_LOG_REQUESTS:-default})"

say "stopping coldstartd (SIGTERM)"
kill -TERM "$SERVER_PID"
EXIT_CODE=0; wait "$SERVER_PID" || EXIT_CODE=$?
SERVER_PID=""

# ---- the ceiling: the same rows straight into PostgreSQL --------------------------------------
PROJECT_ID=$(q "SELECT id FROM projects WHERE slug = 'bench'")
FUNCTION_ID=$(q "INSERT INTO functions (project_id, function_name, runtime, region, memory_allocated_mb) VALUES ('$PROJECT_ID', 'bench-raw', 'nodejs20.x', 'eu-west-1', 512) ON CONFLICT (project_id, function_name) DO UPDATE SET last_seen_at = now() RETURNING id")
COLS="project_id, function_id, invocation_id, timestamp, cold_start, init_duration_ms, execution_duration_ms, billed_duration_ms, memory_used_mb, memory_allocated_mb, module_timings, runtime_version, architecture"
MT='{"aws-sdk":85.5,"@prisma/client":68,"./src/handlers/payment":4.5}'

{
  echo '\set n random(1, 9000000000000000000)'
  printf 'INSERT INTO invocations (%s) VALUES\n' "$COLS"
  for i in $(seq 1 100); do
    sep=","; [ "$i" = 100 ] && sep=""
    printf "(':pid', ':fid', 'pgb-' || :client_id || '-' || :n || '-%d', '%s', %s, %d, %d, %d, 180, 512, '%s', 'nodejs20.x', 'arm64')%s\n" \
      "$i" "$CSA_TIMESTAMP" "$([ $((i % 10)) = 0 ] && echo true || echo false)" $((250 + i)) $((5 + i)) $((6 + i)) "$MT" "$sep"
  done
  echo 'ON CONFLICT DO NOTHING;'
} >"$WORK/insert100.sql"

say "ceiling: pgbench -c 8 -j 2 -T $PGBENCH_SECONDS, 100-row INSERTs"
q "TRUNCATE invocations" >/dev/null
BEFORE_RAW=$(q "SELECT count(*) FROM invocations")
pgbench -n -M simple -c 8 -j 2 -T "$PGBENCH_SECONDS" -D pid="$PROJECT_ID" -D fid="$FUNCTION_ID" -f "$WORK/insert100.sql" "$DB_URL" | tee "$WORK/pgbench.txt"
RAW_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$WORK/pgbench.txt" | tail -n 1)
RAW_ROWS=$(( $(q "SELECT count(*) FROM invocations") - BEFORE_RAW ))

say "ceiling: one COPY of $COPY_ROWS rows"
awk -v n="$COPY_ROWS" -v pid="$PROJECT_ID" -v fid="$FUNCTION_ID" -v ts="$CSA_TIMESTAMP" -v mt="$MT" 'BEGIN {
  gsub(/"/, "\"\"", mt)
  for (i = 1; i <= n; i++)
    printf "%s,%s,copy-%d,%s,%s,%d,%d,%d,180,512,\"%s\",nodejs20.x,arm64\n", pid, fid, i, ts, (i % 10 == 0 ? "t" : "f"), 250 + i % 700, 5 + i % 200, 6 + i % 200, mt
}' >"$WORK/copy.csv"
q "TRUNCATE invocations" >/dev/null
BEFORE_COPY=$(q "SELECT count(*) FROM invocations")
t0=$(date +%s.%N)
psql "$DB_URL" -XqtA -v ON_ERROR_STOP=1 -c "\\copy invocations ($COLS) FROM '$WORK/copy.csv' WITH (FORMAT csv)" >/dev/null
t1=$(date +%s.%N)
COPY_ROWS_DONE=$(( $(q "SELECT count(*) FROM invocations") - BEFORE_COPY ))

# ---- summary ----------------------------------------------------------------------------------
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
S_RPS=$(calc "$S_OK / ($S_US / 1000000)")
B_RPS=$(calc "$B_OK / ($B_US / 1000000)" 1)
B_ROWS_S=$(calc "$B_OK * $BATCH_SIZE / ($B_US / 1000000)")
RAW_ROWS_S=$(calc "$RAW_TPS * 100")
COPY_S=$(calc "$t1 - $t0" 2)
COPY_ROWS_S=$(calc "$COPY_ROWS_DONE / ($t1 - $t0)")
S_VERIFIED=$([ "$S_ROWS" -ge "$S_OK" ] && echo "yes ($S_ROWS rows >= $S_OK acknowledged)" || echo "**NO: $S_ROWS rows < $S_OK acknowledged**")
B_VERIFIED=$([ "$B_ROWS" -ge $((B_OK * BATCH_SIZE)) ] && echo "yes ($B_ROWS rows >= $((B_OK * BATCH_SIZE)) acknowledged)" || echo "**NO: $B_ROWS rows < $((B_OK * BATCH_SIZE)) acknowledged**")
RATIO=$(calc "$B_ROWS_S / ($RAW_ROWS_S > 0 ? $RAW_ROWS_S : 1)" 2)

{
  echo "# Ingest benchmark"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- machine: nproc $(nproc), $(uname -m), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown CPU)"
  echo "- PostgreSQL $PG_VERSION (scripts/pg.sh: fsync on, synchronous_commit on), on the same machine"
  echo "- server: $("$BIN" version 2>/dev/null | head -n 1), commit $(git rev-parse --short HEAD 2>/dev/null || echo none), LOG_LEVEL=$LOG_LEVEL_SETTING, WORKERS=${BENCH_WORKERS:-default}, WRITERS=${BENCH_WRITERS:-default}, LOG_REQUESTS=${BENCH_LOG_REQUESTS:-default}, RATE_LIMIT_INGEST=$RATE_LIMIT (limiter lifted)"
  echo "- load average before the run: $LOAD_BEFORE (server, PostgreSQL and wrk share these cores; anything else running skews the figures)"
  echo "- load generator: wrk $(wrk --version 2>&1 | head -n 1 | awk '{print $2}') on the same machine"
  echo "- command: bench/ingest.sh (BENCH_DURATION=$DURATION BENCH_CONNECTIONS=$CONNS BENCH_BATCH_CONNECTIONS=$BATCH_CONNS BENCH_BATCH_SIZE=$BATCH_SIZE)"
  echo
  echo "| measurement | setup | result | latency | verified in PostgreSQL |"
  echo "|---|---|---|---|---|"
  echo "| single ingest | wrk -t$THREADS -c$CONNS -d${DURATION}s, 1 record/request, unique invocation_id | **$S_RPS req/s** ($S_OK 2xx, $S_BAD non-2xx, $S_SOCK socket errors) | p50 $(calc "$S_P50 / 1000" 2) ms, p99 $(calc "$S_P99 / 1000" 2) ms | $S_VERIFIED |"
  echo "| batch ingest | wrk -t$THREADS -c$BATCH_CONNS -d${DURATION}s, $BATCH_SIZE records/request | **$B_ROWS_S rows/s** ($B_RPS req/s; $B_OK 2xx, $B_BAD non-2xx, $B_SOCK socket errors) | p99 $(calc "$B_P99 / 1000" 2) ms | $B_VERIFIED |"
  echo "| server memory | /proc/PID/status | peak RSS (VmHWM) $(calc "$S_RSS / 1024" 1) MiB after single, $(calc "$RSS_HWM / 1024" 1) MiB after batch; RSS now $(calc "$RSS_NOW / 1024" 1) MiB | | exit code on SIGTERM: $EXIT_CODE |"
  echo "| ceiling: multi-row INSERT | pgbench -M simple -c 8 -j 2 -T $PGBENCH_SECONDS, 100-row INSERT ... ON CONFLICT DO NOTHING | **$RAW_ROWS_S rows/s** ($RAW_TPS tx/s) | | $RAW_ROWS rows added |"
  echo "| ceiling: COPY | one \\copy of $COPY_ROWS rows (CSV) | **$COPY_ROWS_S rows/s** ($COPY_S s) | | $COPY_ROWS_DONE rows added |"
  echo
  echo "Batch ingest reached $RATIO of the multi-row INSERT ceiling (rows/s). Ingest responses by status in the server log: $STATUSES."
} | tee "$RESULTS"

echo >&2
echo "written to ${RESULTS#$ROOT/}" >&2
if [[ $S_VERIFIED == \*\** || $B_VERIFIED == \*\** ]]; then
  die "acknowledged rows are missing from PostgreSQL"
fi
