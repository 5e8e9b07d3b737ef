/**
 * Records written by hand over the nodes' own (SPEC §2: a record that fails
 * validation is logged and skipped, never crashes a loop; §6: nothing stored
 * is lost or half-written). An envelope overwritten with garbage while its
 * task waits must leave the node's view: deciding from the version it held
 * made every claim fail its compare, and each failed compare's read-back
 * (skipped again) sent the same claim again, in a tight loop.
 */
import assert from "node:assert/strict";
import { Keys } from "../../node/keys.ts";
import { testEnvelope } from "../../node/test_envelope.ts";
import {
  notYet,
  readEnvelope,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchYaml, metric, waitSpecTerminal } from "./outage_util.ts";

const keys = new Keys("/boi/");
const TTL_S = 2;

/** The task ids of `spec` in the node's in-memory view (`GET /internal/view`). */
async function viewTasks(url: string, spec: string): Promise<string[]> {
  const res = await fetch(`${url}/internal/view?spec=${spec}`, {
    signal: AbortSignal.timeout(5000),
  });
  const body = await res.json() as { tasks?: { task_id: string }[] };
  return (body.tasks ?? []).map((t) => t.task_id);
}

Deno.test("an envelope overwritten by garbage while PENDING leaves the node's view (warning naming the key), no claim is sent for it, and a valid envelope written back runs", async () => {
  await using etcd = await startEtcd();
  await using a = await startNode(etcd, { nodeId: "node-a", leaseTtlS: TTL_S });
  const client = etcd.client();
  await client.put(keys.dispatchPaused()).value(
    JSON.stringify({ paused_at: Date.now(), by: "test" }),
  );
  const id = "garbled.t";
  await dispatchYaml(
    etcd,
    "name: garbled\nid: garbled\ntasks:\n  - id: t\n    run: 'true'\n",
  );
  await waitFor("node-a holds garbled.t PENDING", async () => {
    const ids = await viewTasks(a.url, "garbled");
    return ids.includes(id) ? ids : notYet(ids);
  });
  const good = (await readEnvelope(etcd, id))!;
  assert.equal(good.value.state, "PENDING");
  await client.put(keys.task(id)).value('{"x":1}');
  const warning = await a.waitForLog((l) =>
    typeof l.msg === "string" &&
    l.msg.startsWith(`${keys.task(id)}: invalid record skipped`)
  );
  await waitFor("garbled.t gone from node-a's view", async () => {
    const ids = await viewTasks(a.url, "garbled");
    return ids.length === 0 ? true : notYet(ids);
  });
  const conflictsBefore = await metric(a.url, "boi_claim_conflicts_total");
  await client.delete().key(keys.dispatchPaused());
  // Progress, not a pause: another spec runs to the end through the same
  // decisions (ticks, sweeps, claims) that would retry the garbled one.
  const other = await dispatchYaml(
    etcd,
    "name: beside\ntasks:\n  - id: a\n    run: 'true'\n  - id: b\n    run: 'true'\n",
  );
  const done = await waitSpecTerminal(etcd, other.spec_id, 4 * TTL_S * 1000);
  assert.deepEqual(done.map((e) => e.state), ["DONE", "DONE"]);
  const conflicts = await metric(a.url, "boi_claim_conflicts_total") -
    conflictsBefore;
  assert.equal(
    conflicts,
    0,
    `claims of the garbled task sent and refused: ${conflicts} (warning: ${
      JSON.stringify(warning)
    })`,
  );
  assert.equal(await client.get(keys.task(id)).string(), '{"x":1}');
  assert.equal(await client.get(keys.claim(id)).string(), null);
  // An operator puts a valid envelope back: the task is decided and runs.
  await client.put(keys.task(id)).value(
    JSON.stringify(testEnvelope(id, { dispatched_at: Date.now() })),
  );
  const [fixed] = await waitSpecTerminal(etcd, "garbled", 4 * TTL_S * 1000);
  assert.equal(fixed.state, "DONE", JSON.stringify(fixed));
});

Deno.test("a dependency deleted by hand: the BLOCKED task says `dependency <id> missing` on its envelope instead of waiting in silence, and runs once the dependency is back DONE", async () => {
  await using etcd = await startEtcd();
  await using _a = await startNode(etcd, {
    nodeId: "node-a",
    leaseTtlS: TTL_S,
  });
  const client = etcd.client();
  await client.put(keys.dispatchPaused()).value(
    JSON.stringify({ paused_at: Date.now(), by: "test" }),
  );
  await dispatchYaml(
    etcd,
    "name: orphan\nid: orphan\ntasks:\n  - id: first\n    run: 'true'\n  - id: then\n    run: 'true'\n    depends_on: [first]\n",
  );
  const first = (await readEnvelope(etcd, "orphan.first"))!;
  await client.delete().key(keys.task("orphan.first"));
  const noted = await waitFor(
    "orphan.then says what it waits for",
    async () => {
      const e = (await readEnvelope(etcd, "orphan.then"))?.value;
      return e?.last_error === "dependency orphan.first missing"
        ? e
        : notYet(e && `${e.state}:${e.last_error}`);
    },
    { timeoutMs: 4 * TTL_S * 1000 },
  );
  assert.equal(noted.state, "BLOCKED");
  await client.put(keys.task("orphan.first")).value(
    JSON.stringify({ ...first.value, state: "DONE", finished_at: Date.now() }),
  );
  await client.delete().key(keys.dispatchPaused());
  const all = await waitSpecTerminal(etcd, "orphan", 4 * TTL_S * 1000);
  assert.deepEqual(
    all.map((e) => `${e.task_id}:${e.state}:${e.last_error}`).sort(),
    ["orphan.first:DONE:null", "orphan.then:DONE:null"],
  );
});
