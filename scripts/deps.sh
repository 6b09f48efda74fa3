#!/usr/bin/env bash
# Installs what the project needs on a Debian/Ubuntu machine, only what is missing.
# Usage: scripts/deps.sh [run|test|bench]
set -euo pipefail
want=(build-essential cmake pkg-config libevent-dev libjansson-dev libpq-dev libsodium-dev
      postgresql postgresql-client curl)
case "${1:-run}" in
  test)  want+=(libcriterion-dev nodejs npm) ;;
  bench) want+=(wrk) ;;
esac
missing=()
for p in "${want[@]}"; do
  case "$p" in
    nodejs|npm) command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
