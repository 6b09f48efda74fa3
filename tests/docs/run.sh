#!/usr/bin/env bash
# The docs' commands, tested (part of `make test`):
#   1. every relative link and #anchor of the tracked Markdown files resolves (doccheck.mjs links);
#   2. `make run` is started, as a user would, in a sandbox: .data/docs-test/repo holds a symlink
#      to every top-level entry of this repository except .data, .env and .git, so the sandbox has
#      its own .data (PostgreSQL cluster, demo key) and .env while it builds and runs the same
#      tree; the server gets a free port instead of 8000 (a developer's make run may hold it) and
#      the database one instead of 55432;
#   3. with that server up, the shell blocks of README.md and docs/*.md run in order from the
#      sandbox's root, HOME a folder of the sandbox (so ~/my-function and the like stay inside),
#      each checked for its exit status and promised output (doccheck.mjs blocks; blocks marked
#      <!-- doc-test: skip ... --> need Docker, AWS, a browser or the reader's own values);
#   4. make run is stopped with SIGTERM (as Ctrl-C would) and its PostgreSQL with pg.sh stop.
# Needs what `scripts/deps.sh run` installs, and the SDK's npm dependencies reachable (npm's
# cache or registry). About 30-60 s with the build and the SDK's node_modules already there.
# The sandbox stays in .data/docs-test after a failure, for a look; it is removed after success.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
sb=$root/.data/docs-test
repo=$sb/repo
log=$sb/make-run.log
files=(README.md docs/*.md)

echo "== links and anchors"
node tests/docs/doccheck.mjs links

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "docs test: no free port found" >&2
  return 1
}

# a sandbox left by an earlier failed run: stop its database first
[ ! -d "$repo/.data/pg" ] || scripts/pg.sh stop "$repo/.data/pg" >/dev/null 2>&1 || true
rm -rf "$sb"
mkdir -p "$repo" "$sb/home"
for entry in "$root"/* "$root"/.[!.]*; do
  case "${entry##*/}" in .data|.env|.git|'.[!.]*') continue ;; esac
  [ -e "$entry" ] && ln -s "$entry" "$repo/${entry##*/}"
done

port=$(free_port)
pg_port=$(free_port)
while [ "$pg_port" = "$port" ]; do pg_port=$(free_port); done

run_pid=""
finish() {
  local status=$?
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    kill -TERM -- "-$run_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [ ! -d "$repo/.data/pg" ] || scripts/pg.sh stop "$repo/.data/pg" >/dev/null 2>&1 || true
  if [ "$status" -eq 0 ]; then
    rm -rf "$sb"
  else
    echo "docs test: failed; the sandbox is kept in $sb (make run's output: $log)" >&2
  fi
  exit "$status"
}
trap finish EXIT

echo "== make run in $repo (server on 127.0.0.1:$port, PostgreSQL on $pg_port)"
# its own session, so that one signal reaches make, run.sh and coldstartd, as Ctrl-C does
(cd "$repo" && exec env PORT="$port" PG_PORT="$pg_port" setsid make --no-print-directory run) >"$log" 2>&1 </dev/null &
run_pid=$!
started=$(date +%s)
until grep -q 'coldstartd is running on' "$log"; do
  if ! kill -0 "$run_pid" 2>/dev/null; then
    echo "docs test: make run ended before its server was up:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  if [ $(($(date +%s) - started)) -gt 600 ]; then
    echo "docs test: make run not up after 600 s:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "   up after $(($(date +%s) - started)) s"
# what the README promises make run prints: the example functions' cold-start breakdown
for promised in 'orders-v2' 'module loading explains' 'RECOMMENDATIONS'; do
  grep -q "$promised" "$log" || { echo "docs test: make run's output lacks \"$promised\"" >&2; exit 1; }
done

echo "== shell blocks of ${files[*]}"
cache=$(npm config get cache 2>/dev/null || true)
(cd "$repo" && HOME="$sb/home" npm_config_cache="${cache:-$sb/npm-cache}" DOCS_PORT="$port" \
  node "$root/tests/docs/doccheck.mjs" blocks "${files[@]}")

# make run must still be serving: a block that stopped it, or a crash, is a failure too
kill -0 "$run_pid" 2>/dev/null || { echo "docs test: make run ended during the blocks" >&2; tail -20 "$log" >&2; exit 1; }
