import assert from "node:assert/strict";
import { envelope } from "./test_util.ts";
import {
  changeLine,
  countStates,
  formatDuration,
  nodeOf,
  oneLine,
  summarizeCounts,
  table,
  taskTable,
} from "./format.ts";

Deno.test("table aligns columns without trailing blanks", () => {
  assert.deepEqual(table(["A", "BB", "C"], [["xxx", "y", ""], ["", "", "z"]]), [
    "A    BB  C",
    "xxx  y",
    "         z",
  ]);
  assert.deepEqual(table(["N", "X"], [["é", "1"]]), ["N  X", "é  1"]);
});

Deno.test("formatDuration", () => {
  assert.equal(formatDuration(-5), "0ms");
  assert.equal(formatDuration(850), "850ms");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(42_300), "42s");
  assert.equal(formatDuration(245_000), "4m05s");
  assert.equal(formatDuration(7_380_000), "2h03m");
  assert.equal(formatDuration(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
});

Deno.test("countStates lists every state; summarizeCounts only non-zero", () => {
  const counts = countStates([
    envelope({ state: "DONE" }),
    envelope({ state: "DONE" }),
    envelope({ state: "FAILED" }),
  ]);
  assert.deepEqual(counts, {
    BLOCKED: 0,
    PENDING: 0,
    CLAIMED: 0,
    RUNNING: 0,
    DONE: 2,
    FAILED: 1,
    CANCELLED: 0,
  });
  assert.equal(summarizeCounts(counts), "2 DONE, 1 FAILED");
  assert.equal(summarizeCounts(countStates([])), "no tasks");
});

Deno.test("changeLine says state, node, attempt, exit and error", () => {
  assert.equal(
    changeLine(
      envelope({ state: "RUNNING", claimant_node_id: "node-a", attempts: 1 }),
    ),
    "s-aaaaaa.t RUNNING on node-a",
  );
  assert.equal(
    changeLine(
      envelope({ state: "CLAIMED", claimant_node_id: "node-b", attempts: 2 }),
    ),
    "s-aaaaaa.t CLAIMED on node-b (attempt 2/3)",
  );
  assert.equal(
    changeLine(
      envelope({
        state: "FAILED",
        ran_on: "node-a",
        exit_code: 2,
        last_error: "exit 2\nboom",
      }),
    ),
    "s-aaaaaa.t FAILED on node-a exit 2: exit 2 boom",
  );
  assert.equal(
    changeLine(
      envelope({ state: "PENDING", last_error: "lease expired on node-a" }),
    ),
    "s-aaaaaa.t PENDING: lease expired on node-a",
  );
  assert.equal(nodeOf(envelope({ ran_on: "n1" })), "n1");
});

Deno.test("oneLine flattens and cuts", () => {
  assert.equal(oneLine(" a\n\tb "), "a b");
  assert.equal(oneLine("x".repeat(10), 5), "xxxx…");
});

Deno.test("taskTable marks a requested cancel", () => {
  const [head, row] = taskTable([
    envelope({
      state: "RUNNING",
      cancel_requested: true,
      claimant_node_id: "n",
    }),
  ]);
  assert.match(head, /^TASK\s+STATE\s+ATTEMPTS\s+NODE\s+EXIT\s+LAST_ERROR$/);
  assert.match(row, /^s-aaaaaa\.t\s+RUNNING\*\s+0\/3\s+n\s+-\s+-$/);
});
