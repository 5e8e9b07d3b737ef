/**
 * The reference pool's spawner (node/exec/spawner.pl) dying under a running
 * task: that is the pool's crash. The pool plugin exits, the node re-queues the
 * attempt as lost (no retry spent), the restarted pool reaps the old task's
 * process group, and the task still ends DONE. Real etcd, a real node, the
 * reference pool under its shipped permission set (which runs only perl).
 */
import assert from "node:assert/strict";
import {
  listEnvelopes,
  makeTempDir,
  notYet,
  processGroupAlive,
  processTable,
  waitFor,
} from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import { readyIncarnation, spawned, waitPlugin } from "./plugin_util.ts";

Deno.test("SIGKILL the pool's spawner under a retries: 0 task: attempt lost, its group reaped, the task ends DONE", async () => {
  await using c = await startCluster(["node-a"]);
  const a = c.node("node-a");
  await waitPlugin(c.etcd, "node-a", "pool", (r) => r.state === "ready");
  const first = spawned(a, "pool")!;
  // The first attempt runs until killed, the second ends at once (each
  // attempt has a fresh workdir: the mark lives outside it).
  const dir = await makeTempDir("boi-spawner-");
  const mark = `${dir}/first`;
  const { spec_id, task_ids } = await dispatch(
    c,
    "name: spawner\ntasks:\n  - id: t0\n" +
      `    run: 'test -e ${mark} || { touch ${mark}; sleep 300 & sleep 300; }'\n` +
      "    retries: 0\n",
  );
  const [task] = task_ids;
  // The worker (leading its group) and its background sleep, under the spawner.
  const seen = await waitFor("the task's tree under the spawner", async () => {
    const table = (await processTable()).filter((r) => r.state !== "Z");
    const spawner = table.find((r) => r.ppid === first.pid);
    const worker = spawner && table.find((r) => r.ppid === spawner.pid);
    const members = worker ? table.filter((r) => r.pgrp === worker.pid) : [];
    return spawner && worker && members.length >= 2
      ? { spawner: spawner.pid, group: worker.pid }
      : notYet({ spawner, worker, members });
  }, { timeoutMs: 30_000, intervalMs: 50 }); // a cold start under load

  Deno.kill(seen.spawner, "SIGKILL");

  // The next incarnation's spawner reaps the group as it starts (a cold
  // start of the plugin can take seconds under load).
  await waitFor(
    `the first attempt's group ${seen.group} reaped`,
    async () => (await processGroupAlive(seen.group)) ? notYet("alive") : true,
    { timeoutMs: 30_000 },
  );
  const next = await readyIncarnation(a, "pool", first.incarnation);
  assert.notEqual(next, first.pid, "a new pool incarnation");
  const [done] = await waitTerminal(c, spec_id, 30_000);
  assert.equal(done.state, "DONE", `${done.state}: ${done.last_error}`);
  assert.equal(done.retries_left, 0, "no retry spent");
  assert.equal(done.attempts, 2, "the lost attempt and the one that finished");
  const lost = a.logs().find((l) =>
    l.msg === "worker exited" && l.task_id === task && l.lost === true
  );
  assert.ok(lost, "the node logged the attempt as lost");
  assert.ok(
    a.logs().some((l) => /the spawner died/.test(String(l.msg))),
    "the pool said why it exited",
  );
  const envs = await listEnvelopes(c.etcd, { specId: spec_id });
  assert.equal(envs.length, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a frozen pool at the node's stop: the plugin is SIGKILLed alone and its spawner still ends the task's group, so nothing outlives the node", async () => {
  await using c = await startCluster(["node-a"]);
  const a = c.node("node-a");
  await waitPlugin(c.etcd, "node-a", "pool", (r) => r.state === "ready");
  const pool = spawned(a, "pool")!;
  await dispatch(
    c,
    "name: frozen\ntasks:\n  - id: t0\n    run: 'sleep 300 & sleep 300'\n",
  );
  const group = await waitFor(
    "the task's group under the spawner",
    async () => {
      const table = (await processTable()).filter((r) => r.state !== "Z");
      const spawner = table.find((r) => r.ppid === pool.pid);
      const worker = spawner && table.find((r) => r.ppid === spawner.pid);
      const members = worker ? table.filter((r) => r.pgrp === worker.pid) : [];
      return worker && members.length >= 2
        ? worker.pid
        : notYet({ spawner, worker, members });
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  // The plugin alone is frozen: it ignores the SIGTERM of the node's stop,
  // and after the 5 s grace the node SIGKILLs it.
  Deno.kill(pool.pid, "SIGSTOP");
  await a.stop(20_000);
  await waitFor(
    `the task's group ${group} gone after the node stopped`,
    async () => (await processGroupAlive(group)) ? notYet("alive") : true,
    { timeoutMs: 5_000 },
  );
});
