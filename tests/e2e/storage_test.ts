/**
 * Issue 11 finding 5: the spec-level `env` is stored once (in the spec
 * record), not copied into every envelope, and each task still sees it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { dispatch, logPath, startCluster, waitTerminal } from "./cluster.ts";

const TASKS = 500;
const ENV_BYTES = 10 * 1024;
const BUDGET = 2 * 1000 * 1000;

Deno.test("storage: a 500-task spec with a 10 KB spec-level env stores under 2 MB and every task sees the env", async () => {
  await using c = await startCluster(["st-a", "st-b"], { workersMax: 8 });
  const big = "b".repeat(ENV_BYTES - 100);
  const tasks = Array.from(
    { length: TASKS },
    (_, i) =>
      `  - id: t${i}\n    run: 'echo "big=\${#BIG} small=$SMALL"'` +
      (i === 0 ? `\n    env: { SMALL: task }` : ""),
  ).join("\n");
  const yaml =
    `name: amp\nenv:\n  BIG: ${big}\n  SMALL: spec\ntasks:\n${tasks}\n`;
  const { spec_id } = await dispatch(c, yaml);
  // Every key and value under the prefix, in pages (one answer is capped at 4 MiB).
  const measure = async () => {
    const end = Buffer.from("/boi0"); // "/" + 1
    let from = Buffer.from("/boi/");
    let n = 0;
    for (;;) {
      const r = await c.etcd.client().kv.range({
        key: from,
        range_end: end,
        limit: 100,
      });
      for (const kv of r.kvs) n += kv.key.length + kv.value.length;
      if (!r.more || r.kvs.length === 0) return n;
      from = Buffer.concat([r.kvs[r.kvs.length - 1].key, Buffer.from([0])]);
    }
  };
  const afterDispatch = await measure();
  assert.ok(
    afterDispatch < BUDGET,
    `${afterDispatch} bytes stored after dispatch, budget ${BUDGET}`,
  );
  const done = await waitTerminal(c, spec_id, 120_000);
  const afterRun = await measure();
  console.log(
    `stored: ${afterDispatch} bytes after dispatch, ${afterRun} after the run`,
  );
  assert.ok(afterRun < BUDGET, `${afterRun} bytes stored after the run`);
  assert.equal(done.length, TASKS);
  for (const e of done) {
    assert.equal(e.state, "DONE", `${e.task_id}: ${e.last_error}`);
    const text = await Deno.readTextFile(logPath(c.node(e.ran_on!), e));
    const small = e.task_id.endsWith(".t0") ? "task" : "spec";
    assert.equal(text, `big=${big.length} small=${small}\n`, e.task_id);
  }
});
