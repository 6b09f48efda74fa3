#!/usr/bin/env bash
# `make run`: installs what is missing, builds, starts a project-local PostgreSQL (.data/pg,
# port 55432), migrates, creates a demo project whose admin key is kept in .data/demo-key (its
# ingest-only key, which the examples send with, in .data/demo-ingest-key), writes the
# cluster's DATABASE_URL into ./.env (so that backend/build/coldstartd works from another
# terminal), starts coldstartd on 127.0.0.1:8000, runs the example functions in examples/ through
# the SDK against it, shows `coldstartd report`, and keeps the server in the foreground (Ctrl-C
# stops it; `make stop` stops PostgreSQL).
# Safe to run again: it reuses the cluster and the key. Whatever way it ends (Ctrl-C, a failed
# step), the coldstartd it started is stopped; when a step fails, so is the PostgreSQL it started.
# Settings: PORT (8000), HOST (127.0.0.1; HOST=0.0.0.0 serves other machines too), PG_PORT (55432).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=${PG_PORT:-55432}
export PORT=${PORT:-8000}
export HOST=${HOST:-127.0.0.1}

server=""
pg_started=""
cleanup() {
  local status=$1
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -n "$pg_started" ]; then
    scripts/pg.sh stop .data/pg || true
    echo "make run failed: coldstartd and the PostgreSQL it started are stopped" >&2
  fi
}
trap 'status=$?; cleanup $status; exit $status' EXIT
trap 'exit 0' INT TERM

scripts/deps.sh run
make --no-print-directory build
scripts/pg.sh status .data/pg >/dev/null 2>&1 || pg_started=yes
scripts/pg.sh start .data/pg "$PG_PORT"
export DATABASE_URL
DATABASE_URL=$(scripts/pg.sh url .data/pg "$PG_PORT")
bin=backend/build/coldstartd

# ./.env: coldstartd reads it from the working directory for the names the environment does not
# set, so `backend/build/coldstartd report` from another terminal reaches this cluster
line="DATABASE_URL=$DATABASE_URL"
if [ ! -e .env ]; then
  (umask 077; printf '# written by make run: the project-local PostgreSQL (.data/pg)\n%s\n' "$line" > .env)
elif ! grep -qxF "$line" .env; then
  if grep -q '^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}DATABASE_URL=' .env; then
    sed -i 's|^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}DATABASE_URL=.*|# make run: the project-local PostgreSQL (.data/pg)\n'"$line"'|' .env
    echo "make run: DATABASE_URL in .env now names the project-local PostgreSQL" >&2
  else
    printf '# written by make run: the project-local PostgreSQL (.data/pg)\n%s\n' "$line" >> .env
  fi
fi

"$bin" migrate
# .data/demo-key: the admin key (reads, manages keys); .data/demo-ingest-key: the ingest-only key
# the example functions send with, as a real function would. A .data/demo-key from before scopes
# existed has all scopes and serves for both.
if [ ! -s .data/demo-key ]; then
  out=$("$bin" create-project --name "Demo" --slug demo)
  (umask 077
   printf '%s\n' "$out" | sed -n '/^Admin key/,/^csa_/p' | tail -n 1 > .data/demo-key
   printf '%s\n' "$out" | tail -n 1 > .data/demo-ingest-key)
fi
key=$(cat .data/demo-ingest-key 2>/dev/null || cat .data/demo-key)

if curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1; then
  echo "Something already answers on port $PORT (an earlier make run?). Stop it first, or PORT=8001 make run." >&2
  exit 1
fi

LOG_REQUESTS=${LOG_REQUESTS:-false} "$bin" serve 2> >(tee -a .data/coldstartd.log >&2) &
server=$!
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
echo "(orders-v3 is the same function rewritten with the fixes: backend/build/coldstartd report --function orders-v3)"

# the address a browser on this machine uses (HOST=0.0.0.0 listens everywhere)
case "$HOST" in 0.0.0.0 | :: | "") ui_host=127.0.0.1 ;; *) ui_host=$HOST ;; esac
cat <<MSG

  coldstartd is running on http://127.0.0.1:$PORT   (PostgreSQL: 127.0.0.1:$PG_PORT, data in .data/pg)

  Web UI: open http://$ui_host:$PORT/ and sign in with the admin key below (docs/ui.md)

  Demo project keys: admin (ingest, read, admin) in .data/demo-key, ingest-only (what the
  example functions send with) in .data/demo-ingest-key:
    $(cat .data/demo-key)
    $key

  From another terminal, in $(pwd) (.env names this database):
    backend/build/coldstartd report --function orders-v3

  Send one record yourself (README.md, "Send one record"):
    curl -s -X POST http://127.0.0.1:$PORT/api/v1/ingest \\
      -H "X-API-Key: \$(cat .data/demo-key)" -H 'Content-Type: application/json' \\
      -d '{"function_name":"payment-service","invocation_id":"demo-1","timestamp":"'"\$(date -u +%Y-%m-%dT%H:%M:%SZ)"'",
           "cold_start":true,"init_duration_ms":2850,"execution_duration_ms":145,
           "module_timings":{"aws-sdk":850,"@prisma/client":680,"moment":340}}'

  Then: curl -s http://127.0.0.1:$PORT/api/v1/functions -H "X-API-Key: \$(cat .data/demo-key)"
  Instrument your own function: docs/sdk-usage.md.   Stop: Ctrl-C, then make stop.

MSG
wait $server
