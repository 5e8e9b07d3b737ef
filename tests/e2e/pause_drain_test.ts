/**
 * Operator switches on a live cluster: `cluster pause-dispatch` /
 * `resume-dispatch` (SPEC §5.8) and `node drain` / `undrain` (SPEC §11).
 */
import assert from "node:assert/strict";
import {
  cli,
  listEnvelopes,
  readCaps,
  readEnvelope,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import {
  dispatchYaml,
  since,
  specFile,
  specYaml,
  waitSpecTerminal,
} from "./outage_util.ts";
import { DispatchPaused } from "../../node/schema.ts";

Deno.test("pause-dispatch: new tasks stay PENDING while running ones finish; resume-dispatch: they run", async () => {
  await using etcd = await startEtcd();
  await using _a = await startNode(etcd, { nodeId: "node-a" });
  await using _b = await startNode(etcd, { nodeId: "node-b" });
  const first = await dispatchYaml(etcd, specYaml("first", 1, "'sleep 2'"));
  await waitFor("the first task RUNNING", async () => {
    const e = await readEnvelope(etcd, first.task_ids[0]);
    return e?.value.state === "RUNNING";
  });

  const pause = await cli(etcd, ["cluster", "pause-dispatch"]);
  assert.equal(pause.code, 0, pause.explain());
  assert.match(pause.stdout, /^dispatch paused: no node claims new tasks/);
  const stored = await etcd.client().get("/boi/cluster/dispatch_paused")
    .string();
  const rec = DispatchPaused.parse(JSON.parse(stored!));
  assert.match(rec.by, /@/);
  const again = await cli(etcd, ["cluster", "pause-dispatch", "--json"]);
  assert.equal(again.code, 0, again.explain());
  assert.deepEqual(again.json(), {
    paused: true,
    already_paused: true,
    paused_at: rec.paused_at,
    by: rec.by,
  });
  const status = await cli(etcd, ["cluster", "status"]);
  assert.equal(status.code, 0, status.explain());
  assert.match(status.stdout, /^dispatch: paused .* ago by /m);
  assert.match(status.stdout, /^nodes: 2 live$/m);

  const file = await specFile(specYaml("second", 3, "'echo second'"));
  const r = await cli(etcd, ["dispatch", file, "--json"]);
  assert.equal(r.code, 0, r.explain());
  assert.match(r.stderr, /dispatch is paused cluster-wide/);
  const second = r.json<{ spec_id: string; task_ids: string[] }>();
  const t0 = performance.now();
  // Every look: all three still PENDING and unclaimed; meanwhile the running task ends.
  let firstDone = false;
  let looks = 0;
  while (since(t0) < 3000 || !firstDone) {
    const all = await listEnvelopes(etcd, { specId: second.spec_id });
    assert.deepEqual(
      all.map((e) => `${e.value.state}/${e.value.attempts}`),
      ["PENDING/0", "PENDING/0", "PENDING/0"],
      `while paused, after ${since(t0)} ms`,
    );
    looks++;
    firstDone = (await readEnvelope(etcd, first.task_ids[0]))?.value.state ===
      "DONE";
    assert.ok(since(t0) < 10_000, "the running task never finished");
    await new Promise((r) => setTimeout(r, 200));
  }
  const pausedFor = since(t0);

  const resume = await cli(etcd, ["cluster", "resume-dispatch"]);
  assert.equal(resume.code, 0, resume.explain());
  assert.match(resume.stdout, /^dispatch resumed \(was paused for .* by /);
  const t1 = performance.now();
  const done = await waitSpecTerminal(etcd, second.spec_id, 10_000);
  console.log(
    `paused: 3 new tasks PENDING at all ${looks} looks over ${pausedFor} ms while the running one finished; after resume DONE in ${
      since(t1)
    } ms`,
  );
  assert.deepEqual(done.map((t) => t.state), ["DONE", "DONE", "DONE"]);
  const twice = await cli(etcd, ["cluster", "resume-dispatch"]);
  assert.equal(twice.code, 0, twice.explain());
  assert.match(twice.stdout, /^dispatch is not paused/);
  const after = await cli(etcd, ["cluster", "status", "--json"]);
  assert.equal(after.code, 0, after.explain());
  assert.deepEqual(after.json(), {
    dispatch_paused: null,
    paused: false,
    nodes: 2,
    degraded: [],
    draining: [],
    pending_flush: [],
  });
});

Deno.test("node drain: the node takes nothing new, its running task completes, then the command reports drained", async () => {
  await using etcd = await startEtcd();
  // Both can run anything; only node-a has x-t-only.
  await using _a = await startNode(etcd, {
    nodeId: "node-a",
    caps: { "x-t-only": "a" },
  });
  await using _b = await startNode(etcd, { nodeId: "node-b" });
  const long = await dispatchYaml(
    etcd,
    specYaml("long", 1, "'sleep 6; echo long'", { "x-t-only": "a" }),
  );
  const id = long.task_ids[0];
  await waitFor(`${id} RUNNING on node-a`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "RUNNING";
  });

  const t0 = performance.now();
  const drain = cli(etcd, ["node", "drain", "node-a", "--timeout", "30s"]);
  await waitFor("node-a reports draining", async () => {
    const c = await readCaps(etcd, "node-a");
    return c?.value.dynamic.drain_state === "draining";
  });
  // New work: three tasks anyone can run, one only node-a can.
  const more = await dispatchYaml(
    etcd,
    `name: more\ntasks:\n${
      [0, 1, 2].map((i) => `  - id: any${i}\n    run: 'echo any'\n`).join("")
    }  - id: only\n    run: 'echo only'\n    requires: { x-t-only: a }\n`,
  );
  const onlyId = more.task_ids.find((t) => t.endsWith(".only"))!;
  await waitFor("the three open tasks DONE", async () => {
    const all = await listEnvelopes(etcd, { specId: more.spec_id });
    return all.filter((e) => e.value.state === "DONE").length === 3;
  });
  const r = await drain;
  const drainedAt = since(t0);
  assert.equal(r.code, 0, r.explain());
  const lines = r.stdout.trim().split("\n");
  assert.match(
    lines[0],
    /^draining node-a: it claims nothing new; waiting for its running tasks$/,
  );
  assert.match(lines.at(-1)!, /^node node-a drained \(after .*\)$/);
  assert.ok(
    lines.some((l) => /^node-a: draining, 1 task\(s\) running$/.test(l)),
    r.stdout,
  );
  const finished = (await readEnvelope(etcd, id))!.value;
  assert.equal(finished.state, "DONE");
  assert.equal(finished.ran_on, "node-a");
  const all = await listEnvelopes(etcd, { specId: more.spec_id });
  for (const e of all) {
    if (e.value.task_id === onlyId) {
      assert.equal(e.value.state, "PENDING", "node-a took nothing new");
      assert.equal(e.value.attempts, 0);
    } else {
      assert.equal(e.value.ran_on, "node-b", `${e.value.task_id}`);
    }
  }
  const caps = await readCaps(etcd, "node-a");
  assert.equal(caps?.value.dynamic.drain_state, "drained");
  const status = await cli(etcd, ["cluster", "status"]);
  assert.match(status.stdout, /^draining: node-a \(drained\)$/m);

  const undrain = await cli(etcd, ["node", "undrain", "node-a"]);
  assert.equal(undrain.code, 0, undrain.explain());
  assert.match(undrain.stdout, /^node node-a undrained/);
  const only = await waitFor(`${onlyId} DONE after undrain`, async () => {
    const e = await readEnvelope(etcd, onlyId);
    return e?.value.state === "DONE" ? e.value : undefined;
  });
  assert.equal(only.ran_on, "node-a");
  console.log(
    `drain requested at 0; node-a's 6 s task DONE, drain reported +${drainedAt} ms; the node-a-only task waited PENDING, ran there after undrain`,
  );
});
