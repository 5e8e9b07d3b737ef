#!/usr/bin/env bash
# Stops the Compose topology and undoes what it changed on the host:
# podman-compose down, the project's networks (podman-compose 1.0.3 leaves
# them), the health loop, and — once no container runs on this host any more —
# netavark's iptables chains and the ip_forward setting it turned on.
# --volumes also removes the named volumes (etcd data, node data, hook events).
set -uo pipefail
BOI_SCRIPT=compose-down
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/compose_lib.sh
. "$BOI_ROOT/scripts/compose_lib.sh"
cd "$BOI_ROOT"
command -v podman >/dev/null 2>&1 || exit 0

down_args=()
if [ "${1:-}" = --volumes ]; then down_args+=(--volumes); fi
if [ -n "$(project_containers)" ]; then
  log "podman-compose down ${down_args[*]}"
  pc down -t 5 "${down_args[@]}" >"$COMPOSE_WORK/down.log" 2>&1 ||
    log "podman-compose down failed (see $COMPOSE_WORK/down.log); removing containers directly"
  for c in $(project_containers); do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
fi
if [ "${1:-}" = --volumes ]; then
  for v in $(podman volume ls -q --filter "label=io.podman.compose.project=$COMPOSE_PROJECT"); do
    podman volume rm -f "$v" >/dev/null 2>&1 || true
  done
fi
for n in "${COMPOSE_NETWORKS[@]}"; do
  if podman network exists "$n" 2>/dev/null; then podman network rm -f "$n" >/dev/null || true; fi
done
if [ -f "$HEALTH_PID" ]; then
  kill "$(cat "$HEALTH_PID")" 2>/dev/null || true
  rm -f "$HEALTH_PID"
fi

# Host networking state: only when nothing else on this host uses podman's
# networks, or we would cut other containers off.
if [ -z "$(podman ps -q)" ]; then
  for table in filter nat; do
    chains="$(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(NETAVARK[^ ]*\)$/\1/p')"
    [ -n "$chains" ] || continue
    # Jumps into netavark chains from the built-in ones first, then the chains.
    iptables -t "$table" -S | grep -E '^-A [A-Z]+ .*-j NETAVARK' | grep -vE '^-A NETAVARK' |
      while read -r rule; do
        # The rule as printed (quoted comment included), with -A turned into -D.
        eval "as_root iptables -t $table -D ${rule#-A }" 2>/dev/null || true
      done
    for c in $chains; do as_root iptables -t "$table" -F "$c" 2>/dev/null || true; done
    for c in $chains; do as_root iptables -t "$table" -X "$c" 2>/dev/null || true; done
  done
  if [ -f "$IP_FORWARD_SAVED" ]; then
    as_root sysctl -q -w "net.ipv4.ip_forward=$(cat "$IP_FORWARD_SAVED")" >/dev/null || true
    rm -f "$IP_FORWARD_SAVED"
  fi
fi
log "down (project $COMPOSE_PROJECT)"
