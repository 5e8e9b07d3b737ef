# Shared by scripts/compose_*.sh (sourced after lib.sh): the podman-compose
# project, its config, and the host state it changes.

COMPOSE_PROJECT="${BOI_COMPOSE_PROJECT:-boi}"
COMPOSE_FILE="$BOI_ROOT/compose/compose.yaml"
COMPOSE_WORK="$BOI_ROOT/.boi/compose"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$COMPOSE_WORK/containers.conf}"
# Networks podman-compose creates (and 1.0.3's `down` leaves behind).
COMPOSE_NETWORKS=("${COMPOSE_PROJECT}_default" "${COMPOSE_PROJECT}_isolated")
HEALTH_PID="$COMPOSE_WORK/health.pid"
# ip_forward as it was before our first `up` (netavark turns it on).
IP_FORWARD_SAVED="$COMPOSE_WORK/ip_forward.before"

pc() { podman-compose --project-name "$COMPOSE_PROJECT" --file "$COMPOSE_FILE" "$@"; }

# Containers of the project, one name a line.
project_containers() {
  podman ps -a --filter "label=io.podman.compose.project=$COMPOSE_PROJECT" --format '{{.Names}}'
}

# Runs every running container's health check once; prints "name status"
# lines: healthy, unhealthy, starting, or the state of a container that is not
# running (exited, created, ...).
health_round() {
  local c state
  for c in $(project_containers); do
    state="$(podman inspect --format '{{.State.Status}}' "$c" 2>/dev/null || echo gone)"
    if [ "$state" = running ]; then
      podman healthcheck run "$c" >/dev/null 2>&1 || true
      state="$(podman inspect --format '{{.State.Health.Status}}' "$c" 2>/dev/null || echo gone)"
    fi
    printf '%s %s\n' "$c" "$state"
  done
}
