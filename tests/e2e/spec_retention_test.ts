/**
 * Retention of finished specs (node/core/retire.ts) on real nodes: with
 * BOI_SPEC_RETENTION_S=2, a spec whose tasks all ended is gone from etcd —
 * envelopes and record — a few seconds later, and retired once (by its
 * monitor); a spec with a task still running is untouched.
 */
import assert from "node:assert/strict";
import { cli, listEnvelopes, notYet, waitFor } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";

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
