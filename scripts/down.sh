#!/usr/bin/env bash
# Stops what scripts/demo.sh started: the nodes (SIGTERM, then SIGKILL after a
# grace period) and then the demo's etcd. An etcd the demo found already
# running is left alone. Data under .boi/ stays.
set -euo pipefail
BOI_SCRIPT=down
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BOI_ROOT"

GRACE_S="${BOI_DOWN_GRACE_S:-10}"

# Stops the process in pid file $1 if its command line contains $2.
stop_one() {
  local file="$1" match="$2" name pid
  name="$(basename "$file" .pid)"
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null ||
    ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match"; then
    log "$name: not running"
    rm -f "$file"
    return 0
  fi
  log "$name: SIGTERM to pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + GRACE_S))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$name: still running after ${GRACE_S} s: SIGKILL to its process group"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
}

shopt -s nullglob
for f in .boi/pids/node-*.pid; do
  stop_one "$f" node/launch.ts &
done
wait
stop_one .boi/pids/etcd.pid etcd
log "stopped (data and logs stay under .boi/)"
