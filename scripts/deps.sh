#!/usr/bin/env bash
# Installs what the project needs on a Debian/Ubuntu machine, only what is missing.
# Usage: scripts/deps.sh [run|test|bench]
set -euo pipefail
want=(build-essential cmake pkg-config libevent-dev libjansson-dev libpq-dev libsodium-dev zlib1g-dev
      postgresql postgresql-client curl)
case "${1:-run}" in
  test)  want+=(libcriterion-dev nodejs npm libssl-dev zip clang libclang-rt-14-dev nginx openssl) ;;
  bench) want+=(wrk) ;;
esac
missing=()
arch=$(dpkg --print-architecture)
for p in "${want[@]}"; do
  case "$p" in
    nodejs|npm) command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue ;;
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
