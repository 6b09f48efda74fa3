#!/usr/bin/env bash
# bench/queries-pair.sh: p50/p95 of the detail (7 and 30 days), the deployments and the comparison
# at 1,000,000 and 10,000,000 invocations side by side (issue 17: "10x the traffic costs at most
# 1.5x"). Serves two databases that bench/queries.sh seeded (BENCH_DB=<small>, BENCH_DB=<large>,
# with BENCH_KEEP_PG=1) with one build, and sends each request to both in turn: on a shared,
# loaded machine, two sequential runs minutes apart see different loads, interleaved ones the same.
#   BENCH_SMALL_DB (csa_bench_q1m), BENCH_LARGE_DB (csa_bench_q10m), BENCH_REQUESTS (200),
#   BENCH_PG_DIR / BENCH_PG_PORT as bench/queries.sh, COLDSTARTD: the build served,
#   BENCH_SMALL_KEY / BENCH_LARGE_KEY: files holding the API keys (default BENCH_PG_DIR/<db>-key;
#   for copies of seeded databases, whose keys stay those of the originals).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PG_DIR=${BENCH_PG_DIR:-$ROOT/.data/bench-q-pg}
PG_PORT=${BENCH_PG_PORT:-55474}
SMALL=${BENCH_SMALL_DB:-csa_bench_q1m}
LARGE=${BENCH_LARGE_DB:-csa_bench_q10m}
BIN=${COLDSTARTD:-$ROOT/backend/build/coldstartd}
P1=${BENCH_PORT:-18474}
P2=$((P1 + 1))
scripts/pg.sh start "$PG_DIR" "$PG_PORT" >/dev/null
U=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT")
PORT=$P1 HOST=127.0.0.1 DATABASE_URL=${U%/coldstart}/$SMALL LOG_REQUESTS=false RATE_LIMIT_QUERY=100000000 "$BIN" serve 2>/dev/null &
S1=$!
PORT=$P2 HOST=127.0.0.1 DATABASE_URL=${U%/coldstart}/$LARGE LOG_REQUESTS=false RATE_LIMIT_QUERY=100000000 "$BIN" serve 2>/dev/null &
S2=$!
trap 'kill -TERM $S1 $S2 2>/dev/null; wait $S1 $S2 2>/dev/null' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$P1/api/v1/health" >/dev/null 2>&1 && curl -fsS "http://127.0.0.1:$P2/api/v1/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "- $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg), server: $BIN"
node bench/queries-pair.mjs "http://127.0.0.1:$P1" "$(cat "${BENCH_SMALL_KEY:-$PG_DIR/$SMALL-key}")" "http://127.0.0.1:$P2" "$(cat "${BENCH_LARGE_KEY:-$PG_DIR/$LARGE-key}")" "${BENCH_REQUESTS:-200}"
echo "- ended $(date -u +%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
