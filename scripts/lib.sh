# Shared helpers for scripts/*.sh (sourced, not run).

# Repo root, whatever the caller's working directory.
BOI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '%s: %s\n' "${BOI_SCRIPT:-boi}" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Under `set -e` a failing command ends the script with only its own output
# (apt's or npm's): name it on one line in our form. A script calls this after
# sourcing; sections that expect failures turn it off with `trap - ERR`.
boi_trap_errors() {
  trap 'boi_rc=$?; log "error: \`$BASH_COMMAND\` failed (exit $boi_rc)"' ERR
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root for: $* (not root, and sudo is not installed)"
  fi
}

# `npm install -g` puts binaries in $(npm prefix -g)/bin, which may not be on PATH.
boi_path() {
  if ! command -v deno >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    local bin
    bin="$(npm prefix -g 2>/dev/null)/bin"
    if [ -x "$bin/deno" ]; then PATH="$bin:$PATH"; fi
  fi
  export PATH
}
