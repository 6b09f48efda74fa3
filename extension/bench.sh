#!/usr/bin/env bash
# Measures the extension's footprint and writes extension/RESULTS.md: the layer's build (with
# OpenSSL for https backends) and the http-only build (CSA_TLS=OFF), same machine, same run.
# Usage: extension/bench.sh [invocations]   (default 300)
set -euo pipefail
cd "$(dirname "$0")"
cmake -S . -B build -DCMAKE_BUILD_TYPE=MinSizeRel -DCSA_TLS=ON >/dev/null
cmake --build build -j"${JOBS:-2}" --target coldstart-extension >/dev/null
cmake -S . -B build-notls -DCMAKE_BUILD_TYPE=MinSizeRel -DCSA_TLS=OFF >/dev/null
cmake --build build-notls -j"${JOBS:-2}" --target coldstart-extension >/dev/null
[ -f ../sdk/dist/index.cjs ] || (cd ../sdk && npm ci --no-audit --no-fund && npm run build)
{
    echo "# coldstart-extension: footprint"
    echo
    echo "Targets (issue 8): under 5 ms from process start to registered, under 4 MiB RSS, no measurable"
    echo "effect on invocation duration. Reproduce with \`extension/bench.sh\`."
    echo
    node tests/bench.mjs build/coldstart-extension "${1:-300}" "Layer build: https support (static OpenSSL)"
    node tests/bench.mjs build-notls/coldstart-extension "${1:-300}" "http-only build (CSA_TLS=OFF)"
} > RESULTS.md.tmp
mv RESULTS.md.tmp RESULTS.md
cat RESULTS.md
