#!/usr/bin/env bash
# Rewrites the code to the project's style: the C (backend/src, extension/src) with clang-format
# (.clang-format), the TypeScript and JavaScript with Biome (biome.jsonc: formatting and the safe
# fixes of its lint rules). scripts/lint.sh then passes on formatting; what Biome cannot fix
# safely and cppcheck's findings are left for a person.
# Usage: scripts/format.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lint/files.sh
ensure_biome
mapfile -t c < <(c_files)
clang-format -i --style=file "${c[@]}"
echo "format: clang-format rewrote what differed in ${#c[@]} C files"
"$BIOME" check --write --no-errors-on-unmatched --max-diagnostics=0 . || true
echo "format: biome rewrote the TypeScript and JavaScript (scripts/lint.sh says what is left)"
