import assert from "node:assert/strict";
import type { CapsRecord } from "../node/schema.ts";
import { drainStep, GONE_POLLS, pendingFlushOf } from "./node_cmd.ts";
import type { Versioned } from "./store.ts";

function caps(
  dynamic: Record<string, unknown>,
  mod_revision: number,
): Versioned<CapsRecord> {
  return {
    key: "/boi/caps/n",
    value: {
      static: {},
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok", ...dynamic },
    },
    mod_revision,
    create_revision: 1,
    lease: "1",
  };
}

Deno.test("drainStep: drained only on a caps record written after the request", () => {
  assert.equal(
    drainStep(true, 0, caps({ drain_state: "drained" }, 10), 10, false).kind,
    "wait",
  );
  assert.deepEqual(
    drainStep(true, 0, caps({ drain_state: "drained" }, 9), 10, false),
    { kind: "wait", state: null, busy: 0, pending_flush: 0 },
  );
  assert.equal(
    drainStep(true, 0, caps({ drain_state: "drained" }, 11), 10, false).kind,
    "drained",
  );
  assert.deepEqual(
    drainStep(
      true,
      0,
      caps({ drain_state: "draining", workers_busy: 2 }, 11),
      10,
      false,
    ),
    { kind: "wait", state: "draining", busy: 2, pending_flush: 0 },
  );
});

Deno.test("drainStep: a pending flush holds the drain unless forced", () => {
  const c = caps({ drain_state: "drained", pending_flush: 3 }, 11);
  assert.equal(drainStep(true, 0, c, 10, false).kind, "wait");
  assert.equal(drainStep(true, 0, c, 10, true).kind, "drained");
  assert.equal(pendingFlushOf(c.value), 3);
  assert.equal(pendingFlushOf(caps({ pending_flush: "x" }, 1).value), 0);
  assert.equal(pendingFlushOf(null), 0);
});

Deno.test("drainStep: gone only after the registration is missing several polls in a row", () => {
  for (let i = 1; i < GONE_POLLS; i++) {
    assert.equal(drainStep(false, i, null, 10, false).kind, "wait");
  }
  assert.equal(drainStep(false, GONE_POLLS, null, 10, false).kind, "gone");
});
