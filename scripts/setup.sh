#!/usr/bin/env bash
# Installs what boi needs on a Debian machine that has Node.js and npm: Deno
# (from npm), etcd, etcdctl and perl (from Debian), the project's npm
# dependencies (so tests and nodes never download mid-run) and, for the test
# suite, protoc, strace and Chromium. Idempotent: a second run only checks.
# Usage: bash scripts/setup.sh [--run]   (--run: what a cluster needs, not
# the test-only protoc, strace and Chromium; scripts/demo.sh uses it)
set -euo pipefail
BOI_SCRIPT=setup
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
boi_trap_errors
cd "$BOI_ROOT"
boi_path
FOR_TESTS=1
case "${1:-}" in
  "") ;;
  --run) FOR_TESTS="" ;;
  *) die "unknown argument $1: expected --run or nothing" ;;
esac

# --- Deno -------------------------------------------------------------------
DENO_SPEC="deno@^2.9.6" # permission sets (-P=node) need Deno 2.9
if ! command -v deno >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || die "deno is missing and so is npm to install it"
  log "installing Deno with npm ($DENO_SPEC)"
  if ! npm install -g --no-fund --no-audit "$DENO_SPEC" >&2; then
    log "npm install -g failed as $(id -un); retrying as root"
    as_root npm install -g --no-fund --no-audit "$DENO_SPEC" >&2
  fi
  boi_path
  command -v deno >/dev/null 2>&1 || die "deno installed but not on PATH ($(npm prefix -g)/bin)"
fi
deno_version="$(deno --version | sed -n 's/^deno \([0-9.]*\).*/\1/p')"
case "$deno_version" in
  2.9.* | 2.[1-9][0-9].* | [3-9].*) ;;
  *) die "Deno $deno_version found at $(command -v deno); boi needs >= 2.9 (npm install -g $DENO_SPEC)" ;;
esac

# Installs Debian packages with apt-get unless every command named is found.
# Usage: apt_need "<cmd> [<cmd>...]" "<why>" <package>...
apt_need() {
  local cmds=$1 why=$2 c missing=""
  shift 2
  for c in $cmds; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
  [ -n "$missing" ] || return 0
  command -v apt-get >/dev/null 2>&1 || die "${missing# } missing and there is no apt-get: install $* yourself ($why)"
  log "installing $* with apt-get ($why)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends "$@" >&2
  for c in $cmds; do
    command -v "$c" >/dev/null 2>&1 || die "$c is still missing after apt-get install $*"
  done
}

# etcd 3.4+. The package's service cannot start without systemd, and we do
# not want it: tests and the demo start their own etcd.
apt_need "etcd etcdctl" "the cluster's store" etcd-server etcd-client

# The reference pool starts tasks through a perl spawner (node/exec/spawner.pl,
# no modules). perl-base is Essential in Debian, so this only checks.
apt_need perl "the reference pool's spawner" perl-base

if [ -n "$FOR_TESTS" ]; then
  # The plugin messages' TypeScript is generated from proto/boi/**.proto
  # (scripts/gen_proto.sh); proto/gen_test.ts regenerates it to check that the
  # checked-in copy is current, and is only skipped (loudly) without protoc.
  apt_need protoc "generates proto/gen/" protobuf-compiler
  # node/shell/pending_flush_test.ts checks the syscalls that make a parked
  # result durable (an fsync of the directory after a create or rename).
  apt_need strace "the pending-flush durability test" strace
  # The dashboard's end-to-end test drives Debian's headless Chromium through
  # playwright-core (an npm package without a browser of its own).
  CHROMIUM=/usr/bin/chromium
  apt_need "$CHROMIUM" "headless browser for the dashboard test" \
    chromium fonts-dejavu-core fonts-liberation
fi

# --- project dependencies ---------------------------------------------------
log "caching dependencies (deno install)"
deno install -q >&2
# Also every entry point and test module: a bare `deno install` can leave
# package metadata that `deno test` would otherwise fetch mid-run.
entries=()
for f in node/main.ts cli.ts; do
  if [ -f "$f" ]; then entries+=("$f"); fi
done
while IFS= read -r f; do entries+=("$f"); done < <(
  find . \( -path ./.boi -o -path ./node_modules -o -path ./tests/artifacts -o -path ./.git \) -prune \
    -o -type f \( -name '*_test.ts' -o -path './plugins/*.ts' \) -print | sort
)
if [ "${#entries[@]}" -gt 0 ]; then
  deno install -q --entrypoint "${entries[@]}" >&2
fi

log "ok: deno $deno_version ($(command -v deno)), $(etcd --version | head -n1) ($(command -v etcd))${FOR_TESTS:+, $("$CHROMIUM" --version 2>/dev/null | head -n1)}"
