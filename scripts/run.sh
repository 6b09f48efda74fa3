#!/usr/bin/env bash
# `make run`: installs what is missing, builds, starts a project-local PostgreSQL (.data/pg,
# port 55432), migrates, creates a demo project whose key is kept in .data/demo-key, starts
# coldstartd on :8000, runs the example functions in examples/ through the SDK against it,
# shows `coldstartd report`, and keeps the server in the foreground (Ctrl-C stops it).
# Safe to run again: it reuses the cluster and the key.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=${PG_PORT:-55432}
export PORT=${PORT:-8000}

scripts/deps.sh run
make --no-print-directory build
scripts/pg.sh start .data/pg "$PG_PORT"
export DATABASE_URL
DATABASE_URL=$(scripts/pg.sh url .data/pg "$PG_PORT")
bin=backend/build/coldstartd

"$bin" migrate
if [ ! -s .data/demo-key ]; then
  out=$("$bin" create-project --name "Demo" --slug demo)
  (umask 077; printf '%s\n' "$out" | tail -n 1 > .data/demo-key)
fi
key=$(cat .data/demo-key)

if curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1; then
  echo "Something already answers on port $PORT (an earlier make run?). Stop it first, or PORT=8001 make run." >&2
  exit 1
fi

LOG_REQUESTS=${LOG_REQUESTS:-false} "$bin" serve 2> >(tee -a .data/coldstartd.log >&2) &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server; exit 0' INT TERM
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "coldstartd did not start (see above)" >&2; exit 1; }
  sleep 0.1
done

echo
echo "== Running the example functions through the SDK (5 cold starts each) =="
(cd sdk && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build >/dev/null)
(cd examples && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; })
for fn in orders-v2 orders-v3; do
  COLDSTART_API_KEY=$key COLDSTART_ENDPOINT=http://127.0.0.1:$PORT node examples/invoke.mjs "$fn" --cold 5 --warm 2
done
echo
"$bin" report --project demo --function orders-v2
echo
echo "(orders-v3 is the same function rewritten with the fixes: coldstartd report --function orders-v3)"

cat <<MSG

  coldstartd is running on http://127.0.0.1:$PORT   (PostgreSQL: 127.0.0.1:$PG_PORT, data in .data/pg)

  Demo project API key (kept in .data/demo-key):
    $key

  Send one record yourself, from another terminal:
    curl -s -X POST http://127.0.0.1:$PORT/api/v1/ingest \\
      -H "X-API-Key: \$(cat .data/demo-key)" -H 'Content-Type: application/json' \\
      -d '{"function_name":"payment-service","invocation_id":"demo-1","timestamp":"$(date -u +%Y-%m-%dT%H:%M:%SZ)",
           "cold_start":true,"init_duration_ms":2850,"execution_duration_ms":145,
           "module_timings":{"aws-sdk":850,"@prisma/client":680,"moment":340}}'

  Then: curl -s http://127.0.0.1:$PORT/api/v1/functions -H "X-API-Key: \$(cat .data/demo-key)"
  Instrument your own function: docs/sdk-usage.md.   Stop: Ctrl-C, then make stop.

MSG
wait $server
