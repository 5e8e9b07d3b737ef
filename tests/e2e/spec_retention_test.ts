/**
 * Retention of finished specs (node/core/retire.ts) on real nodes: with
 * BOI_SPEC_RETENTION_S=2, a spec whose tasks all ended is gone from etcd —
 * envelopes and record — a few seconds later, and retired once (by its
 * monitor); a spec with a task still running is untouched.
 */
import assert from "node:assert/strict";
import { cli, listEnvelopes, notYet, waitFor } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import { testEnvelope } from "../../node/test_envelope.ts";

Deno.test("retention: a finished spec leaves etcd after BOI_SPEC_RETENTION_S; a running one stays", async () => {
  await using c = await startCluster(["node-a", "node-b"], {
    env: { BOI_SPEC_RETENTION_S: "2" },
  });
  const done = await dispatch(
    c,
    `name: short
tasks:
  - { id: a, run: "true" }
  - { id: b, run: "true" }
  - { id: c, run: "true", depends_on: [a, b] }
`,
  );
  const long = await dispatch(
    c,
    `name: long
tasks:
  - { id: s, run: "sleep 60" }
`,
  );
  const ended = await waitTerminal(c, done.spec_id);
  assert.deepEqual(ended.map((t) => t.state), ["DONE", "DONE", "DONE"]);
  const endedAt = Math.max(...ended.map((t) => t.finished_at!));
  const kv = c.etcd.client();
  await waitFor(`${done.spec_id} gone from etcd`, async () => {
    const left = await kv.getAll().prefix("/boi/").keys();
    const mine = left.filter((k) => k.includes(done.spec_id));
    return mine.length === 0 ? true : notYet(mine);
  }, { timeoutMs: 20_000 });
  assert.ok(Date.now() >= endedAt + 2000, "not before its retention");
  // The record's delete is seen in etcd before its node has read the answer
  // and logged it (CI once read the logs first and found none).
  const retiredLogs = () =>
    [...c.nodes.values()].flatMap((n) =>
      n.logs().filter((l) => l.msg === "spec retired")
    );
  await waitFor("a node logs spec retired", () => {
    const seen = retiredLogs();
    return seen.length > 0 ? true : notYet(seen);
  }, { timeoutMs: 5_000 });
  const retired = retiredLogs();
  assert.deepEqual(
    retired.map((l) => [l.spec_id, l.tasks]),
    [[done.spec_id, 3]],
    "retired once, by one node",
  );
  const still = await listEnvelopes(c.etcd, { specId: long.spec_id });
  assert.equal(still.length, 1);
  assert.equal(still[0].value.state, "RUNNING");
  assert.notEqual(await kv.get(`/boi/specs/${long.spec_id}`).string(), null);
  const status = await cli(c.etcd, ["status", done.spec_id]);
  assert.notEqual(status.code, 0, "a retired spec is not known any more");
  assert.match(status.stderr, new RegExp(`spec ${done.spec_id} not found`));
  // Nothing was warned about or failed on the way.
  const bad = [...c.nodes.values()].flatMap((n) =>
    n.logs().filter((l) => l.level === "error" || l.level === "warn")
  );
  assert.deepEqual(bad, []);
});

Deno.test("retention: the envelopes of a dispatch that died before its spec record are never claimed, and leave etcd once a node has seen them so for BOI_ORPHAN_GRACE_S", async () => {
  const graceS = 3;
  await using c = await startCluster(["node-a", "node-b"], {
    env: { BOI_SPEC_RETENTION_S: "1", BOI_ORPHAN_GRACE_S: String(graceS) },
  });
  const kv = c.etcd.client();
  // What a dispatcher killed between its transactions leaves (the record is
  // written last), with a dispatcher clock far behind: the grace runs on
  // the nodes' clocks, not on dispatched_at.
  const lost = testEnvelope("lost-aaaaaa.a", {
    dispatched_at: Date.now() - 30 * 24 * 3600 * 1000,
  });
  const written = Date.now();
  await kv.put(`/boi/dispatch-queue/${lost.task_id}`).value(
    JSON.stringify(lost),
  );
  // A live dispatch meanwhile runs as usual (and, finished, is retired
  // after BOI_SPEC_RETENTION_S).
  const live = await dispatch(
    c,
    'name: live\ntasks:\n  - { id: a, run: "true" }\n',
  );
  const ended = await waitTerminal(c, live.spec_id);
  assert.deepEqual(ended.map((t) => t.state), ["DONE"]);
  const gone = (id: string) =>
    waitFor(`${id} gone from etcd`, async () => {
      const v = await kv.get(`/boi/dispatch-queue/${id}`).string();
      return v === null ? true : notYet(v);
    }, { timeoutMs: 20_000 });
  await gone(lost.task_id);
  const after = Date.now() - written;
  assert.ok(after >= graceS * 1000, `deleted ${after} ms after it was written`);
  const logs = () => [...c.nodes.values()].flatMap((n) => n.logs());
  // The log line reaches the harness after the delete may have.
  const retired = await waitFor("the orphan retire log line", () => {
    const r = logs().filter((l) =>
      String(l.msg).startsWith("retiring orphan envelopes")
    );
    return r.length >= 1 ? r : notYet(r);
  });
  assert.deepEqual(
    retired.map((l) => [l.level, l.spec_id, l.tasks]),
    [["warn", "lost-aaaaaa", 1]],
    "retired once, by one node (its HRW pick), with a warning",
  );
  // A dispatch still writing (its marker there, as the CLI keeps it for a
  // dispatch of several transactions) is left alone past the grace, while
  // an orphan written with it goes; once the marker is gone, it goes too.
  const held = testEnvelope("held-bbbbbb.a");
  const other = testEnvelope("lost-cccccc.a");
  const marker = "/boi/cluster/dispatching/held-bbbbbb";
  await kv.put(marker).value(
    JSON.stringify({
      spec_id: "held-bbbbbb",
      dispatched_by: "t",
      transactions: 2,
    }),
  );
  for (const env of [held, other]) {
    await kv.put(`/boi/dispatch-queue/${env.task_id}`).value(
      JSON.stringify(env),
    );
  }
  await gone(other.task_id);
  assert.notEqual(
    await kv.get(`/boi/dispatch-queue/${held.task_id}`).string(),
    null,
    "a dispatch under way is never cut",
  );
  await kv.delete().key(marker);
  await gone(held.task_id);
  const claimed = logs().filter((l) =>
    l.msg === "claimed" &&
    [lost.task_id, held.task_id, other.task_id].includes(String(l.task_id))
  );
  assert.deepEqual(claimed, [], "a task without its spec record never runs");
});

