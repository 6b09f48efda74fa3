#!/usr/bin/env bash
# `make run`: installs what is missing, builds, starts a project-local PostgreSQL (.data/pg,
# port 55432), migrates, creates a demo project whose key is kept in .data/demo-key, and starts
# coldstartd on :8000 in the foreground. Safe to run again: it reuses the cluster and the key.
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

cat <<MSG

  coldstartd is starting on http://127.0.0.1:$PORT   (PostgreSQL: 127.0.0.1:$PG_PORT, data in .data/pg)

  Demo project API key (kept in .data/demo-key):
    $key

  Send one cold-start record from another terminal:
    curl -s -X POST http://127.0.0.1:$PORT/api/v1/ingest \\
      -H "X-API-Key: \$(cat .data/demo-key)" -H 'Content-Type: application/json' \\
      -d '{"function_name":"payment-service","invocation_id":"demo-1","timestamp":"$(date -u +%Y-%m-%dT%H:%M:%SZ)",
           "cold_start":true,"init_duration_ms":2850,"execution_duration_ms":145,
           "module_timings":{"aws-sdk":850,"@prisma/client":680,"moment":340}}'

  Instrument a Lambda function with the SDK: docs/sdk-usage.md.  Stop: Ctrl-C, then make stop.

MSG
exec "$bin" serve
