/**
 * Partitions (SPEC §6, §14): each node reaches etcd through its own proxy,
 * which the test cuts and restores while the node keeps running.
 *
 * 1. claimant cut for less than its lease while its task finishes: the result
 *    waits in the pending flush and is committed after the heal (attempts 1);
 * 2. claimant cut for longer than its lease: another node re-runs the task,
 *    the old result is superseded after the heal, DONE is written once;
 * 3. every node and the CLI cut: dispatch fails with exit 3 within 2.5 s,
 *    writes nothing, the node counts the rejection; status --stale-ok answers
 *    from the node's cache; the first dispatch after the heal succeeds.
 */
import assert from "node:assert/strict";
import {
  cli,
  notYet,
  readClaim,
  readEnvelope,
  startEtcd,
  startNode,
  startProxy,
  waitFor,
} from "../harness/mod.ts";
import {
  dispatchYaml,
  doneCommits,
  envelopeHistory,
  healthz,
  metric,
  quietRevision,
  since,
  specFile,
  specYaml,
  storeRevision,
  waitSpecTerminal,
} from "./outage_util.ts";

Deno.test("claimant cut off for less than its lease while its task ends: result parked in the pending flush, committed after the heal, attempts 1", async () => {
  // TTL 5 s: the cut lasts ~1.3 s and the client needs a moment to reconnect;
  // the lease (last kept alive at most TTL/3 before the cut) must outlive both.
  const TTL_S = 5;
  await using etcd = await startEtcd();
  await using pa = startProxy(etcd);
  await using pb = startProxy(etcd);
  await using a = await startNode(etcd, {
    nodeId: "node-a",
    endpoints: pa.endpoint,
    leaseTtlS: TTL_S,
  });
  await using b = await startNode(etcd, {
    nodeId: "node-b",
    endpoints: pb.endpoint,
    leaseTtlS: TTL_S,
  });
  const nodes = new Map([["node-a", { n: a, p: pa }], ["node-b", {
    n: b,
    p: pb,
  }]]);
  const { spec_id, task_ids: [id] } = await dispatchYaml(
    etcd,
    specYaml("shortcut", 1, "'sleep 1; echo finished'"),
  );
  const running = await waitFor(`${id} RUNNING`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "RUNNING" ? e.value : undefined;
  }, { intervalMs: 20 });
  const { n: node, p: proxy } = nodes.get(running.claimant_node_id!)!;
  const fence = running.fence!;
  const t0 = performance.now();
  proxy.cut("blackhole");
  await node.waitForLog((l) =>
    l.msg === "worker exited" && l.task_id === id && l.code === 0
  );
  const exitedAt = since(t0);
  // The finish transaction hangs in the blackhole; refusing connections
  // makes it fail now instead of at its 5 s deadline.
  proxy.cut("reset");
  await node.waitForLog((l) =>
    l.msg === "result parked in pending flush" && l.task_id === id
  );
  const parkedAt = since(t0);
  const flushFile = `${node.dataDir}/pending-flush/${node.nodeId}.jsonl`;
  const parked = (await Deno.readTextFile(flushFile)).trim().split("\n").map((
    l,
  ) => JSON.parse(l));
  assert.deepEqual(parked.map((e) => [e.task_id, e.fence, e.code]), [[
    id,
    fence,
    0,
  ]]);
  proxy.restore();
  const healedAt = since(t0);
  assert.ok(
    healedAt < TTL_S * 1000 - (TTL_S * 1000) / 3,
    `healed ${healedAt} ms after the cut: the lease may have expired`,
  );
  await node.waitForLog((l) =>
    l.msg === "result committed from pending flush" && l.task_id === id
  );
  const committedAt = since(t0);
  const [t] = await waitSpecTerminal(etcd, spec_id);
  console.log(
    `cut ${node.nodeId}; worker exited +${exitedAt} ms, parked +${parkedAt} ms, healed +${healedAt} ms, committed from the pending flush +${committedAt} ms (TTL ${TTL_S} s)`,
  );
  assert.equal(t.state, "DONE");
  assert.equal(t.attempts, 1);
  assert.equal(t.ran_on, node.nodeId);
  assert.equal(t.fence, fence);
  assert.equal(t.exit_code, 0);
  assert.equal(await readClaim(etcd, id), null);
  // The entry leaves the file after its commit (an fsynced rewrite and a
  // directory fsync): wait for it, do not race it.
  await waitFor("the pending-flush file emptied after the commit", async () => {
    const left = (await Deno.readTextFile(flushFile)).trim();
    return left === "" ? true : notYet(left);
  }, { timeoutMs: 5_000 });
  assert.ok(
    !node.logs().some((l) =>
      l.msg === "pending flush: a settled entry stays in the file"
    ),
    "the rewrite did not fail",
  );
  assert.ok(
    !node.logs().some((l) => l.msg?.toString().startsWith("lease lost")),
    "the lease survived the cut",
  );
  await waitFor(
    `${node.nodeId} /healthz 200 again`,
    async () => (await healthz(node.url)).status === 200,
  );
});

