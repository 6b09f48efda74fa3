#!/usr/bin/env bash
# backend/fuzz/smoke.sh: the `make test` fuzz smoke: every libFuzzer target of backend/fuzz/ for
# FUZZ_SMOKE_SECONDS (default 8) each, six targets, about a minute in all (plus the first
# build). Exits non-zero on any finding; the last line is "N passed, N failed".
set -uo pipefail
exec "$(dirname "$0")/run.sh" "${FUZZ_SMOKE_SECONDS:-8}"
