#!/usr/bin/env bash
# A project-local PostgreSQL cluster: scripts/pg.sh start|stop|url|status DIR PORT
#   start  creates the cluster in DIR if needed (superuser "postgres" with a generated password
#          kept in DIR/password), starts it on 127.0.0.1:PORT, creates database "coldstart"
#   stop   fast shutdown
#   url    prints the DATABASE_URL of the cluster
# Run as root, the server runs as the "postgres" system user (PostgreSQL refuses root), and the
# folders above DIR that others cannot enter get o+x (search only; each one is named when changed).
# PG_FSYNC=off (make test's throwaway cluster only) creates the cluster with fsync off: what the
# tests check survives a crash of coldstartd or of PostgreSQL's processes, not of the machine, and
# CREATE DATABASE (one per test file, two files at a time) no longer waits on checkpoints' fsyncs.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|url|status DIR PORT}
dir=${2:?data directory}
port=${3:-55432}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [ -x "$d/initdb" ] && { bindir=$d; break; }
done
[ -n "$bindir" ] || { echo "pg.sh: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() {
  echo "postgresql://postgres:$(cat "$dir/password")@127.0.0.1:$port/coldstart"
}

case "$cmd" in
  start)
    if [ ! -s "$dir/cluster/PG_VERSION" ]; then
      rm -rf "$dir/cluster"
      mkdir -p "$dir/cluster" "$dir/sock" "$dir/log"
      [ -s "$dir/password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password")
      if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir/cluster" "$dir/sock" "$dir/log"
        cp "$dir/password" "$dir/cluster.pw"; chown postgres: "$dir/cluster.pw"
        # the postgres user must be able to reach DIR: give "others" search (x, not read)
        # permission on every folder above it that lacks it, and say so
        p=$dir; changed=()
        while [ "$p" != / ]; do
          if [ -z "$(find "$p" -maxdepth 0 -perm -o+x 2>/dev/null)" ]; then
            chmod o+x "$p" 2>/dev/null && changed+=("$p")
          fi
          p=$(dirname "$p")
        done
        [ ${#changed[@]} -eq 0 ] || echo "pg.sh: run as root, PostgreSQL runs as user postgres, which must reach $dir: added o+x (enter, not list) to ${changed[*]}" >&2
      else
        cp "$dir/password" "$dir/cluster.pw"
      fi
      as_pg "$bindir/initdb" -D "$dir/cluster" -U postgres --pwfile="$dir/cluster.pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
      rm -f "$dir/cluster.pw"
      cat >>"$dir/cluster/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 200
shared_buffers = 256MB
fsync = ${PG_FSYNC:-on}
synchronous_commit = on
# a lock wait longer than deadlock_timeout (1 s) is logged: a stalled write can be told from a slow one
log_lock_waits = on
CONF
    fi
    sed -i "s/^port = .*//" "$dir/cluster/postgresql.conf"
    echo "port = $port" >>"$dir/cluster/postgresql.conf"
    if ! as_pg "$bindir/pg_ctl" -D "$dir/cluster" status >/dev/null 2>&1; then
      as_pg "$bindir/pg_ctl" -D "$dir/cluster" -l "$dir/log/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$dir/log/server.log" >&2; exit 1; }
    fi
    as_pg "$bindir/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -qtAc \
      "SELECT 1 FROM pg_database WHERE datname='coldstart'" | grep -q 1 \
      || as_pg "$bindir/createdb" -h "$dir/sock" -p "$port" -U postgres coldstart
    ;;
  stop)
    if [ -f "$dir/cluster/postmaster.pid" ]; then
      as_pg "$bindir/pg_ctl" -D "$dir/cluster" -m fast -w stop >/dev/null || true
    fi
    ;;
  status) as_pg "$bindir/pg_ctl" -D "$dir/cluster" status ;;
  url) url ;;
  *) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