Deno.test("retention: a spec's record stays while an envelope of it that no node can read is in etcd; repaired, it runs", async () => {
  await using c = await startCluster(["node-a"], {
    env: { BOI_SPEC_RETENTION_S: "1", BOI_ORPHAN_GRACE_S: "2" },
  });
  const kv = c.etcd.client();
  await kv.put("/boi/cluster/dispatch_paused").value(
    JSON.stringify({ paused_at: Date.now(), by: "test" }),
  );
  const { spec_id } = await dispatch(
    c,
    'name: g\ntasks:\n  - { id: a, run: "true" }\n  - { id: b, run: "true" }\n',
  );
  const bKey = `/boi/dispatch-queue/${spec_id}.b`;
  const good = await kv.get(bKey).string();
  // A bad hand edit: the node skips b as unreadable; a is cancelled, so
  // every task this node sees has ended.
  await kv.put(bKey).value('{"x":1}');
  const cancel = await cli(c.etcd, ["tasks", "cancel", `${spec_id}.a`]);
  assert.equal(cancel.code, 0, cancel.stderr);
  await waitFor(`${spec_id}.a retired`, async () => {
    const v = await kv.get(`/boi/dispatch-queue/${spec_id}.a`).string();
    return v === null ? true : notYet(v);
  }, { timeoutMs: 20_000 });
  // The record's delete is tried and refused by its compare (b is there).
  const a = c.node("node-a");
  await a.waitForLog((l) =>
    l.msg === "txn compare failed" && l.reason === "retire" &&
    l.task_id === spec_id
  );
  assert.notEqual(await kv.get(`/boi/specs/${spec_id}`).string(), null);
  assert.ok(!a.logs().some((l) => l.msg === "spec retired"));
  // Repaired and resumed: b runs (its spec record is there), then goes.
  await kv.put(bKey).value(good!);
  await kv.delete().key("/boi/cluster/dispatch_paused");
  const ended = await waitTerminal(c, spec_id);
  assert.deepEqual(ended.map((t) => [t.task_id, t.state]), [
    [`${spec_id}.b`, "DONE"],
  ]);
  await waitFor(`${spec_id} gone from etcd`, async () => {
    const left = await kv.getAll().prefix("/boi/").keys();
    const mine = left.filter((k) => k.includes(spec_id));
    return mine.length === 0 ? true : notYet(mine);
  }, { timeoutMs: 20_000 });
});

Deno.test("retention: a spec id dispatched again after its retirement shows only the new run's output in tail, also where the new run is silent", async () => {
  await using c = await startCluster(["node-a"], {
    env: { BOI_SPEC_RETENTION_S: "1" },
  });
  const kv = c.etcd.client();
  const run = async (loud: string, quiet: string) => {
    const { spec_id } = await dispatch(
      c,
      `name: again\nid: again\ntasks:\n  - { id: loud, run: "${loud}" }\n  - { id: quiet, run: "${quiet}" }\n`,
    );
    assert.equal(spec_id, "again");
    const ended = await waitTerminal(c, spec_id);
    assert.deepEqual(ended.map((t) => t.state), ["DONE", "DONE"]);
    const tail = async (id: string) => {
      const r = await cli(c.etcd, ["tail", `again.${id}`]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const out = [await tail("loud"), await tail("quiet")];
    await waitFor("again gone from etcd", async () => {
      const left = await kv.getAll().prefix("/boi/").keys();
      const mine = left.filter((k) => k.includes("again"));
      return mine.length === 0 ? true : notYet(mine);
    }, { timeoutMs: 20_000 });
    return out;
  };
  assert.deepEqual(await run("echo first", "echo first"), [
    "first\n",
    "first\n",
  ]);
  // Its logs are kept (7 days) after the spec is retired: the second run's
  // first attempts must not append to them.
  assert.deepEqual(await run("echo second", "true"), ["second\n", ""]);
});
