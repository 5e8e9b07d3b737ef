/**
 * SPEC §2 `/boi/cluster/version`: `cluster init` writes the cluster's data
 * format with the CA, `cluster status` shows it, and a node refuses to
 * register on a cluster whose format is newer than the one it reads: at
 * start, and when it registers again after losing its lease.
 */
import assert from "node:assert/strict";
import {
  cli,
  type NodeProc,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { DATA_FORMAT } from "../../node/identity/records.ts";

const KEY = "/boi/cluster/version";

/** `node` exits 1 after logging `msg` with an error matching `error`. */
async function exitsRefused(node: NodeProc, msg: string, error: RegExp) {
  const status = await waitFor(
    `${node.nodeId} to exit`,
    () => node.exitStatus,
    {
      timeoutMs: 20_000,
    },
  );
  assert.equal(status.code, 1, node.logTail(20));
  const line = node.logs().find((l) => l.msg === msg);
  assert.ok(line, node.logTail(20));
  assert.match(String(line.error), error);
}

Deno.test("cluster init writes /boi/cluster/version over an unreadable one; a node of an older format refuses to register, at start and after a lost lease", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  // Unreadable: logged once and skipped (SPEC §2), the node registers.
  await client.put(KEY).value("{not json");
  await using a = await startNode(etcd, { nodeId: "node-a", leaseTtlS: 2 });
  const warned = a.logs().filter((l) =>
    String(l.msg).startsWith(`${KEY}: invalid record, skipped`)
  );
  assert.equal(warned.length, 1, a.logTail(20));

  const init = await cli(etcd, ["cluster", "init", "--node", a.httpAddr]);
  assert.equal(init.code, 0, init.explain());
  const rec = JSON.parse((await client.get(KEY).string()) ?? "null");
  assert.equal(rec?.format, DATA_FORMAT);
  assert.equal(rec?.written_by, "node-a");
  const st = await cli(etcd, ["cluster", "status"]);
  assert.equal(st.code, 0, st.explain());
  assert.match(
    st.stdout,
    new RegExp(
      `^data format: ${DATA_FORMAT} \\(written by boi \\S+ on node-a\\)$`,
      "m",
    ),
  );

  // A later boi raised the format: this one must not misread its records.
  // "14" and "connect" are in the message on purpose: it must not read as
  // an unreachable etcd (which would be retried forever).
  const newer = DATA_FORMAT + 13;
  await client.put(KEY).value(JSON.stringify({
    ...rec,
    format: newer,
    boi: "9.0.0-connector",
  }));
  const refusal = new RegExp(
    `^${KEY}: the cluster's records are in data format ${newer} \\(written by boi 9\\.0\\.0-connector\\); boi \\S+ reads format ${DATA_FORMAT} only`,
  );
  const b = await startNode(etcd, {
    nodeId: "node-b",
    leaseTtlS: 2,
    waitRegistered: false,
  });
  try {
    await exitsRefused(b, "start failed", refusal);
    assert.equal(await client.get("/boi/nodes/node-b").string(), null);
    assert.equal(await client.get("/boi/caps/node-b").string(), null);
  } finally {
    await b.close();
  }

  // node-a checked at its registration and runs on; once its lease is gone
  // it registers again, is refused, and stops instead of staying up
  // unregistered.
  const lease = (await client.get("/boi/nodes/node-a").exec()).kvs[0]?.lease;
  assert.ok(lease, "node-a is registered");
  await client.leaseClient.leaseRevoke({ ID: lease });
  await exitsRefused(a, "registration refused: stopping", refusal);
  assert.equal(await client.get("/boi/nodes/node-a").string(), null);
});
