#!/usr/bin/env bash
# Checks the code without changing it, and fails on any finding:
#   clang-format --dry-run --Werror   C formatting (.clang-format) of backend/src, extension/src and common
#   biome check                        TypeScript and JavaScript formatting and lint (biome.jsonc)
#   cppcheck                           static analysis of the same C; a finding is fixed, or
#                                      justified inline with a cppcheck-suppress comment
# scripts/format.sh fixes the formatting. Each step runs even when an earlier one failed.
# Usage: scripts/lint.sh
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lint/files.sh
ensure_biome || exit 1
mapfile -t c < <(c_files)
failed=()
step() {
  local name=$1; shift
  local started=$SECONDS
  if "$@"; then echo "lint: $name: ok ($((SECONDS - started)) s)"
  else echo "lint: $name: FAILED ($((SECONDS - started)) s)"; failed+=("$name"); fi
}
step "clang-format ($(clang-format --version | grep -o '[0-9][0-9.]*' | head -1), ${#c[@]} files)" \
  clang-format --dry-run --Werror --style=file "${c[@]}"
step "biome" "$BIOME" check --error-on-warnings --no-errors-on-unmatched --max-diagnostics=50 .
# -j2: the machine's two cores; --library: libc/POSIX and jansson's iteration macros
step "cppcheck" cppcheck -q -j2 --error-exitcode=1 --std=c11 --enable=warning,style,performance,portability \
  --inline-suppr --library=posix --library=scripts/lint/jansson.cfg "${C_INCLUDES[@]/#/-I}" "${c[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]} (scripts/format.sh fixes formatting)"
  exit 1
fi
echo "lint: passed"
