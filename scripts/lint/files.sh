# Sourced by scripts/format.sh and scripts/lint.sh: what each tool covers, in one place.
# The TypeScript and JavaScript Biome covers are listed in /biome.jsonc ("files").

# C formatted by clang-format (.clang-format) and analysed by cppcheck: every tracked .c and .h
# under these folders.
C_DIRS=(backend/src extension/src common)
# folders cppcheck searches for the project's own headers
C_INCLUDES=(backend/src extension/src common)

c_files() { git ls-files -- "${C_DIRS[@]/%//*.c}" "${C_DIRS[@]/%//*.h}"; }

# Biome, pinned in scripts/lint/package.json: installed there on first use (npm ci).
BIOME=scripts/lint/node_modules/.bin/biome
ensure_biome() {
  [ -x "$BIOME" ] || npm ci --prefix scripts/lint --no-audit --no-fund --loglevel=error >&2
}