Deno.test("claimant cut off for longer than its lease: re-run elsewhere, the old result superseded after the heal, DONE written once", async () => {
  await using etcd = await startEtcd();
  const ids = ["node-a", "node-b", "node-c"];
  await using pa = startProxy(etcd);
  await using pb = startProxy(etcd);
  await using pc = startProxy(etcd);
  const proxies = [pa, pb, pc];
  await using na = await startNode(etcd, {
    nodeId: ids[0],
    endpoints: pa.endpoint,
  });
  await using nb = await startNode(etcd, {
    nodeId: ids[1],
    endpoints: pb.endpoint,
  });
  await using nc = await startNode(etcd, {
    nodeId: ids[2],
    endpoints: pc.endpoint,
  });
  const nodes = [na, nb, nc];
  const fromRev = (await storeRevision(etcd)) + 1;
  const { spec_id, task_ids: [id] } = await dispatchYaml(
    etcd,
    specYaml(
      "longcut",
      1,
      `'if [ "$BOI_ATTEMPT" = 1 ]; then sleep 3; fi; echo "attempt $BOI_ATTEMPT"'`,
    ),
  );
  const running = await waitFor(`${id} RUNNING`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "RUNNING" ? e.value : undefined;
  }, { intervalMs: 20 });
  const i = ids.indexOf(running.claimant_node_id!);
  const cutNode = nodes[i];
  const t0 = performance.now();
  proxies[i].cut("blackhole");
  const [t] = await waitSpecTerminal(etcd, spec_id, 15_000);
  const rerunAt = since(t0);
  assert.equal(t.state, "DONE");
  assert.notEqual(t.ran_on, cutNode.nodeId);
  assert.equal(t.attempts, 2);
  assert.notEqual(t.fence, running.fence);
  // The cut node's worker finishes too; its result cannot reach etcd.
  await cutNode.waitForLog((l) =>
    l.msg === "worker exited" && l.task_id === id && l.code === 0
  );
  proxies[i].cut("reset"); // fail the hanging finish now, not at its deadline
  await cutNode.waitForLog((l) =>
    l.msg === "result parked in pending flush" && l.task_id === id
  );
  proxies[i].restore();
  const healedAt = since(t0);
  const superseded = await cutNode.waitForLog(
    (l) =>
      (l.msg === "result superseded" || l.msg === "result refused by fence") &&
      l.task_id === id,
    15_000,
  );
  await cutNode.waitForLog((l) =>
    l.msg === "event" && l.event === "task.result_superseded" &&
    l.task_id === id
  );
  console.log(
    `cut ${cutNode.nodeId}: re-run DONE on ${t.ran_on} +${rerunAt} ms, healed +${healedAt} ms, old result: "${superseded.msg}" +${
      since(t0)
    } ms`,
  );
  const history = await envelopeHistory(etcd, spec_id, fromRev);
  assert.deepEqual([...doneCommits(history)], [[id, 1]]);
  const final = await readEnvelope(etcd, id);
  assert.equal(final?.value.ran_on, t.ran_on, "the DONE record was kept");
  assert.equal(final?.value.fence, t.fence);
  // The cut node is back in service with a new lease.
  await cutNode.waitRegistered();
});

