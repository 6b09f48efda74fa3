#!/usr/bin/env bash
# bench/grafana-panels.sh: latency of every Grafana panel over a large history (issue 17's goal:
# every panel under 1 s over 30 days at 10,000,000 invocations).
#   The history of bench/queries.sh: BENCH_INVOCATIONS (default 1000000) invocations across
#   BENCH_FUNCTIONS (100) functions of one project over the last BENCH_DAYS (30) days, 5 % cold
#   starts with 20 to 200 modules each, generated inside PostgreSQL (bench/queries-seed.sql);
#   `coldstartd maintain` folds the cold starts into the day sketches and package rollups
#   (migrations/006, 007; timed). Then bench/grafana-panels.mjs runs every panel's SQL as Grafana
#   sends it (macros and variables expanded: the project, All functions) over the last 24 h, 7 days
#   and 30 days, BENCH_REPS (10) times each after a warm-up run: p50 and p95 per panel.
# Own PostgreSQL (.data/bench-g-pg, port 55475; database BENCH_DB, default csa_bench_g). Results:
# bench/results/grafana-panels-latest.md. BENCH_PANELS (a regular expression of panel titles) and
# BENCH_TIMEOUT_S (a statement timeout per run, default 30 s: the Grafana role's) go to the .mjs.
# BENCH_SKIP_SEED=1 reuses the database of the previous run (BENCH_KEEP_PG=1 keeps its server up).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_INVOCATIONS:-1000000}
F=${BENCH_FUNCTIONS:-100}
DAYS=${BENCH_DAYS:-30}
REPS=${BENCH_REPS:-10}
PG_DIR=${BENCH_PG_DIR:-$ROOT/.data/bench-g-pg}
PG_PORT=${BENCH_PG_PORT:-55475}
BIN=${COLDSTARTD:-$ROOT/backend/build/coldstartd}
DBNAME=${BENCH_DB:-csa_bench_g}
[ -x "$BIN" ] || { echo "bench: build first (make build)" >&2; exit 1; }

scripts/pg.sh start "$PG_DIR" "$PG_PORT" >/dev/null
trap '[ "${BENCH_KEEP_PG:-0}" = 1 ] || scripts/pg.sh stop "$PG_DIR"' EXIT
ADMIN=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT" | sed 's#/coldstart$#/postgres#')
DB=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT" | sed "s#/coldstart\$#/$DBNAME#")
if [ "${BENCH_SKIP_SEED:-0}" = 1 ]; then
  SEEDED="reused from the previous run"
else
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" -c "CREATE DATABASE $DBNAME"
  DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1
  DATABASE_URL=$DB "$BIN" create-project --name "Grafana bench" --slug gbench >/dev/null
  echo "== seeding $N invocations across $F functions (in PostgreSQL)" >&2
  t0=$(date +%s)
  psql "$DB" -q -o /dev/null -v n="$N" -v f="$F" -v days="$DAYS" -f bench/queries-seed.sql
  t1=$(date +%s)
  echo "== folding the cold starts into the day sketches and package rollups (coldstartd maintain)" >&2
  COLD=$(psql "$DB" -tAc "SELECT count(*) FROM function_day_sketch_pending")
  DATABASE_URL=$DB "$BIN" maintain >/dev/null
  psql "$DB" -qc "VACUUM ANALYZE"
  t2=$(date +%s)
  SEEDED="seeded in $((t1 - t0)) s; the fold of its $COLD cold starts (coldstartd maintain) took $((t2 - t1)) s"
fi
PROJECT=$(psql "$DB" -tAc "SELECT id FROM projects WHERE slug = 'gbench'")
SIZE=$(psql "$DB" -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'invocations'::regclass")
ROLLUPS=$(psql "$DB" -tAc "SELECT pg_size_pretty(pg_total_relation_size('package_hourly') + pg_total_relation_size('package_daily')) || ' per project, ' || pg_size_pretty(pg_total_relation_size('function_package_hourly') + pg_total_relation_size('function_package_daily')) || ' per function'")

RESULT=$(node bench/grafana-panels.mjs "$DB" "$PROJECT" "$REPS")
{
  echo "# Grafana panel latency"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), machine: nproc $(nproc), $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- data: $N invocations, $F functions, $DAYS days, 5 % cold starts with 20-200 modules each; invocations on disk: $SIZE, package rollups: $ROLLUPS; $SEEDED"
  echo "- command: BENCH_INVOCATIONS=$N bench/grafana-panels.sh ($REPS runs per panel and range after a warm-up run; All functions; ranges ending now)"
  echo
  echo "$RESULT"
} | tee bench/results/grafana-panels-latest.md
