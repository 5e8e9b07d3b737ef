#!/usr/bin/env bash
# Installs what the benchmark's BullMQ peer needs on a Debian machine that has
# Node.js and npm: redis-server (from Debian) and bench/peer's npm dependencies
# (bullmq, pinned in bench/peer/package-lock.json). Idempotent: a second run
# only checks. The bench starts its own private redis-server on a random
# loopback port, so the package's service is neither needed nor used.
set -euo pipefail
BOI_SCRIPT=setup_peer
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BOI_ROOT"

PEER_DIR=bench/peer

# --- redis-server ------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "redis-server is missing and there is no apt-get: install redis-server 6.2+ yourself"
  log "installing redis-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends redis-server >&2
  # Without systemd the package's service does not start; where it does, it
  # listens on 6379, which the bench never uses (it starts its own).
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server is still missing after apt-get install redis-server"

# --- the peer's npm dependencies --------------------------------------------
command -v node >/dev/null 2>&1 || die "node is missing: the BullMQ peer runs on Node.js"
command -v npm >/dev/null 2>&1 || die "npm is missing: it installs the BullMQ peer's dependencies"
[ -f "$PEER_DIR/package.json" ] || die "$PEER_DIR/package.json is missing"

# npm records what it installed in node_modules/.package-lock.json; the install
# is stale when package.json or the lockfile changed after it.
stamp="$PEER_DIR/node_modules/.package-lock.json"
stale=""
if [ ! -f "$stamp" ]; then
  stale="$PEER_DIR/node_modules is missing"
elif [ "$PEER_DIR/package.json" -nt "$stamp" ]; then
  stale="$PEER_DIR/package.json is newer than node_modules"
elif [ -f "$PEER_DIR/package-lock.json" ] && [ "$PEER_DIR/package-lock.json" -nt "$stamp" ]; then
  stale="$PEER_DIR/package-lock.json is newer than node_modules"
fi
if [ -n "$stale" ]; then
  if [ -f "$PEER_DIR/package-lock.json" ]; then
    log "installing the peer's npm dependencies with npm ci ($stale)"
    (cd "$PEER_DIR" && npm ci --no-fund --no-audit >&2)
  else
    log "installing the peer's npm dependencies with npm install ($stale; no lockfile yet)"
    (cd "$PEER_DIR" && npm install --no-fund --no-audit >&2)
  fi
fi

bullmq_version="$(cd "$PEER_DIR" && node -p 'require("bullmq/package.json").version')" ||
  die "bullmq does not load from $PEER_DIR/node_modules after npm install"
log "ok: $(redis-server --version | head -n1) ($(command -v redis-server)), bullmq $bullmq_version, node $(node --version)"
