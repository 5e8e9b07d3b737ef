/**
 * A task's log is best effort: a node that cannot write it (here its
 * `logs` becomes a plain file once the node runs, so every mkdir and open
 * under it fails, root or not) still runs each task once and reports the command's own exit. Until
 * 2026-12 the first failed write ended the node's read of the Spawn stream:
 * the attempt was reported lost while the command ran on, its workspace was
 * removed under it, and the task ran again.
 */
import assert from "node:assert/strict";
import { makeTempDir } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";

Deno.test("a node that cannot write task logs runs each task once, to its own exit", async () => {
  const dataDir = await makeTempDir("boi-nolog-");
  const marks = await makeTempDir("boi-nolog-marks-");
  try {
    await using c = await startCluster([{ nodeId: "nolog-a", dataDir }]);
    // After the start (which refuses a data dir without room for logs).
    await Deno.remove(`${dataDir}/logs`, { recursive: true });
    await Deno.writeTextFile(`${dataDir}/logs`, "not a directory");
    // Output first (the write that fails), then a run long enough that a
    // second attempt would overlap the first.
    const { spec_id } = await dispatch(
      c,
      `name: nolog
tasks:
  - id: t
    run: 'echo start; echo oops >&2; sleep 1; echo "$BOI_ATTEMPT" >> ${marks}/runs; exit 4'
`,
    );
    const [t] = await waitTerminal(c, spec_id);
    const runs = (await Deno.readTextFile(`${marks}/runs`)).trim().split("\n");
    assert.deepEqual(
      { state: t.state, exit_code: t.exit_code, attempts: t.attempts, runs },
      { state: "FAILED", exit_code: 4, attempts: 1, runs: ["1"] },
      `last_error: ${t.last_error}`,
    );
    const log = c.node("nolog-a").logs().filter((l) =>
      l.msg === "task output not logged"
    );
    assert.equal(log.length, 1, "one warning per task, not per chunk");
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    await Deno.remove(marks, { recursive: true }).catch(() => {});
  }
});
