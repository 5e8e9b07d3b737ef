/**
 * SPEC §2 `/boi/cluster/version`: `cluster init` writes the cluster's data
 * format with the CA, `cluster status` shows it, and a node refuses to
 * register on a cluster whose format is newer than the one it reads.
 */
import assert from "node:assert/strict";
import { cli, startEtcd, startNode, waitFor } from "../harness/mod.ts";
import { DATA_FORMAT } from "../../node/identity/records.ts";

Deno.test("cluster init writes /boi/cluster/version; a node of an older format refuses to register there and writes nothing", async () => {
  await using etcd = await startEtcd();
  await using a = await startNode(etcd, { nodeId: "node-a" });
  const client = etcd.client();
  assert.equal(await client.get("/boi/cluster/version").string(), null);
  const init = await cli(etcd, ["cluster", "init", "--node", a.httpAddr]);
  assert.equal(init.code, 0, init.explain());
  const rec = JSON.parse(
    (await client.get("/boi/cluster/version").string()) ?? "null",
  );
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
  await client.put("/boi/cluster/version").value(JSON.stringify({
    ...rec,
    format: DATA_FORMAT + 1,
    boi: "9.0.0",
  }));
  const b = await startNode(etcd, { nodeId: "node-b", waitRegistered: false });
  try {
    const status = await waitFor("node-b to exit", () => b.exitStatus ?? null, {
      timeoutMs: 20_000,
    });
    assert.notEqual(status.code, 0, b.logTail(20));
    const line = b.logs().find((l) => l.msg === "start failed");
    assert.ok(line, b.logTail(20));
    assert.match(
      String(line.error),
      new RegExp(
        `^/boi/cluster/version: the cluster's records are in data format ${
          DATA_FORMAT + 1
        } \\(written by boi 9\\.0\\.0\\)`,
      ),
    );
    assert.equal(await client.get("/boi/nodes/node-b").string(), null);
    assert.equal(await client.get("/boi/caps/node-b").string(), null);
  } finally {
    await b.close();
  }
  // The running node keeps running (it checked at its registration).
  const nodes = await cli(etcd, ["nodes", "--json"]);
  assert.equal(nodes.code, 0, nodes.explain());
  assert.match(nodes.stdout, /node-a/);
});
