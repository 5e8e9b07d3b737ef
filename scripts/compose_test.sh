#!/usr/bin/env bash
# The Compose test as its own stage (scripts/test.sh runs it after `deno task
# test`): tests/compose/ against real containers, in its own time budget, so
# a cold image build never eats the suite's 10 minutes. Keeps the output in
# tests/artifacts/compose_test.log and ends with "N passed, M failed"; a skip
# (containers cannot run here) counts as neither and is said out loud.
set -uo pipefail
BOI_SCRIPT=compose-test
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BOI_ROOT"
boi_path

mkdir -p tests/artifacts
LOG=tests/artifacts/compose_test.log
LIMIT="${BOI_COMPOSE_TEST_TIMEOUT_S:-600}"
log "deno test tests/compose/ (limit ${LIMIT}s, log: $LOG)"
start=$SECONDS
NO_COLOR=1 timeout -k 15 "$LIMIT" deno test -P=test tests/compose/ 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
# A run killed by the timeout cannot clean up after itself.
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  log "the Compose test did not finish within ${LIMIT}s; cleaning up"
  BOI_COMPOSE_PROJECT=boitest bash scripts/compose_down.sh --volumes || true
fi

summary="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$LOG" | tail -n1)"
passed=0
failed=0
if [ -n "$summary" ]; then
  passed="$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")"
  failed="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")"
  if grep -qE '\| [1-9][0-9]* ignored' <<<"$summary"; then
    log "!!! the Compose test was SKIPPED: $(grep -m1 'SKIPPED the Compose test' "$LOG" | sed 's/^!!! //')"
  fi
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
log "took $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
