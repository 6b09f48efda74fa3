#!/usr/bin/env bash
# bench/queries.sh: latency of the read API over a large history (issue 4's targets).
#   BENCH_INVOCATIONS (default 1000000) invocations across BENCH_FUNCTIONS (100) functions of one
#   project over the last BENCH_DAYS (30) days, 5 % cold starts (every function), each cold start with 20 to 200 modules whose
#   self times are heavy-tailed (a few large packages, many small ones); generated inside
#   PostgreSQL (bench/queries-seed.sql, four deployments per function), `coldstartd maintain` folds the
#   cold starts into the day sketches (migrations/006; timed: the backfill of an existing history),
#   then coldstartd serves GET /api/v1/functions, GET /api/v1/functions/{id} (default 7-day window,
#   and 30 days), its /deployments and /compare, and bench/queries-load.mjs measures
#   BENCH_REQUESTS (200) sequential requests of each: p50, p95, p99.
# Own PostgreSQL (.data/bench-q-pg, port 55474), own port (18474). Results: bench/results/queries-latest.md
# BENCH_SKIP_SEED=1 reuses the database of the previous run (BENCH_KEEP_PG=1 keeps its server up);
# BENCH_DB names the database (default csa_bench_q): one per size keeps a 1M and a 10M history side by side;
# BENCH_SERVE_ONLY_WITH=path/to/coldstartd serves it with another build (a before/after comparison).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_INVOCATIONS:-1000000}
F=${BENCH_FUNCTIONS:-100}
REQS=${BENCH_REQUESTS:-200}
DAYS=${BENCH_DAYS:-30}
PG_DIR=${BENCH_PG_DIR:-$ROOT/.data/bench-q-pg}
PG_PORT=${BENCH_PG_PORT:-55474}
PORT=${BENCH_PORT:-18474}
DBNAME=${BENCH_DB:-csa_bench_q}
BIN=${COLDSTARTD:-$ROOT/backend/build/coldstartd}
[ -x "$BIN" ] || { echo "bench: build first (make build)" >&2; exit 1; }

scripts/pg.sh start "$PG_DIR" "$PG_PORT" >/dev/null
ADMIN=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT" | sed 's#/coldstart$#/postgres#')
DB=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT" | sed "s#/coldstart\$#/$DBNAME#")
if [ "${BENCH_SKIP_SEED:-0}" = 1 ]; then
  KEY=$(cat "$PG_DIR/$DBNAME-key")
  SEEDED="reused from the previous run"
else
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" -c "CREATE DATABASE $DBNAME"
  DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1
  KEY=$(DATABASE_URL=$DB "$BIN" create-project --name "Query bench" --slug qbench | sed -n '/^Admin key/,/^csa_/p' | tail -n 1)  # the admin key: it reads
  echo "$KEY" > "$PG_DIR/$DBNAME-key"
  echo "== seeding $N invocations across $F functions (in PostgreSQL)" >&2
  t0=$(date +%s)
  psql "$DB" -q -o /dev/null -v n="$N" -v f="$F" -v days="$DAYS" -f bench/queries-seed.sql
  t1=$(date +%s)
  echo "== folding the cold starts into the day sketches (coldstartd maintain)" >&2
  COLD=$(psql "$DB" -tAc "SELECT count(*) FROM function_day_sketch_pending")
  DATABASE_URL=$DB "$BIN" maintain >/dev/null
  t2=$(date +%s)
  # the planner's statistics of the tables the seed and the fold filled (autovacuum would take a
  # while: the first runs measured plans made without them)
  psql "$DB" -qc "ANALYZE"
  SEEDED="seeded in $((t1 - t0)) s; the day sketches' backfill ($COLD cold starts, coldstartd maintain) took $((t2 - t1)) s"
fi
BIN=${BENCH_SERVE_ONLY_WITH:-$BIN}
SIZE=$(psql "$DB" -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'invocations'::regclass")

PORT=$PORT HOST=127.0.0.1 DATABASE_URL=$DB LOG_REQUESTS=false RATE_LIMIT_QUERY=100000000 "$BIN" serve 2>/tmp/csa-bench-q.log &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; [ "${BENCH_KEEP_PG:-0}" = 1 ] || scripts/pg.sh stop "$PG_DIR"' EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done

RESULT=$(node bench/queries-load.mjs "http://127.0.0.1:$PORT" "$KEY" "$REQS")
{
  echo "# Read API latency"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), machine: nproc $(nproc), $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- data: $N invocations, $F functions, $DAYS days, 5 % cold starts with 20-200 modules each, 4 deployments per function; invocations on disk: $SIZE; $SEEDED"
  echo "- command: BENCH_INVOCATIONS=$N bench/queries.sh ($REQS sequential requests per endpoint, after 10 warm-up requests); server: $BIN"
  echo
  echo "$RESULT"
} | tee bench/results/queries-latest.md
