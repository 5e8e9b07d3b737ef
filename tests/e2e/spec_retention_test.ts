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
  const retired = [...c.nodes.values()].flatMap((n) =>
    n.logs().filter((l) => l.msg === "spec retired")
  );
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

Deno.test("retention: the envelopes of a dispatch that died before its spec record are never claimed, and leave etcd once the orphan grace (1 hour) has passed", async () => {
  await using c = await startCluster(["node-a", "node-b"], {
    env: { BOI_SPEC_RETENTION_S: "1" },
  });
  const kv = c.etcd.client();
  // What a dispatcher killed between its transactions leaves (the record is
  // written last): one such dispatch two hours ago, one just now.
  const old = testEnvelope("lost-aaaaaa.a", {
    dispatched_at: Date.now() - 2 * 3600 * 1000,
  });
  const recent = testEnvelope("fresh-bbbbbb.a", { dispatched_at: Date.now() });
  for (const env of [old, recent]) {
    await kv.put(`/boi/dispatch-queue/${env.task_id}`).value(
      JSON.stringify(env),
    );
  }
  const gone = (id: string) =>
    waitFor(`${id} gone from etcd`, async () => {
      const v = await kv.get(`/boi/dispatch-queue/${id}`).string();
      return v === null ? true : notYet(v);
    }, { timeoutMs: 20_000 });
  await gone(old.task_id);
  // A later pass (one a second) takes a second old one, and still keeps
  // the recent one: a dispatch of a moment ago may still be writing.
  const older = testEnvelope("lost-cccccc.a", {
    dispatched_at: Date.now() - 3 * 3600 * 1000,
  });
  await kv.put(`/boi/dispatch-queue/${older.task_id}`).value(
    JSON.stringify(older),
  );
  await gone(older.task_id);
  assert.notEqual(
    await kv.get(`/boi/dispatch-queue/${recent.task_id}`).string(),
    null,
    "inside its grace: kept",
  );
  const logs = () => [...c.nodes.values()].flatMap((n) => n.logs());
  // The log lines reach the harness after the deletes may have.
  const retired = await waitFor("two orphan retire log lines", () => {
    const r = logs().filter((l) =>
      String(l.msg).startsWith("orphan envelopes retired")
    );
    return r.length >= 2 ? r : notYet(r);
  });
  assert.deepEqual(
    retired.map((l) => [l.level, l.spec_id, l.tasks]).sort(),
    [["warn", "lost-aaaaaa", 1], ["warn", "lost-cccccc", 1]],
    "each retired once, by one node (its HRW pick), with a warning",
  );
  const claimed = logs().filter((l) =>
    l.msg === "claimed" &&
    [old.task_id, older.task_id, recent.task_id].includes(String(l.task_id))
  );
  assert.deepEqual(claimed, [], "a task without its spec record never runs");
  assert.deepEqual(await kv.getAll().prefix("/boi/claims/").keys(), []);
});
