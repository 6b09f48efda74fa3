#!/usr/bin/env bash
# `make test`: installs what is missing, builds (normal and ASan+UBSan), starts a fresh
# PostgreSQL of its own (.data/test-pg, port 55433), and runs every suite:
#   lint (scripts/lint.sh: clang-format, Biome and cppcheck; `make format` fixes formatting),
#   backend unit tests (Criterion) and integration tests (real server, real PostgreSQL, HTTP),
#   the same under AddressSanitizer + UndefinedBehaviorSanitizer (but the end-to-end deployments
#   test, 60 Node.js processes whose server paths deployments.test covers), end to end (examples/ through
#   the SDK into the server), the dashboards and deployment checks, the docs' commands (make run
#   in a sandbox, then the shell blocks of README.md and docs/*.md; links and anchors), a short
#   libFuzzer smoke run of every fuzz target, the Lambda extension's suite, the Python SDK's suite
#   (sdk-python/test.sh, pytest), the SDK's own tests, and the web UI in Chromium against the
#   server (and again against the ASan+UBSan build), which also rewrites the screenshots in
#   docs/images/ui-*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PG_DIR=.data/test-pg
PG_PORT=${TEST_PG_PORT:-55433}

scripts/deps.sh test
cmake -S backend -B backend/build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCSA_WERROR=ON >/dev/null
cmake --build backend/build -j2
cmake -S backend -B backend/build-asan -DCMAKE_BUILD_TYPE=Debug -DCSA_SANITIZE=ON -DCSA_WERROR=ON >/dev/null
cmake --build backend/build-asan -j2

scripts/pg.sh stop "$PG_DIR" 2>/dev/null || true
rm -rf "$PG_DIR"
PG_FSYNC=off scripts/pg.sh start "$PG_DIR" "$PG_PORT"
trap 'scripts/pg.sh stop "$PG_DIR"' EXIT
url=$(scripts/pg.sh url "$PG_DIR" "$PG_PORT")
export CSA_TEST_DATABASE_URL=${url%/coldstart}/postgres

failed=()
run_suite() {
  local name=$1; shift
  echo
  echo "=== $name ==="
  local started=$SECONDS
  if "$@"; then echo "=== $name: passed ($((SECONDS - started)) s) ==="
  else echo "=== $name: FAILED ($((SECONDS - started)) s) ==="; failed+=("$name"); fi
}

# the end-to-end test runs the example functions through the built SDK
(cd sdk && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build >/dev/null)
(cd examples && npm ci --no-audit --no-fund --loglevel=error)
# the web UI's browser test: esbuild (the build check), playwright-core, axe-core
(cd ui && npm ci --no-audit --no-fund --loglevel=error)

run_suite "lint (clang-format, Biome, cppcheck)" scripts/lint.sh
run_suite "backend (unit + integration)" ctest --test-dir backend/build --output-on-failure -j2
# Under the sanitizers, every suite but those whose subject is not the server's C code: the SDK's
# end-to-end deployments, the migrations' SQL on an upgrade, the documents against live answers
# and the Python SDK (their server paths are the ingest and reads the other suites drive).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "backend under ASan+UBSan" ctest --test-dir backend/build-asan --output-on-failure -j2 \
    -E 'integration\.(e2e-deployments|upgrade|openapi|python-sdk)$'
export COLDSTARTD=$root/backend/build/coldstartd
export FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-3} # each target; `make fuzz` runs them longer
for suite in tests/grafana/run.sh tests/deploy/run.sh tests/docs/run.sh backend/fuzz/smoke.sh extension/test.sh sdk-python/test.sh; do
  if [ -x "$suite" ]; then run_suite "$suite" "$suite"; fi
done
if [ -f sdk/package.json ]; then
  run_suite "sdk" bash -c "cd sdk && npm test"
fi
run_suite "ui (Chromium)" bash -c "cd ui && npm test"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  COLDSTARTD=$root/backend/build-asan/coldstartd UI_SCREENSHOT_DIR=none \
  run_suite "ui (Chromium) against ASan+UBSan" bash -c "cd ui && npm test"

echo
if [ ${#failed[@]} -gt 0 ]; then
  # lock waits and deadlocks the test server's PostgreSQL logged (pg.sh: log_lock_waits): what a
  # request stalled on for a second, if that is what failed
  grep -hE 'deadlock detected|still waiting for|acquired [A-Za-z]+Lock' -A3 "$PG_DIR/log/server.log" 2>/dev/null | tail -60 || true
  echo "make test: failed suites: ${failed[*]} ($SECONDS s)"
  exit 1
fi
echo "make test: all suites passed in $SECONDS s"
