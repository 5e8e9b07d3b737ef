/** The harness's etcd: real etcd processes stopped, crashed, restarted, disposed, and a cluster losing a member. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { processAlive, startEtcd, startEtcdCluster } from "./mod.ts";

Deno.test("etcd: stop and restart keep the data, ports and data dir", async () => {
  await using etcd = await startEtcd();
  const { endpoint, dataDir } = etcd;
  const pid = etcd.pid;
  await etcd.client().put("/h/k").value("v1");

  await etcd.stop();
  assert.equal(etcd.running, false);
  assert.equal(await processAlive(pid!), false);
  await assert.rejects(
    fetch(`${endpoint}/health`).then((r) => r.body?.cancel()),
    "nothing should answer on the client port while etcd is stopped",
  );

  await etcd.restart();
  assert.equal(etcd.endpoint, endpoint);
  assert.equal(etcd.dataDir, dataDir);
  assert.notEqual(etcd.pid, pid);
  assert.equal(await etcd.client().get("/h/k").string(), "v1");
});

Deno.test("etcd: a crash (SIGKILL) and restart keep the data; compact drops history", async () => {
  await using etcd = await startEtcd();
  const first = await etcd.client().put("/h/c").value("1").exec();
  await etcd.client().put("/h/c").value("2");

  await etcd.kill();
  assert.equal(etcd.running, false);
  await etcd.restart();
  assert.equal(await etcd.client().get("/h/c").string(), "2");

  const oldRev = Number(first.header.revision);
  assert.equal(
    await etcd.client().get("/h/c").revision(oldRev).string(),
    "1",
    "history is readable before compaction",
  );
  const compacted = await etcd.compact();
  assert.ok(compacted > oldRev);
  await assert.rejects(
    etcd.client().get("/h/c").revision(oldRev).string(),
    /compacted/i,
  );
});

Deno.test("etcd: dispose removes the temp data dir and keeps the log", async () => {
  let dataDir = "";
  let logFile = "";
  {
    await using etcd = await startEtcd();
    dataDir = etcd.dataDir;
    logFile = etcd.logFile;
    assert.ok(existsSync(dataDir));
  }
  assert.equal(existsSync(dataDir), false);
  assert.match(await Deno.readTextFile(logFile), /etcd/);
});

Deno.test("etcd cluster: three members, one lost, still serves", async () => {
  await using cluster = await startEtcdCluster({ members: 3 });
  assert.equal(cluster.endpoint.split(",").length, 3);
  await cluster.client().put("/h/q").value("quorum");
  await cluster.members[0].kill();
  assert.equal(await cluster.client().get("/h/q").string(), "quorum");
  await cluster.client().put("/h/q").value("still");
  await cluster.members[0].restart();
  assert.equal(await cluster.client().get("/h/q").string(), "still");
});