Deno.test("every node and the CLI cut off: dispatch exits 3 within 2.5 s and writes nothing, the node counts it, status --stale-ok answers from the cache; after the heal the next dispatch succeeds", async () => {
  // TTL 8 s: the revision comparison below must not see leases expire.
  const TTL_S = 8;
  await using etcd = await startEtcd();
  await using pa = startProxy(etcd);
  await using pb = startProxy(etcd);
  await using pcli = startProxy(etcd);
  await using a = await startNode(etcd, {
    nodeId: "node-a",
    endpoints: pa.endpoint,
    leaseTtlS: TTL_S,
  });
  await using b = await startNode(etcd, {
    nodeId: "node-b",
    endpoints: pb.endpoint,
    leaseTtlS: TTL_S,
  });
  const before = await dispatchYaml(
    pcli.endpoint,
    specYaml("before", 2, "'true'"),
  );
  await waitSpecTerminal(etcd, before.spec_id);
  assert.equal(
    await metric(a.url, "boi_dispatch_rejected_etcd_unreachable_total"),
    0,
  );
  const file = await specFile(specYaml("during", 3, "'echo hi'"));
  // A capacity update in flight at the cut could still land after rev0.
  await quietRevision(etcd);

  for (const p of [pa, pb, pcli]) p.cut("blackhole");
  const cutAt = performance.now();
  const rev0 = await storeRevision(etcd);
  const t0 = performance.now();
  // The node's data dir: where the CLI finds the admin secret with etcd down.
  const r = await cli(pcli.endpoint, [
    "dispatch",
    file,
    "--node",
    a.httpAddr,
  ], { env: { BOI_DATA_DIR: a.dataDir } });
  const took = since(t0);
  const rev1 = await storeRevision(etcd);
  console.log(
    `dispatch through a cut proxy: exit ${r.code} after ${took} ms (process start included): ${r.stderr.trim()}`,
  );
  assert.equal(r.code, 3, r.explain());
  assert.match(r.stderr, /^etcd unreachable: http:\/\/127\.0\.0\.1:\d+: /);
  assert.equal(r.stdout, "");
  assert.ok(took < 2500, `dispatch took ${took} ms to fail`);
  assert.equal(rev1, rev0, "dispatch wrote nothing (revision unchanged)");
  assert.equal(
    await metric(a.url, "boi_dispatch_rejected_etcd_unreachable_total"),
    1,
  );

  // Read-only answers from the node's cached view, stamped stale.
  // (Run together: each waits out the CLI's etcd deadline.)
  const [plain, stale, staleJson] = await Promise.all([
    cli(pcli.endpoint, ["status"]),
    cli(pcli.endpoint, ["status", "--stale-ok", "--node", b.httpAddr]),
    cli(pcli.endpoint, [
      "status",
      "--stale-ok",
      "--json",
      "--node",
      a.httpAddr,
    ]),
  ]);
  assert.equal(plain.code, 3, plain.explain());
  assert.equal(stale.code, 0, stale.explain());
  assert.match(
    stale.stdout,
    /^STALE \(cache age \d+(\.\d)?m?s\) from node node-b: etcd unreachable: /,
  );
  assert.match(stale.stdout, new RegExp(`${before.spec_id}\\s+2\\s`));
  assert.match(stale.stdout, /node-a .* ok/);
  assert.equal(staleJson.code, 0, staleJson.explain());
  const doc = staleJson.json<
    {
      stale: boolean;
      cache_age_ms: number;
      source_node: string;
      specs: { spec_id: string; counts: Record<string, number> }[];
    }
  >();
  assert.equal(doc.stale, true);
  assert.equal(doc.source_node, "node-a");
  assert.ok(doc.cache_age_ms < 30_000);
  assert.deepEqual(doc.specs.map((s) => [s.spec_id, s.counts.DONE]), [[
    before.spec_id,
    2,
  ]]);

  // The nodes say so: /healthz 503 and a log line every 5 s.
  await waitFor("node-a /healthz 503", async () => {
    const h = await healthz(a.url);
    return h.status === 503 &&
      /^etcd_unreachable since=\d+$/.test(String(h.body.reason));
  });
  await a.waitForLog(
    (l) =>
      typeof l.msg === "string" && /^etcd_unreachable since=\d+$/.test(l.msg),
    7000,
  );
  const cutFor = since(cutAt);

  for (const p of [pa, pb, pcli]) p.restore();
  const t1 = performance.now();
  const again = await cli(pcli.endpoint, ["dispatch", file, "--json"]);
  console.log(
    `cut for ${cutFor} ms; first dispatch after the heal: exit ${again.code} after ${
      since(t1)
    } ms`,
  );
  assert.equal(again.code, 0, again.explain());
  const { spec_id } = again.json<{ spec_id: string }>();
  const done = await waitSpecTerminal(etcd, spec_id);
  assert.deepEqual(done.map((t) => t.state), ["DONE", "DONE", "DONE"]);
});
