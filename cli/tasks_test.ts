import assert from "node:assert/strict";
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { parseDurationOption } from "./context.ts";
import { envelope } from "./test_util.ts";
import { parseStateOption, withRevision } from "./tasks.ts";
import { cancelStep } from "../node/core/cancel.ts";

Deno.test("cancelStep cancels waiting tasks at once", () => {
  for (const state of ["BLOCKED", "PENDING"] as const) {
    const step = cancelStep(envelope({ state, state_version: 4 }), 1234);
    assert.equal(step.kind, "put");
    if (step.kind !== "put") continue;
    assert.equal(step.envelope.state, "CANCELLED");
    assert.equal(step.envelope.state_version, 5);
    assert.equal(step.envelope.finished_at, 1234);
    assert.equal(step.envelope.last_error, "cancelled by user");
  }
});

Deno.test("cancelStep asks the claimant to stop claimed and running tasks", () => {
  for (const state of ["CLAIMED", "RUNNING"] as const) {
    const e = envelope({ state, state_version: 2, claimant_node_id: "n" });
    const step = cancelStep(e, 1);
    assert.equal(step.kind, "put");
    if (step.kind !== "put") continue;
    assert.equal(step.envelope.state, state);
    assert.equal(step.envelope.cancel_requested, true);
    assert.equal(step.envelope.state_version, 3);
    assert.equal(step.envelope.finished_at, null);
    assert.deepEqual(cancelStep(step.envelope, 2), { kind: "wait" });
  }
});

Deno.test("cancelStep stops at terminal states", () => {
  for (const state of ["DONE", "FAILED", "CANCELLED"] as const) {
    assert.deepEqual(cancelStep(envelope({ state }), 1), { kind: "done" });
  }
});

Deno.test("parseStateOption accepts any case, refuses others", () => {
  assert.equal(parseStateOption("done"), "DONE");
  assert.equal(parseStateOption("Running"), "RUNNING");
  assert.throws(() => parseStateOption("finished"), InvalidArgumentError);
});

Deno.test("parseDurationOption wants a positive duration", () => {
  assert.equal(parseDurationOption("10s"), 10_000);
  assert.throws(() => parseDurationOption("0s"), InvalidArgumentError);
  assert.throws(() => parseDurationOption("10"), /like "90s"/);
  // Too large is not "not positive" (review: 99999999999d said so).
  assert.throws(
    () => parseDurationOption("99999999999d"),
    /^InvalidArgumentError: must be at most 24d: got "99999999999d"$/,
  );
  assert.throws(() => parseDurationOption("25d"), /must be at most 24d/);
  assert.equal(parseDurationOption("24d"), 24 * 86_400_000);
});

Deno.test("withRevision adds mod_revision to the envelope", () => {
  const e = envelope();
  const doc = withRevision({
    key: "/boi/dispatch-queue/s-aaaaaa.t",
    value: e,
    mod_revision: 17,
    create_revision: 3,
    lease: "0",
  });
  assert.deepEqual(doc, { ...e, mod_revision: 17 });
});
