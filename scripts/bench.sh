#!/usr/bin/env bash
# `deno task bench [--quick] [--readme]`: installs what is missing (boi's own
# needs via setup.sh, Redis and BullMQ for the peer via setup_peer.sh), then
# runs the benchmark (bench/main.ts; --readme writes its table into
# docs/operations.md). --quick is the < 2 min smoke run CI uses.
set -euo pipefail
BOI_SCRIPT=bench
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BOI_ROOT"
bash scripts/setup.sh
bash scripts/setup_peer.sh
boi_path
exec deno run -q -P=bench bench/main.ts "$@"
