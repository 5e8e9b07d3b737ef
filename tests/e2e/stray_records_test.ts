/**
 * Hostile neighbours in etcd (issue 11 items 3, 4 and 8): records written by
 * hand must not wedge any task. A node record without a lease is never a
 * member (it would "monitor" tasks it never acts on); a claim no live node
 * holds is removed by the task's monitor; an oversized node record is skipped.
 * Every case: the tasks finish within 2 × lease_ttl_s of the dispatch.
 */
import assert from "node:assert/strict";
import { Keys } from "../../node/keys.ts";
import { hrwWinner } from "../../node/core/hrw.ts";
import { readEnvelope, startEtcd, startNode, waitFor } from "../harness/mod.ts";
import { dispatchYaml, waitSpecTerminal } from "./outage_util.ts";

const keys = new Keys("/boi/");
const TTL_S = 2;
const NODES = ["node-a", "node-b"];

/** A spec with a fixed id, so the task ids (and their HRW monitors) are known before dispatch. */
function chainSpec(id: string, n: number): { yaml: string; ids: string[] } {
  const lines = [
    `name: ${id}`,
    `id: ${id}`,
    "tasks:",
    "  - id: root",
    "    run: 'true'",
  ];
  const ids = [`${id}.root`];
  for (let i = 0; i < n; i++) {
    lines.push(`  - id: d${i}`, "    run: 'true'", "    depends_on: [root]");
    ids.push(`${id}.d${i}`);
  }
  return { yaml: lines.join("\n") + "\n", ids };
}

Deno.test("a node record without a lease is not a member: the BLOCKED tasks it would monitor are unblocked and run", async () => {
  await using etcd = await startEtcd();
  await using _a = await startNode(etcd, {
    nodeId: "node-a",
    leaseTtlS: TTL_S,
  });
  await using _b = await startNode(etcd, {
    nodeId: "node-b",
    leaseTtlS: TTL_S,
  });
  // `etcdctl put /boi/nodes/ghost …`: valid JSON, no lease, no caps record.
  await etcd.client().put(keys.node("ghost")).value(JSON.stringify({
    node_id: "ghost",
    addr: "127.0.0.1:1",
    version: "0",
    started_at: 0,
    pid: 1,
  }));
  const spec = chainSpec("ghosted", 12);
  const ghostly = spec.ids.filter((id) =>
    hrwWinner(id, [...NODES, "ghost"]) === "ghost"
  );
  assert.ok(
    ghostly.length > 0,
    "the spec must have tasks the ghost would monitor",
  );
  const t0 = performance.now();
  const r = await dispatchYaml(etcd, spec.yaml);
  const all = await waitSpecTerminal(etcd, r.spec_id, 2 * TTL_S * 1000);
  assert.deepEqual(
    all.filter((e) => e.state !== "DONE").map((e) => `${e.task_id}:${e.state}`),
    [],
  );
  console.log(
    `${ghostly.length} tasks the ghost would monitor; all DONE in ${
      Math.round(performance.now() - t0)
    } ms`,
  );
});

Deno.test("a stray claim (no lease) on a task does not wedge it: the monitor removes it, says so, and the task runs", async () => {
  await using etcd = await startEtcd();
  await using a = await startNode(etcd, { nodeId: "node-a", leaseTtlS: TTL_S });
  await using _b = await startNode(etcd, {
    nodeId: "node-b",
    leaseTtlS: TTL_S,
  });
  const spec = chainSpec("strayed", 0);
  const id = spec.ids[0];
  await etcd.client().put(keys.claim(id)).value(JSON.stringify({
    node_id: "ghost",
    lease_id: "0",
    claimed_at: 0,
    attempt: 1,
  }));
  const r = await dispatchYaml(etcd, spec.yaml);
  const [done] = await waitSpecTerminal(etcd, r.spec_id, 2 * TTL_S * 1000);
  assert.equal(done.state, "DONE", JSON.stringify(done));
  // Said so: the warning of the node that saw the claim first, and the envelope's history.
  await a.waitForLog((l) =>
    typeof l.msg === "string" &&
    l.msg.includes("claim for a task that does not exist")
  );
  const env = await readEnvelope(etcd, id);
  assert.equal(env?.value.state, "DONE");
});

Deno.test("a stray claim on a finished task is removed; a 1.4 MB node record is skipped with a warning and is no member", async () => {
  await using etcd = await startEtcd();
  await using a = await startNode(etcd, { nodeId: "node-a", leaseTtlS: TTL_S });
  const r = await dispatchYaml(etcd, chainSpec("finished", 0).yaml);
  const [done] = await waitSpecTerminal(etcd, r.spec_id, 2 * TTL_S * 1000);
  const claimKey = keys.claim(done.task_id);
  await etcd.client().put(claimKey).value(JSON.stringify({
    node_id: "ghost",
    lease_id: "0",
    claimed_at: 0,
    attempt: 1,
  }));
  await waitFor(
    "the stray claim on the DONE task removed",
    async () => (await etcd.client().get(claimKey).string()) === null,
    { timeoutMs: 2 * TTL_S * 1000 },
  );
  assert.equal((await readEnvelope(etcd, done.task_id))?.value.state, "DONE");
  const huge = JSON.stringify({
    node_id: "huge",
    addr: "127.0.0.1:1",
    version: "x".repeat(1_400_000),
    started_at: 0,
    pid: 1,
  });
  await etcd.client().put(keys.node("huge")).value(huge);
  await a.waitForLog((l) =>
    typeof l.msg === "string" &&
    l.msg.startsWith(`${keys.node("huge")}: record skipped`)
  );
  // Still the only member: a new task runs at once.
  const r2 = await dispatchYaml(etcd, chainSpec("after-huge", 0).yaml);
  const [d2] = await waitSpecTerminal(etcd, r2.spec_id, 2 * TTL_S * 1000);
  assert.equal(d2.state, "DONE");
});
