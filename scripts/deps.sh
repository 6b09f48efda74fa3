#!/usr/bin/env bash
# Installs what the project needs on a Debian/Ubuntu machine, only what is missing.
# Usage: scripts/deps.sh [run|test|lint|bench]
#   run    the C build, PostgreSQL, curl, and Node.js 18+ with npm (make run builds the SDK and
#          runs the example functions through it)
#   test   run's, plus Criterion, OpenSSL, zip, clang and its sanitizer runtime, nginx, for the
#          Python SDK's suite python3 with pytest and the headers its C-extension fixture builds with,
#          Chromium (the web UI's browser test drives Debian's chromium; no browser is downloaded),
#          and lint's
#   lint   run's, plus clang-format and cppcheck (scripts/lint.sh; Biome comes from npm)
#   bench  run's, plus wrk
# Node.js: a `node` already on the PATH (from NodeSource, nvm, ...) is kept when it is 18 or
# newer; only when there is none does this install the distribution's `nodejs` and `npm`
# (Debian 12: 18.20, Ubuntu 24.04: 18.19). An older one stops here with a message.
# Tested on Debian 12 (x86_64); see README.md "Supported systems".
set -euo pipefail
want=(build-essential cmake pkg-config libevent-dev libjansson-dev libpq-dev libsodium-dev zlib1g-dev
      postgresql postgresql-client curl ca-certificates nodejs npm)
case "${1:-run}" in
  test)
    # the sanitizer runtime of the distribution's default clang (Debian 12: clang 14,
    # Ubuntu 24.04: clang 18)
    clang_major=$(apt-cache policy clang 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*:\)\{0,1\}\([0-9][0-9]*\).*/\2/p')
    want+=(libcriterion-dev libssl-dev zip clang "libclang-rt-${clang_major:-14}-dev" nginx openssl
           python3 python3-pytest python3-dev chromium clang-format cppcheck) ;;
  lint) want+=(clang-format cppcheck) ;;
  bench) want+=(wrk) ;;
esac
missing=()
arch=$(dpkg --print-architecture)
for p in "${want[@]}"; do
  case "$p" in
    nodejs)
      if command -v node >/dev/null 2>&1; then
        major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
        if [ "$major" -lt 18 ]; then
          echo "deps: $(command -v node) is Node.js $(node --version 2>/dev/null); 18 or newer is needed (remove it from the PATH to get the distribution's, or upgrade it)" >&2
          exit 1
        fi
        continue
      fi ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  # installed for this machine's architecture (a foreign-arch copy, e.g. libevent-dev:arm64 for
  # cross builds, does not count) or architecture-independent
  dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null | grep -Eq "install ok installed ($arch|all)$" \
    || missing+=("$p:$arch")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
# nginx's package would start a system nginx on port 80: a temporary policy-rc.d prevents that (the
# tests start their own nginx processes)
policy=""
if [[ " ${missing[*]} " == *" nginx:"* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
fi
status=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
[ -z "$policy" ] || $SUDO rm -f "$policy"
exit $status
