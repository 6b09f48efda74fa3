#!/usr/bin/env bash
# Every test of the extension, one command: release and sanitizer builds (warnings are errors),
# the fuzz smoke of the telemetry/event parsers and the record store under ASan+UBSan, the layer
# build, and the end-to-end suite (emulated Lambda + real SDK + real binary + the real coldstartd on
# a real PostgreSQL; release and ASan binaries).
# Ends with "N passed, N failed"; exits non-zero on any failure.
#
# Environment (scripts/test.sh, i.e. make test, sets both):
#   COLDSTARTD             path of the built server (backend/build/coldstartd)
#   CSA_TEST_DATABASE_URL  admin URL of a running PostgreSQL; each suite run makes its own database
#   EXT_TEST_PORTS         optional range (e.g. 18850-18899) for every port the suite listens on (default: the 10,000 ports below the kernel's ephemeral range)
# A local run:
#   scripts/pg.sh start .data/my-pg 55499 && url=$(scripts/pg.sh url .data/my-pg 55499)
#   cmake -S backend -B backend/build-mine && cmake --build backend/build-mine -j2
#   CSA_TEST_DATABASE_URL=${url%/coldstart}/postgres COLDSTARTD=$PWD/backend/build-mine/coldstartd extension/test.sh
set -uo pipefail
if [ -n "${COLDSTARTD:-}" ] && [[ $COLDSTARTD != /* ]]; then COLDSTARTD=$PWD/$COLDSTARTD; fi
cd "$(dirname "$0")"
JOBS=${JOBS:-2}
passed=0
failed=0
step() { # name command...
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
    fi
}
quiet() { local log; log=$(mktemp); if "$@" >"$log" 2>&1; then rm -f "$log"; else cat "$log"; rm -f "$log"; return 1; fi; }

build_release() { cmake -S . -B build -DCMAKE_BUILD_TYPE=MinSizeRel -DCSA_WERROR=ON && cmake --build build -j"$JOBS"; }
build_asan() {
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCSA_SANITIZE=ON -DCSA_WERROR=ON -DCSA_STATIC_DEPS=OFF &&
        cmake --build build-asan -j"$JOBS"
}
sdk_built() {
    [ -f ../sdk/dist/index.cjs ] || (cd ../sdk && npm ci --no-audit --no-fund && npm run build)
}

step "build (release, -Werror)" quiet build_release
step "build (ASan+UBSan, -Werror)" quiet build_asan
step "fuzz smoke: 50000 mutated telemetry/event/record bodies under ASan+UBSan" quiet ./build-asan/fuzz_smoke 50000
step "layer zips" quiet ./build.sh
step "SDK built" quiet sdk_built

# The end-to-end suite counts its own cases. Three passes share one database and one coldstartd.
# Under ASan, LeakSanitizer's scan at exit can take longer than what is left before Lambda's
# SHUTDOWN deadline on a loaded machine: the full ASan pass has leak detection off, and one extra
# pass of the busiest case has it on.
real_backend() {
    if [ -z "${CSA_TEST_DATABASE_URL:-}" ] || [ -z "${COLDSTARTD:-}" ] || [ ! -x "${COLDSTARTD:-}" ]; then
        echo "the end-to-end suite runs against the real coldstartd and PostgreSQL: set COLDSTARTD (the built" \
            "server, now '${COLDSTARTD:-}') and CSA_TEST_DATABASE_URL (admin URL of a running PostgreSQL); make test sets both"
        return 1
    fi
}
if ! step "real backend configured (COLDSTARTD, CSA_TEST_DATABASE_URL)" real_backend; then
    echo "$passed passed, $failed failed"
    exit 1
fi
export COLDSTARTD CSA_TEST_DATABASE_URL
out=$(node tests/run.mjs --pass "release|build/coldstart-extension" \
    --pass "ASan+UBSan|build-asan/coldstart-extension||detect_leaks=0" \
    --pass "ASan+UBSan+LeakSanitizer|build-asan/coldstart-extension|cold and warm|detect_leaks=1" 2>&1)
echo "$out" | sed '$d'
last=$(echo "$out" | tail -1)
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
else
    echo "FAIL end-to-end suite did not finish: $last"
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
