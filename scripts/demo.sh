#!/usr/bin/env bash
# Local demo: installs what is missing, starts one etcd (unless one already
# answers on 127.0.0.1:2379) and three nodes (node-a/b/c on 127.0.0.1:7001-7003),
# waits until all three are registered, then dispatches examples/hello.yaml and
# waits for it. Re-running it while the cluster is up just dispatches again.
# Usage: bash scripts/demo.sh [spec.yaml]   (default examples/hello.yaml)
# Stop everything with: bash scripts/down.sh
set -euo pipefail
BOI_SCRIPT=demo
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
boi_trap_errors
cd "$BOI_ROOT"

bash scripts/setup.sh --run
boi_path

# Ports can be moved (e.g. to run a second demo beside a first one).
ETCD_PORT="${BOI_DEMO_ETCD_PORT:-2379}"
PEER_PORT="${BOI_DEMO_PEER_PORT:-2380}"
HTTP_PORT="${BOI_DEMO_HTTP_PORT:-7001}" # node-a; node-b and node-c take the next two
READY_TIMEOUT_S="${BOI_DEMO_READY_TIMEOUT_S:-60}"
ENDPOINT="http://127.0.0.1:$ETCD_PORT"
NODES=(node-a node-b node-c)
SPEC="${1:-examples/hello.yaml}"
export NO_COLOR=1
# Our settings must not be overridden by a BOI_* left in the caller's shell.
for v in $(compgen -e | grep '^BOI_' || true); do unset "$v"; done

mkdir -p .boi/pids

# A failure or Ctrl-C after something was started leaves it running (its logs
# are what you look at next): say how to stop it.
started=""
out=""
on_exit() {
  local rc=$?
  [ -z "$out" ] || rm -f "$out"
  if [ "$rc" -ne 0 ] && [ -n "$started" ]; then
    log "what this started is still running ($started): bash scripts/down.sh stops it"
  fi
}
trap on_exit EXIT

# True if the pid in file $1 is alive and its command line contains $2
# (a pid file can outlive its process, and pids get reused).
pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

etcd_answers() {
  etcdctl --endpoints="$ENDPOINT" --dial-timeout=1s --command-timeout=2s \
    endpoint health >/dev/null 2>&1
}

cli() { deno run -q -P=cli cli.ts "$@" --etcd "$ENDPOINT"; }

# --- etcd: the same layout a node uses when it starts a local etcd itself ----
if etcd_answers; then
  log "etcd already answers on $ENDPOINT: using it"
else
  mkdir -p .boi/etcd
  log "starting etcd on $ENDPOINT (data: .boi/etcd/data, log: .boi/etcd/etcd.log)"
  setsid etcd --name=boi-local --data-dir=.boi/etcd/data \
    --listen-client-urls="$ENDPOINT" --advertise-client-urls="$ENDPOINT" \
    --listen-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-cluster="boi-local=http://127.0.0.1:$PEER_PORT" \
    </dev/null >>.boi/etcd/etcd.log 2>&1 &
  echo $! >.boi/pids/etcd.pid
  started="etcd"
  deadline=$((SECONDS + 20))
  until etcd_answers; do
    if ! pid_alive .boi/pids/etcd.pid etcd; then
      tail -n 20 .boi/etcd/etcd.log >&2 || true
      die "etcd exited; see .boi/etcd/etcd.log"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "etcd did not answer within 20 s; see .boi/etcd/etcd.log"
    sleep 0.2
  done
fi

# --- nodes -------------------------------------------------------------------
# Every node may forward tail requests to the others (the permission lock
# allows only the addresses in BOI_PEERS; docs/operations.md "Permissions").
peers=""
for i in "${!NODES[@]}"; do peers="$peers${peers:+,}127.0.0.1:$((HTTP_PORT + i))"; done
port=$HTTP_PORT
for n in "${NODES[@]}"; do
  if pid_alive ".boi/pids/$n.pid" node/launch.ts; then
    log "$n already running (pid $(cat ".boi/pids/$n.pid"))"
  else
    log "starting $n on 127.0.0.1:$port (log: .boi/$n.log, data: .boi/$n)"
    BOI_NODE_ID="$n" BOI_ETCD_ENDPOINTS="$ENDPOINT" BOI_HTTP_ADDR="127.0.0.1:$port" \
      BOI_DATA_DIR=".boi/$n" BOI_PEERS="$peers" \
      setsid deno run -q -P=node-launcher node/launch.ts </dev/null >>".boi/$n.log" 2>&1 &
    echo $! >".boi/pids/$n.pid"
    started="${started:+$started, }$n"
  fi
  port=$((port + 1))
done

# Ready means registered in etcd, as `boi nodes` shows it; not a log line.
log "waiting for ${NODES[*]} to register (up to ${READY_TIMEOUT_S} s)"
deadline=$((SECONDS + READY_TIMEOUT_S))
seen=""
while :; do
  for n in "${NODES[@]}"; do
    if ! pid_alive ".boi/pids/$n.pid" node/launch.ts; then
      tail -n 20 ".boi/$n.log" >&2 || true
      die "$n exited; see .boi/$n.log"
    fi
  done
  seen="$(cli nodes --json 2>/dev/null |
    deno run -q scripts/demo_json.ts registered "${NODES[@]}" 2>/dev/null || true)"
  [ "$seen" = "${NODES[*]}" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "only [${seen}] of [${NODES[*]}] registered within ${READY_TIMEOUT_S} s; see .boi/<node>.log"
  fi
  sleep 0.5
done
log "cluster up:"
cli nodes

# --- dispatch ----------------------------------------------------------------
log "dispatching $SPEC and waiting for it"
out="$(mktemp)"
trap - ERR # the dispatch's own exit code is reported below
set +e
cli dispatch "$SPEC" --wait --timeout 120s | tee "$out"
rc=${PIPESTATUS[0]}
set -e
started="" # up and working: down.sh is in the summary below

spec_id="$(head -n1 "$out")"
echo
if [[ "$spec_id" =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]]; then
  echo "Task logs (on the node that ran each task):"
  cli tasks list --spec "$spec_id" --json 2>/dev/null |
    deno run -q scripts/demo_json.ts logs ||
    echo "  .boi/<node>/logs/$spec_id/<task_id>.log"
else
  echo "Task logs: .boi/<node>/logs/<spec_id>/<task_id>.log"
fi
cat <<TXT

Node logs:  .boi/node-a.log  .boi/node-b.log  .boi/node-c.log  (etcd: .boi/etcd/etcd.log)
Dashboard:  http://127.0.0.1:$HTTP_PORT/  (any node's address works)
More:       deno task cli status --etcd $ENDPOINT
            deno task cli tail <task_id> --follow --etcd $ENDPOINT
            deno task cli dispatch $SPEC --wait --etcd $ENDPOINT
Stop:       bash scripts/down.sh
TXT
exit "$rc"
