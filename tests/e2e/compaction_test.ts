/**
 * Watch compaction (SPEC §6): a node cut off from etcd while its work is
 * dispatched and the history it missed is compacted away must re-list on
 * the heal and still run that work. Nothing may be lost silently.
 */
import assert from "node:assert/strict";
import {
  listEnvelopes,
  startEtcd,
  startNode,
  startProxy,
  waitFor,
} from "../harness/mod.ts";
import {
  dispatchYaml,
  since,
  specYaml,
  storeRevision,
  waitSpecTerminal,
} from "./outage_util.ts";

Deno.test("history compacted while a node's watch is cut off: on the heal it re-lists and runs the tasks dispatched meanwhile", async () => {
  await using etcd = await startEtcd();
  await using pa = startProxy(etcd);
  // A long lease: the cut must test the watch, not a lease expiry.
  await using a = await startNode(etcd, {
    nodeId: "node-a",
    endpoints: pa.endpoint,
    caps: { "x-t-solo": "a" },
    leaseTtlS: 10,
  });
  await using _b = await startNode(etcd, { nodeId: "node-b" });
  const watching = a.logs().filter((l) => l.msg === "watching").length;

  pa.cut("blackhole");
  const t0 = performance.now();
  const cutRev = await storeRevision(etcd);
  const solo = await dispatchYaml(
    etcd,
    specYaml("solo", 2, "'echo solo'", { "x-t-solo": "a" }),
  );
  // Other activity moves the revision on: node-b runs these.
  const other = await dispatchYaml(etcd, specYaml("other", 3, "'echo other'"));
  const otherDone = await waitSpecTerminal(etcd, other.spec_id, 10_000);
  assert.deepEqual(
    otherDone.map((t) => `${t.state}@${t.ran_on}`),
    Array(3).fill("DONE@node-b"),
  );
  const compacted = await etcd.compact();
  // node-a saw none of it: its tasks are untouched, and the revisions that
  // created them are gone from etcd's history.
  for (const e of await listEnvelopes(etcd, { specId: solo.spec_id })) {
    assert.equal(e.value.state, "PENDING");
    assert.equal(e.value.attempts, 0);
    assert.ok(e.mod_revision > cutRev && e.mod_revision < compacted);
  }
  const cutFor = since(t0);
  pa.restore();

  const relist = await a.waitForLog(
    (l) => l.msg === "watch lost: re-listing",
    15_000,
  );
  await waitFor(
    "node-a watching again",
    () => a.logs().filter((l) => l.msg === "watching").length > watching,
  );
  const done = await waitSpecTerminal(etcd, solo.spec_id, 15_000);
  console.log(
    `cut node-a for ${cutFor} ms (revision ${cutRev} → compacted at ${compacted}); after the heal: "${relist.msg}" (${relist.error}); its 2 tasks DONE ${
      since(t0) - cutFor
    } ms after the heal`,
  );
  assert.deepEqual(
    done.map((t) => `${t.state}@${t.ran_on}#${t.attempts}`),
    ["DONE@node-a#1", "DONE@node-a#1"],
  );
});
