#!/usr/bin/env bash
# Dashboard checks without a Grafana server: static checks of grafana/, unit tests of the model of
# Grafana's SQL expansion, and every panel and variable query executed as the read-only role
# against a PostgreSQL seeded through coldstartd's ingest API.
# Environment: CSA_TEST_DATABASE_URL (admin URL of a PostgreSQL 15+; a scratch database is created
# and dropped), COLDSTARTD (the server binary; default backend/build/coldstartd).
# Prints one line per test and ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for tool in node psql; do
  command -v "$tool" >/dev/null || { echo "tests/grafana: $tool is required"; echo "0 passed, 1 failed"; exit 1; }
done
exec node "$here/main.mjs"
