#!/usr/bin/env bash
# Every test of the extension, one command: release and sanitizer builds (warnings are errors),
# the fuzz smoke of the telemetry/event parsers under ASan+UBSan, the layer build, and the
# end-to-end suite (emulated Lambda + real SDK + real binary, release and ASan binaries).
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
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
step "fuzz smoke: 50000 mutated telemetry/event bodies under ASan+UBSan" quiet ./build-asan/fuzz_smoke 50000
step "layer zips" quiet ./build.sh
step "SDK built" quiet sdk_built

# The end-to-end suites count their own cases. Under ASan, LeakSanitizer's scan at exit can take
# longer than what is left before Lambda's SHUTDOWN deadline on a loaded machine: the full ASan run
# has leak detection off, and one extra run of the busiest case has it on.
e2e() { # label binary [filter] (ASAN_OPTIONS from the caller)
    echo "--- end-to-end: $1"
    out=$(node tests/run.mjs "$2" ${3:+"$3"} 2>&1)
    echo "$out" | sed '$d'
    last=$(echo "$out" | tail -1)
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        echo "FAIL end-to-end suite did not finish: $last"
        failed=$((failed + 1))
    fi
}
e2e release build/coldstart-extension
ASAN_OPTIONS=detect_leaks=0 e2e "ASan+UBSan" build-asan/coldstart-extension
ASAN_OPTIONS=detect_leaks=1 e2e "ASan+UBSan+LeakSanitizer" build-asan/coldstart-extension "cold and warm"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
