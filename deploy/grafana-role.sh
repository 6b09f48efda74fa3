#!/bin/sh
# Creates or updates the read-only database role Grafana uses (see grafana-role.sql).
#
# Environment:
#   DATABASE_URL         admin connection to the coldstart database (a role that may CREATE ROLE
#                        and GRANT on the tables: the owner of the schema, or a superuser)
#   GRAFANA_DB_USER      role name (default csa_grafana)
#   GRAFANA_DB_PASSWORD  its password; required, at least 12 characters
#
# POSIX sh and psql 15+ (for \\getenv) only, so that it runs in the postgres:15 image (Compose's `grafana-role`
# service) as well as on a host.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${DATABASE_URL:?DATABASE_URL must name the coldstart database (admin connection)}"
: "${GRAFANA_DB_PASSWORD:?GRAFANA_DB_PASSWORD must be set}"
GRAFANA_DB_USER=${GRAFANA_DB_USER:-csa_grafana}
export GRAFANA_DB_USER GRAFANA_DB_PASSWORD
if [ "${#GRAFANA_DB_PASSWORD}" -lt 12 ]; then
  echo "grafana-role: GRAFANA_DB_PASSWORD must have at least 12 characters" >&2
  exit 2
fi
# The spec's driver-qualified URL form is accepted by coldstartd; psql needs the plain one.
url=$(printf '%s' "$DATABASE_URL" | sed 's#^postgresql+asyncpg://#postgresql://#')
psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$here/grafana-role.sql"
echo "grafana-role: role $GRAFANA_DB_USER can read projects, functions, invocations, function_hourly, function_hourly_delta, function_deployments, package_hourly, package_daily, function_hour_sketches, function_day_sketch_pending, function_package_hourly, function_package_daily"
