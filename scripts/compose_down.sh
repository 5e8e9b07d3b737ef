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
  pc down -t 5 "${down_args[@]}" >"$COMPOSE_WORK/down-$COMPOSE_PROJECT.log" 2>&1 ||
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

restore_host_net
log "down (project $COMPOSE_PROJECT)"
