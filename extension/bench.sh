#!/usr/bin/env bash
# Measures the extension's footprint and writes extension/RESULTS.md.
# Usage: extension/bench.sh [invocations]   (default 300)
set -euo pipefail
cd "$(dirname "$0")"
cmake -S . -B build -DCMAKE_BUILD_TYPE=MinSizeRel >/dev/null
cmake --build build -j"${JOBS:-2}" --target coldstart-extension >/dev/null
[ -f ../sdk/dist/index.cjs ] || (cd ../sdk && npm ci --no-audit --no-fund && npm run build)
node tests/bench.mjs build/coldstart-extension "${1:-300}" > RESULTS.md.tmp
mv RESULTS.md.tmp RESULTS.md
cat RESULTS.md
