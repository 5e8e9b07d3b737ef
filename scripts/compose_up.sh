#!/usr/bin/env bash
# Starts the Compose topology (compose/compose.yaml) with rootful podman:
# installs what is missing, builds the image (no registry), `podman-compose
# up -d`, then runs the health checks in a background loop (there is no
# systemd to run them) and waits until every container is healthy.
# Stop with: bash scripts/compose_down.sh [--volumes]
set -euo pipefail
BOI_SCRIPT=compose-up
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/compose_lib.sh
. "$BOI_ROOT/scripts/compose_lib.sh"
cd "$BOI_ROOT"
READY_TIMEOUT_S="${BOI_COMPOSE_READY_TIMEOUT_S:-120}"

boi_path
# The host needs Deno (its version goes into the image; the CLI talks to the
# cluster); scripts/setup.sh installs it when it is missing.
command -v deno >/dev/null 2>&1 || bash scripts/setup.sh >/dev/null
bash scripts/compose_setup.sh >/dev/null
save_host_net # before the build: its RUN steps already use netavark
bash scripts/compose_image.sh
log "podman-compose up -d (project $COMPOSE_PROJECT)"
up_start=$SECONDS
pc up -d >"$COMPOSE_WORK/up-$COMPOSE_PROJECT.log" 2>&1 || {
  tail -n 30 "$COMPOSE_WORK/up-$COMPOSE_PROJECT.log" >&2
  die "podman-compose up failed; see $COMPOSE_WORK/up-$COMPOSE_PROJECT.log"
}

# The health loop: one round every 10 s while the project has containers.
if ! { [ -f "$HEALTH_PID" ] && kill -0 "$(cat "$HEALTH_PID")" 2>/dev/null; }; then
  setsid bash -c '
    . "$1/scripts/lib.sh"; . "$1/scripts/compose_lib.sh"
    while [ -n "$(project_containers)" ]; do health_round >"$COMPOSE_WORK/health-$COMPOSE_PROJECT.txt"; sleep 10; done
  ' compose-health "$BOI_ROOT" </dev/null >/dev/null 2>&1 &
  echo $! >"$HEALTH_PID"
fi

log "waiting for every container to be healthy (up to ${READY_TIMEOUT_S} s)"
deadline=$((SECONDS + READY_TIMEOUT_S))
while :; do
  status="$(health_round)"
  if ! grep -qv ' healthy$' <<<"$status"; then break; fi
  dead="$(grep -vE ' (healthy|unhealthy|starting)$' <<<"$status" || true)"
  if [ -n "$dead" ] || [ "$SECONDS" -ge "$deadline" ]; then
    printf '%s\n' "$status" >&2
    for c in $(grep -v ' healthy$' <<<"$status" | cut -d' ' -f1); do
      log "last log lines of $c:"
      podman logs --tail 15 "$c" >&2 2>&1 || true
    done
    [ -z "$dead" ] || die "a container stopped: $(tr '\n' ' ' <<<"$dead")"
    die "not every container became healthy within ${READY_TIMEOUT_S} s"
  fi
  sleep 1
done
printf '%s\n' "$status" | sed 's/^/  /' >&2
log "all healthy $((SECONDS - up_start)) s after podman-compose up"
cat <<TXT
boi under Compose is up (project $COMPOSE_PROJECT).
  etcd:       127.0.0.1:${BOI_COMPOSE_ETCD_PORT:-23791},127.0.0.1:${BOI_COMPOSE_ETCD_PORT2:-23792},127.0.0.1:${BOI_COMPOSE_ETCD_PORT3:-23793}
  dashboard:  http://127.0.0.1:${BOI_COMPOSE_HTTP_PORT:-17001}/ (node-a; node-b, node-c on the next ports)
  try:        deno task cli nodes --etcd 127.0.0.1:${BOI_COMPOSE_ETCD_PORT:-23791},127.0.0.1:${BOI_COMPOSE_ETCD_PORT2:-23792},127.0.0.1:${BOI_COMPOSE_ETCD_PORT3:-23793}
  stop:       bash scripts/compose_down.sh [--volumes]
TXT
