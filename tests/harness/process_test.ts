/** Process liveness checks of the harness, on a real detached process tree. */
import assert from "node:assert/strict";
import {
  notYet,
  processAlive,
  processGroupAlive,
  processGroupMembers,
  waitFor,
} from "./mod.ts";

Deno.test("processAlive / processGroupAlive: a detached tree, then SIGKILL to the group", async () => {
  const child = new Deno.Command("sh", {
    args: ["-c", "sleep 60 & sleep 60 & wait"],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const pgid = child.pid;
  try {
    assert.equal(await processAlive(pgid), true);
    const members = await waitFor("sh and its two sleeps", async () => {
      const m = await processGroupMembers(pgid);
      return m.length === 3 ? m : notYet(m);
    }, { timeoutMs: 5000, intervalMs: 20 });
    assert.ok(members.includes(pgid));
    assert.equal(await processGroupAlive(pgid), true);
  } finally {
    Deno.kill(-pgid, "SIGKILL");
  }
  await child.status;
  await waitFor(
    `process group ${pgid} to be gone`,
    async () =>
      !await processGroupAlive(pgid) || notYet(await processGroupMembers(pgid)),
    { timeoutMs: 5000, intervalMs: 20 },
  );
  assert.equal(await processAlive(pgid), false);
  assert.equal(
    await processAlive(2 ** 22 + 1),
    false,
    "a pid that cannot exist",
  );
});
