#!/usr/bin/env bash
# bench/ui.sh: the web UI's function view, time to usable, on the read-API benchmark's dataset
# (bench/queries-seed.sql: BENCH_INVOCATIONS, default 1,000,000, over 100 functions and 30 days, 5 %
# cold starts with 20 to 200 modules each), plus an 80-node module tree (the SDK's cap) on each
# function's newest cold starts. Debian's Chromium (playwright-core from ui/node_modules) opens
# /#/functions/<id> with the key already signed in, BENCH_VIEWS (default 40) times per window,
# each a fresh page load with the HTTP cache on (as a returning user), and measures from
# navigation start until the view is usable: tiles, both charts, the deployments section, the
# recommendations, the icicle graph and the breakdown on screen. Issue 18's target: usable within 1 s.
# Own PostgreSQL (.data/bench-ui-pg, port 55475), own port (18475). Not part of make test.
# Results: bench/results/ui-latest.md
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${BENCH_INVOCATIONS:-1000000}
F=${BENCH_FUNCTIONS:-100}
DAYS=${BENCH_DAYS:-30}
VIEWS=${BENCH_VIEWS:-40}
PG_DIR=${BENCH_PG_DIR:-$ROOT/.data/bench-ui-pg}
PG_PORT=${BENCH_PG_PORT:-55475}
PORT=${BENCH_PORT:-18475}
BIN=${COLDSTARTD:-$ROOT/backend/build/coldstartd}
[ -x "$BIN" ] || { echo "bench: build first (make build)" >&2; exit 1; }
[ -d ui/node_modules/playwright-core ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "bench: needs Chromium (scripts/deps.sh test)" >&2; exit 1; }

scripts/pg.sh start "$PG_DIR" "$PG_PORT" >/dev/null
ADMIN=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT" | sed 's#/coldstart$#/postgres#')
DB=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT" | sed 's#/coldstart$#/csa_bench_ui#')
# BENCH_REUSE=1: keep a database seeded by an earlier run (with BENCH_KEEP_PG=1), migrated to this build
if [ "${BENCH_REUSE:-0}" = 1 ] && psql "$DB" -tAc "SELECT 1 FROM invocations LIMIT 1" 2>/dev/null | grep -q 1; then
  DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1
  echo "== reusing the seeded database csa_bench_ui" >&2
else
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS csa_bench_ui WITH (FORCE)" -c "CREATE DATABASE csa_bench_ui"
  DATABASE_URL=$DB "$BIN" migrate >/dev/null 2>&1
  DATABASE_URL=$DB "$BIN" create-project --name "UI bench" --slug uibench >/dev/null
  echo "== seeding $N invocations across $F functions (in PostgreSQL)" >&2
  psql "$DB" -q -o /dev/null -v n="$N" -v f="$F" -v days="$DAYS" -f bench/queries-seed.sql
  # an 80-node, 4-level module tree (the SDK's caps) on each function's 5 newest cold starts
  TREE=$(node -e '
    let left = 80;
    const level = (d, prefix) => d > 4 ? undefined : Array.from({ length: Math.min(8, left) }, (_, i) => {
      if (left-- <= 0) return null;
      const children = d < 4 && i < 2 ? level(d + 1, `${prefix}${i}-`) : undefined;
      const kids = (children || []).filter(Boolean).reduce((a, c) => a + c.total_ms, 0);
      const self = Math.round(200 / (d * (i + 1))) + 1;
      return { name: `pkg-${prefix}${i}`, version: "1.0." + i, self_ms: self, total_ms: self + kids, children: children && children.filter(Boolean) };
    }).filter(Boolean);
    const children = level(1, "");
    console.log(JSON.stringify({ load_ms: children.reduce((a, c) => a + c.total_ms, 0), modules: 400, truncated: true, children }));')
  psql "$DB" -q -v tree="$TREE" <<'SQL'
UPDATE invocations i SET module_tree = :'tree'::jsonb
FROM (SELECT id, "timestamp" FROM (SELECT id, "timestamp", row_number() OVER (PARTITION BY function_id ORDER BY "timestamp" DESC) AS r
      FROM invocations WHERE cold_start) x WHERE r <= 5) n
WHERE i.id = n.id AND i."timestamp" = n."timestamp";
ANALYZE invocations;
SQL
fi

# the key a person signs in with: read only
KEY=$(DATABASE_URL=$DB "$BIN" create-key --project uibench --name bench-ui --scopes read | tail -n 1)

PORT=$PORT HOST=127.0.0.1 DATABASE_URL=$DB LOG_REQUESTS=false RATE_LIMIT_QUERY=100000000 "$BIN" serve 2>/tmp/csa-bench-ui.log &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; [ "${BENCH_KEEP_PG:-0}" = 1 ] || scripts/pg.sh stop "$PG_DIR"' EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done

RESULT=$(node bench/ui-load.mjs "http://127.0.0.1:$PORT" "$KEY" "$VIEWS")
{
  echo "# Web UI: the function view's time to usable"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), machine: nproc $(nproc), $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg), $(${CHROMIUM:-/usr/bin/chromium} --version 2>/dev/null | head -n1)"
  echo "- data: $N invocations, $F functions, $DAYS days (bench/queries-seed.sql), an 80-node module tree on each function's 5 newest cold starts"
  echo "- command: BENCH_INVOCATIONS=$N bench/ui.sh ($VIEWS page loads per window, each function in turn, after 3 warm-up loads; headless Chromium at 1280x800, server and browser on the same 2 cores)"
  echo "- usable: tiles, both charts drawn, the deployments section answered, recommendations, the icicle graph and the module breakdown on screen; measured from navigation start (performance.now() in the page)"
  echo
  echo "$RESULT"
} | tee bench/results/ui-latest.md
