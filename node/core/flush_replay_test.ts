import assert from "node:assert/strict";
import type { Envelope, FlushEntry } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { decideReplay } from "./flush_replay.ts";
import type { KeyChange } from "./events.ts";
import { cluster, keys } from "./handlers_test_util.ts";

const entry: FlushEntry = {
  task_id: "s1.t",
  fence: 40,
  attempt: 2,
  code: 0,
  signal: null,
  error: null,
  lost: false,
  started_at: 10,
  finished_at: 20,
  parked_at: 21,
};

function taskAt(env: Envelope): KeyChange {
  return {
    key: keys.task(env.task_id),
    revision: 50,
    kv: {
      value: JSON.stringify(env),
      mod_revision: 50,
      create_revision: 1,
      lease: "0",
    },
  };
}

Deno.test("flush replay: a finish whose answer was lost is recognised as committed", () => {
  const { config } = cluster("node-a", ["node-a"]);
  const done = testEnvelope("s1.t", {
    state: "DONE",
    fence: 40,
    ran_on: "node-a",
    attempts: 2,
  });
  assert.deepEqual(
    decideReplay(config, keys, entry, null, taskAt(done)),
    { kind: "already" },
  );
});

Deno.test("flush replay: a task the monitor put back after our lease expired is superseded, not 'already committed' (same fence, ran_on from an earlier attempt here)", () => {
  const { config } = cluster("node-a", ["node-a"]);
  for (
    const requeued of [
      testEnvelope("s1.t", {
        state: "PENDING",
        fence: 40,
        ran_on: "node-a",
        attempts: 2,
        last_error: "lease expired on node-a",
      }),
      testEnvelope("s1.t", {
        state: "FAILED",
        fence: 40,
        ran_on: "node-a",
        attempts: 3,
        max_attempts: 3,
        last_error: "lease expired on node-a; 3 of 3 attempts used",
      }),
    ]
  ) {
    assert.deepEqual(
      decideReplay(config, keys, entry, null, taskAt(requeued)),
      { kind: "superseded", current_claim_fence: null, state: requeued.state },
    );
  }
});

Deno.test("flush replay: the replayed finish says when the worker finished, not when it was replayed", () => {
  const { config } = cluster("node-a", ["node-a"]);
  const running = testEnvelope("s1.t", {
    state: "RUNNING",
    fence: 40,
    claimant_node_id: "node-a",
    attempts: 2,
  });
  const claim: KeyChange = {
    key: keys.claim("s1.t"),
    revision: 40,
    kv: { value: "{}", mod_revision: 40, create_revision: 40, lease: "7" },
  };
  const step = decideReplay(config, keys, entry, claim, taskAt(running));
  assert.equal(step.kind, "commit");
  if (step.kind !== "commit") return;
  assert.equal(step.next.state, "DONE");
  assert.equal(step.next.finished_at, entry.finished_at);
});

Deno.test("flush replay: a parked result whose task the monitor CANCELLED after our lease expired (our fence and ran_on kept) is superseded, not already committed", () => {
  const { config } = cluster("node-a", ["node-a"]);
  const byMonitor = testEnvelope("s1.t", {
    state: "CANCELLED",
    cancel_requested: true,
    fence: 40,
    ran_on: "node-a",
    attempts: 2,
    claimant_node_id: null,
    claim_lease_id: null,
    last_error: "cancelled by user",
    finished_at: 30,
  });
  const task = {
    key: keys.task("s1.t"),
    revision: 50,
    kv: {
      value: JSON.stringify(byMonitor),
      mod_revision: 50,
      create_revision: 1,
      lease: "0",
    },
  };
  assert.deepEqual(
    decideReplay(config, keys, entry, null, task),
    { kind: "superseded", current_claim_fence: null, state: "CANCELLED" },
  );
});
