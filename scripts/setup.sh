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

# --- etcd -------------------------------------------------------------------
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "etcd is missing and there is no apt-get: install etcd 3.4+ (etcd and etcdctl) yourself"
  log "installing etcd-server and etcd-client with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends etcd-server etcd-client >&2
  # The package's service cannot start without systemd, and we do not want it:
  # tests and the demo start their own etcd.
fi
command -v etcd >/dev/null 2>&1 || die "etcd is still missing after apt-get install"

# --- perl ----------------------------------------------------------------------
# The reference pool starts tasks through a perl spawner (node/exec/spawner.pl,
# no modules). perl-base is Essential in Debian, so this only checks.
if ! command -v perl >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "perl is missing and there is no apt-get: install perl (the reference pool's spawner needs it)"
  log "installing perl-base with apt-get (the reference pool's spawner)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q >&2
  as_root apt-get install -y -q --no-install-recommends perl-base >&2
fi
command -v perl >/dev/null 2>&1 || die "perl is still missing after apt-get install perl-base"

if [ -n "$FOR_TESTS" ]; then
  # --- protoc ----------------------------------------------------------------------
  # The plugin messages' TypeScript is generated from proto/boi/**.proto
  # (scripts/gen_proto.sh); proto/gen_test.ts regenerates it to check that the
  # checked-in copy is current, and is only skipped (loudly) without protoc.
  if ! command -v protoc >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "protoc is missing and there is no apt-get: install protoc 3.21 (protobuf-compiler) yourself"
    log "installing protobuf-compiler with apt-get (generates proto/gen/)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q >&2
    as_root apt-get install -y -q --no-install-recommends protobuf-compiler >&2
  fi
  command -v protoc >/dev/null 2>&1 || die "protoc is still missing after apt-get install protobuf-compiler"

  # --- strace ------------------------------------------------------------------
  # node/shell/pending_flush_test.ts checks the syscalls that make a parked
  # result durable (an fsync of the directory after a create or rename).
  if ! command -v strace >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "strace is missing and there is no apt-get: install strace (a durability test needs it)"
    log "installing strace with apt-get (the pending-flush durability test)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q >&2
    as_root apt-get install -y -q --no-install-recommends strace >&2
  fi
  command -v strace >/dev/null 2>&1 || die "strace is still missing after apt-get install strace"

  # --- Chromium ----------------------------------------------------------------
  # The dashboard's end-to-end test drives Debian's headless Chromium through
  # playwright-core (an npm package without a browser of its own).
  CHROMIUM=/usr/bin/chromium
  if [ ! -x "$CHROMIUM" ]; then
    command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM is missing and there is no apt-get: install Debian's chromium (the dashboard test needs it)"
    log "installing chromium and fonts with apt-get (headless browser for the dashboard test)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q >&2
    as_root apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core fonts-liberation >&2
  fi
  [ -x "$CHROMIUM" ] || die "$CHROMIUM is still missing after apt-get install chromium"
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
