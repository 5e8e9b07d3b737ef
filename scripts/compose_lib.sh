# Shared by scripts/compose_*.sh (sourced after lib.sh): the podman-compose
# project, its config, and the host state it changes.

COMPOSE_PROJECT="${BOI_COMPOSE_PROJECT:-boi}"
COMPOSE_FILE="$BOI_ROOT/compose/compose.yaml"
COMPOSE_WORK="$BOI_ROOT/.boi/compose"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$COMPOSE_WORK/containers.conf}"
# Networks podman-compose creates (and 1.0.3's `down` leaves behind).
COMPOSE_NETWORKS=("${COMPOSE_PROJECT}_default" "${COMPOSE_PROJECT}_isolated")
HEALTH_PID="$COMPOSE_WORK/health-$COMPOSE_PROJECT.pid"
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

# Records ip_forward before podman first touches the host's networking
# (netavark turns it on for any container with a network, builds included).
save_host_net() {
  [ -f "$IP_FORWARD_SAVED" ] || cat /proc/sys/net/ipv4/ip_forward >"$IP_FORWARD_SAVED"
}

# Gives the host back its networking state: netavark's iptables chains and
# the saved ip_forward. Only when no container runs on this host any more,
# or we would cut other containers off.
restore_host_net() {
  [ -z "$(podman ps -q)" ] || return 0
  local table chains c
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
}
