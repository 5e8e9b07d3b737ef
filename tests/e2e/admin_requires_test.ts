/**
 * SPEC §5.1 with the one static cap a node cannot declare itself:
 * `cluster_admin` is added by the admin path (`cluster init`), not config, so
 * the admin node must match `requires: {cluster_admin: "true"}` in its own
 * view as the other nodes do in theirs, or nobody claims such a task.
 */
import assert from "node:assert/strict";
import {
  cli,
  notYet,
  readCaps,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchYaml, waitSpecTerminal } from "./outage_util.ts";

const TTL_S = 2;

Deno.test("a task requiring cluster_admin runs on the admin node (its grant in its caps record), not left PENDING by every node", async () => {
  await using etcd = await startEtcd();
  await using a = await startNode(etcd, { nodeId: "node-a", leaseTtlS: TTL_S });
  await using _b = await startNode(etcd, {
    nodeId: "node-b",
    leaseTtlS: TTL_S,
  });
  const init = await cli(etcd, ["cluster", "init", "--node", a.httpAddr]);
  assert.equal(init.code, 0, init.explain());
  await waitFor("node-a's caps say cluster_admin", async () => {
    const c = await readCaps(etcd, "node-a");
    return c?.value.static.cluster_admin === "true" ? true : notYet(c?.value);
  });
  const r = await dispatchYaml(
    etcd,
    "name: adminonly\nrequires: { cluster_admin: \"true\" }\ntasks:\n  - id: a\n    run: 'true'\n  - id: b\n    run: 'true'\n  - id: c\n    run: 'true'\n",
  );
  const all = await waitSpecTerminal(etcd, r.spec_id, 4 * TTL_S * 1000);
  assert.deepEqual(
    all.map((e) => `${e.task_id}:${e.state}:${e.ran_on}`),
    all.map((e) => `${e.task_id}:DONE:node-a`),
  );
});
