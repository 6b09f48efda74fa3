#!/usr/bin/env bash
# backend/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Builds the libFuzzer targets of backend/fuzz/ with clang (-fsanitize=fuzzer,address,undefined)
# into backend/build-fuzz/ and runs each for SECONDS_PER_TARGET (default 60). Seeds are read from
# backend/fuzz/corpus/<target>/ (checked in, never written); new inputs go to
# backend/build-fuzz/corpus/<target>/, findings (crash-*, leak-*, timeout-*, oom-*) to
# backend/build-fuzz/findings/<target>/. Prints one line per target and a final
# "N passed, N failed"; exits 1 if any target found something.
#
# Environment: FUZZ_JOBS (parallel build, default 2), FUZZ_RSS_MB (default 2048),
#              FUZZ_BUILD_DIR (default backend/build-fuzz).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
backend=$(cd "$here/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_ingest fuzz_rfc3339 fuzz_config fuzz_rules fuzz_query fuzz_firehose)
build=${FUZZ_BUILD_DIR:-$backend/build-fuzz}
jobs=${FUZZ_JOBS:-2}

# clang and its runtime (libFuzzer lives in libclang-rt-NN-dev on Debian 12)
have_fuzzer_rt() {
    command -v clang >/dev/null &&
        echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long s) { return 0; }' |
        clang -x c - -fsanitize=fuzzer,address,undefined -o /dev/null 2>/dev/null
}
if ! have_fuzzer_rt; then
    echo "run.sh: installing clang and its fuzzer runtime" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq &&
        $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null ||
        { echo "run.sh: cannot install clang/libclang-rt-14-dev" >&2; exit 2; }
fi

# ---- build ---------------------------------------------------------------------------------------
mkdir -p "$build/obj"
pkgs="libevent_pthreads libevent jansson libpq libsodium zlib openssl"
pkg-config --exists $pkgs || { echo "run.sh: pkg-config cannot find $pkgs (make deps)" >&2; exit 2; }
cflags="-g -O1 -std=c17 -D_GNU_SOURCE -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
        -fno-sanitize-recover=undefined -I$backend/src -I$backend/../common $(pkg-config --cflags $pkgs)
        -DCSA_VERSION=\"fuzz\" -DCSA_DEFAULT_MIGRATIONS_DIR=\"$backend/migrations\"
        -DCSA_DEFAULT_RULES_FILE=\"$backend/../rules/recommendations.json\" -Wall -Wno-unused-parameter"
libs="$(pkg-config --libs $pkgs) -lpthread -lm"
objs=()
for src in "$backend"/src/*.c "$backend"/../common/*.c; do # ../common: shared with the extension
    name=$(basename "$src" .c)
    case $name in main) continue ;; esac # main(): ours is libFuzzer's
    obj="$build/obj/$name.o"
    objs+=("$obj")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$backend/src" "$backend/../common" -name '*.h' -newer "$obj")" ]; then
        echo "clang -c $src"
        # shellcheck disable=SC2086
        clang $cflags -c "$src" -o "$obj" &
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    fi
done
# the web UI's embedded files (ui.c's table), generated as the CMake build does it
cmake -DDIST="$backend/../ui/dist" -DOUT="$build/ui_assets.c" -P "$backend/cmake/embed-ui.cmake" ||
    { echo "run.sh: cannot generate the UI's asset table" >&2; exit 2; }
objs+=("$build/obj/ui_assets.o")
if [ ! -f "$build/obj/ui_assets.o" ] || [ "$build/ui_assets.c" -nt "$build/obj/ui_assets.o" ]; then
    echo "clang -c $build/ui_assets.c"
    # shellcheck disable=SC2086
    clang $cflags -c "$build/ui_assets.c" -o "$build/obj/ui_assets.o" &
fi
wait
for t in "${targets[@]}"; do
    newest=$(ls -t "$here/$t.c" "${objs[@]}" | head -1)
    [ -x "$build/$t" ] && [ "$build/$t" -nt "$newest" ] && continue
    echo "clang -o $build/$t"
    # shellcheck disable=SC2086
    clang $cflags -fsanitize=fuzzer "$here/$t.c" "${objs[@]}" $libs -o "$build/$t" ||
        { echo "run.sh: cannot build $t" >&2; exit 2; }
done

# ---- run -----------------------------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
for t in "${targets[@]}"; do
    corpus="$build/corpus/$t"
    findings="$build/findings/$t"
    mkdir -p "$corpus" "$findings"
    seeds=()
    [ -d "$here/corpus/$t" ] && seeds=("$here/corpus/$t")
    dict=()
    [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
    log="$build/$t.log"
    "$build/$t" -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout=10 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -aoE '#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $t: ${execs:-?} executions in ${seconds}s, ${cov:-cov ?}, corpus $(ls "$corpus" | wc -l) files"
    else
        failed=$((failed + 1))
        echo "FAIL $t (exit $rc): findings in $findings/, log $log"
        grep -aE 'ERROR: |SUMMARY: |runtime error|^    #[0-9]+ ' "$log" | head -25 | sed 's/^/    /'
    fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
