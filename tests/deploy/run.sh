#!/usr/bin/env bash
# Deployment checks without a Docker engine (see main.mjs): Compose files, the Dockerfile's build
# stage reproduced here, the image layout run for real, nginx -t and a TLS proxy test in front of a
# real coldstartd. Installs the Debian packages it needs (nginx, openssl) when they are missing.
# Environment: CSA_TEST_DATABASE_URL (admin URL of a PostgreSQL 15+; a scratch database is created
# and dropped). Ends with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "tests/deploy: installing ${missing[*]}"
  $SUDO apt-get update -qq || true
  # a temporary policy-rc.d keeps the package from starting a system nginx on port 80
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  [ -z "$policy" ] || $SUDO rm -f "$policy"
  [ $status -eq 0 ] || { echo "tests/deploy: apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
fi
for tool in node psql; do
  command -v "$tool" >/dev/null || { echo "tests/deploy: $tool is required"; echo "0 passed, 1 failed"; exit 1; }
done
exec node "$here/main.mjs"
