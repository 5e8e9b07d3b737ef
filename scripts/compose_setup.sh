#!/usr/bin/env bash
# Installs what the Compose topology needs on a Debian machine (rootful
# podman, podman-compose, runc, mmdebstrap, netavark and aardvark-dns for the
# compose network and its service-name DNS) and writes the repo-local
# containers.conf that every compose script passes through CONTAINERS_CONF.
# Idempotent: a second run only checks. Prints the path of containers.conf.
#
# Why each setting (verified on our machines, /work/shared/NOTES.md):
# - runtime "runc": crun fails here with "cgroups in hybrid mode not supported".
# - default_ulimits: podman's defaults ask for more than the host's hard limit
#   ("setrlimit RLIMIT_NOFILE: Operation not permitted"), so ask for exactly
#   the host's hard nofile limit, and a fixed nproc.
set -euo pipefail
BOI_SCRIPT=compose-setup
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BOI_ROOT"

PKGS=(podman podman-compose runc mmdebstrap netavark aardvark-dns iptables)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and there is no apt-get (Debian bookworm packages expected)"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
for c in podman podman-compose runc mmdebstrap; do
  command -v "$c" >/dev/null 2>&1 || die "$c is still missing after apt-get install"
done

CONF_DIR="$BOI_ROOT/.boi/compose"
CONF="$CONF_DIR/containers.conf"
mkdir -p "$CONF_DIR"
nofile="$(ulimit -Hn)"
[ "$nofile" = unlimited ] && nofile=1048576
cat >"$CONF.tmp" <<CONF
# Written by scripts/compose_setup.sh; used through CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
mv "$CONF.tmp" "$CONF"
log "ok: $(podman --version), podman-compose $(podman-compose version 2>/dev/null | sed -n 's/^podman-composer* version *//p' | head -n1), $(runc --version | head -n1), config $CONF"
echo "$CONF"
