import assert from "node:assert/strict";
import { CommitEvents } from "./commit_events.ts";

Deno.test("commit events: a CLAIMED→DONE commit's intent is resolved by task.completed, not by task.started nor by another commit's event of the task", () => {
  const c = new CommitEvents();
  c.expect(7, ["task.started", "task.completed"]);
  assert.equal(c.committed(7, "s.t1"), undefined);
  assert.equal(c.written("s.t1", "task.started"), undefined, "first of two");
  // A monitor's cancel of the same task is not this commit's event.
  assert.equal(c.written("s.t1", "task.cancelled"), undefined);
  assert.equal(c.written("s.t2", "task.completed"), undefined, "another task");
  assert.equal(c.written("s.t1", "task.completed"), 7);
  assert.equal(c.written("s.t1", "task.completed"), undefined, "resolved once");
});

Deno.test("commit events: a second commit of a task hands back the first, with what it had written; a dropped token leaves nothing", () => {
  const c = new CommitEvents();
  c.expect(1, ["task.started", "task.completed"]);
  c.committed(1, "s.t1");
  c.written("s.t1", "task.started");
  c.expect(2, ["task.completed"]);
  const stale = c.committed(2, "s.t1");
  assert.equal(stale?.intent, 1);
  assert.deepEqual([...stale!.written], ["task.started"]);
  assert.deepEqual(stale!.left, ["task.completed"]);
  assert.equal(c.written("s.t1", "task.completed"), 2);
  c.expect(3, ["task.claimed"]);
  c.drop(3);
  // Committed without an expectation (dropped): nothing left to wait for.
  c.committed(3, "s.t3");
  assert.equal(c.written("s.t3", "task.claimed"), undefined);
  assert.equal(c.take("s.t3")?.intent, 3);
});
