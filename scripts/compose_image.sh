#!/usr/bin/env bash
# Builds the boi image (localhost/boi:dev) from compose/Containerfile without
# any container registry:
# 1. the base image localhost/debian-min:bookworm, once: mmdebstrap
#    --variant=minbase with this host's own apt sources file as the mirror
#    (so no mirror host name lives in the project), then `podman import`;
# 2. the Deno binary of the version in use here, from the npm package
#    @deno/linux-x64-glibc (`npm pack`), staged under .boi/compose/;
# 3. `podman build` (etcd from apt inside it, the Deno cache pre-filled).
# Needs scripts/compose_setup.sh first (it prints the CONTAINERS_CONF path).
# Usage: bash scripts/compose_image.sh [--base]   (BOI_IMAGE overrides the tag;
# --base stops after step 1)
set -euo pipefail
BOI_SCRIPT=compose-image
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/compose_lib.sh
. "$BOI_ROOT/scripts/compose_lib.sh"
cd "$BOI_ROOT"
boi_path

[ -f "$CONTAINERS_CONF" ] || die "no $CONTAINERS_CONF: run bash scripts/compose_setup.sh first"
BASE=localhost/debian-min:bookworm
IMAGE="${BOI_IMAGE:-localhost/boi:dev}"
WORK="$COMPOSE_WORK"
mkdir -p "$WORK"

# --- 1. base image from Debian packages --------------------------------------
if podman image exists "$BASE"; then
  log "base image $BASE exists"
else
  # The host's own sources: deb822 (bookworm's default) or a one-line list.
  SOURCES="${BOI_APT_SOURCES:-}"
  if [ -z "$SOURCES" ]; then
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
      if [ -s "$f" ]; then SOURCES="$f" && break; fi
    done
  fi
  [ -f "$SOURCES" ] || die "no apt sources file (${SOURCES:-/etc/apt/sources.list.d/debian.sources}): set BOI_APT_SOURCES to this host's .sources or sources.list file"
  rootfs="$WORK/rootfs"
  as_root rm -rf "$rootfs"
  log "building $BASE with mmdebstrap (minbase, sources: $SOURCES)"
  as_root mmdebstrap --quiet --variant=minbase bookworm "$rootfs" "$SOURCES" >&2
  as_root tar -C "$rootfs" -c . | podman import --quiet - "$BASE" >/dev/null
  as_root rm -rf "$rootfs"
  log "base image built in $SECONDS s"
fi

if [ "${1:-}" = --base ]; then exit 0; fi

# --- 2. Deno from npm -----------------------------------------------------------
ver="$(deno --version | sed -n 's/^deno \([0-9.]*\).*/\1/p')"
[ -n "$ver" ] || die "cannot tell the Deno version (deno --version)"
stage="$WORK/deno-$ver"
if [ ! -x "$stage/deno" ]; then
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch @deno/linux-x64-glibc@$ver"
  log "fetching Deno $ver from npm (@deno/linux-x64-glibc@$ver)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "@deno/linux-x64-glibc@$ver" >/dev/null && tar -xzf ./*.tgz package/deno)
  mkdir -p "$stage"
  mv "$tmp/package/deno" "$stage/deno"
  chmod 755 "$stage/deno"
  rm -rf "$tmp"
fi

# --- 3. the image ------------------------------------------------------------------
# The build fetches npm packages; it trusts what this host trusts (a host
# behind a TLS-inspecting proxy has that proxy's CA in its bundle).
ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
[ -f "$ca" ] || die "no CA bundle at $ca (install ca-certificates or set SSL_CERT_FILE)"
# A build on its own (not under compose_up.sh) gives the host's networking
# back when it is done.
own_net=0
if [ ! -f "$IP_FORWARD_SAVED" ]; then
  save_host_net
  own_net=1
fi
log "podman build $IMAGE (Deno $ver)"
build_start=$SECONDS
podman build --quiet --tag "$IMAGE" --file compose/Containerfile \
  --ignorefile compose/containerignore --build-context "deno=$stage" \
  --secret "id=ca,src=$ca" . >/dev/null
if [ "$own_net" = 1 ]; then restore_host_net; fi
log "ok: $IMAGE in $((SECONDS - build_start)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
