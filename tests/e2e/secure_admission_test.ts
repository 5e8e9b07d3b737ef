/**
 * Issue 13 tests 1–3 (open etcd): cluster init and the admin gate, minting
 * refused on a non-admin node, a token admitting a node that then runs a
 * pinned task (and rejoins with its stored certificate). Test 4, the refused
 * joins: secure_refusal_test.ts.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  cli,
  notYet,
  readCaps,
  readEnvelope,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import {
  adminNode,
  init,
  joiner,
  mint,
  settled,
  snapshot,
} from "./secure_util.ts";

Deno.test("cluster init creates the CA record and makes the node admin; a second init changes nothing", async () => {
  await using etcd = await startEtcd();
  const a = adminNode("sec-a");
  await using nodeA = await startNode(etcd, a);
  await using nodeB = await startNode(etcd, { nodeId: "sec-b" });
  const fp = await init(etcd, nodeA);

  const rec = await etcd.client().get("/boi/cluster/ca").json() as {
    cert_pem: string;
    fingerprint: string;
  };
  assert.equal(rec.fingerprint, fp);
  assert.match(rec.cert_pem, /^-----BEGIN CERTIFICATE-----/);
  const caps = await readCaps(etcd, "sec-a");
  assert.equal(caps?.value.static.cluster_admin, "true");
  assert.equal(
    (await readCaps(etcd, "sec-b"))?.value.static.cluster_admin,
    undefined,
  );
  const st = await Deno.stat(`${nodeA.dataDir}/ca/ca.key`);
  assert.equal(st.mode! & 0o777, 0o600, "ca.key must be 0600");

  const status = await cli(etcd, ["cluster", "status"]);
  assert.match(
    status.stdout,
    new RegExp(`^identity: CA ${fp} \\(init\\), admins: sec-a$`, "m"),
  );
  const before = await settled(etcd);
  for (const n of [nodeA, nodeB]) {
    const r = await cli(etcd, ["cluster", "init", "--node", n.httpAddr]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `cluster already initialised: CA fingerprint ${fp}.*nothing changed`,
      ),
    );
    assert.equal(r.stdout, "");
  }
  assert.deepEqual(
    await snapshot(etcd),
    before,
    "a refused init must change nothing",
  );
  await assert.rejects(
    Deno.stat(`${nodeB.dataDir}/ca/ca.key`),
    Deno.errors.NotFound,
  );

  // The flag survives a restart: the node reads its grant back.
  await nodeA.restart();
  await waitFor("sec-a admin after restart", async () => {
    const c = await readCaps(etcd, "sec-a");
    return c?.value.static.cluster_admin === "true"
      ? c
      : notYet(c?.value.static);
  });
  const list = await cli(etcd, ["cluster", "admin", "list", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    JSON.parse(list.stdout).map((r: { node_id: string }) => r.node_id),
    ["sec-a"],
  );
});

Deno.test("minting on a non-admin node: PermissionDenied, cluster.mint_denied, no token key", async () => {
  await using etcd = await startEtcd();
  await using nodeA = await startNode(etcd, adminNode("sec-a"));
  await using nodeB = await startNode(etcd, {
    nodeId: "sec-b",
    caps: "x-test-pool=b",
  });
  await init(etcd, nodeA);
  const before = await settled(etcd);
  const r = await cli(etcd, ["token", "mint", "--node", nodeB.httpAddr]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^PermissionDenied: node sec-b is not cluster_admin/);
  assert.equal(r.stdout, "");
  await nodeB.waitForLog((l) =>
    l.event === "cluster.mint_denied" && l.node_id === "sec-b"
  );
  assert.deepEqual(await snapshot(etcd), before);
  assert.equal(
    (await etcd.client().getAll().prefix("/boi/join-tokens/").keys()).length,
    0,
  );

  // Granting is admin-gated too: sec-b cannot grant itself; sec-a can grant it, then sec-b mints.
  const self = await cli(etcd, [
    "cluster",
    "admin",
    "grant",
    "sec-b",
    "--node",
    nodeB.httpAddr,
  ]);
  assert.equal(self.code, 1);
  assert.match(self.stderr, /PermissionDenied/);
  assert.deepEqual(await snapshot(etcd), before);
  /**
   * Runs a task on sec-b, waits until sec-b itself has rewritten its caps
   * (idle again), and checks every version it wrote meanwhile (etcd history)
   * carried `admin` as the flag: never a stale one, not even for a moment.
   */
  const runOnB = async (name: string, admin: string | undefined) => {
    const written = (await readCaps(etcd, "sec-b"))!.mod_revision; // by the admin path
    const { task_ids: [id] } = await dispatchTo(
      etcd,
      `name: ${name}\ntasks:\n  - id: t\n    run: "sleep 1.5"\n    requires: { x-test-pool: b }\n`,
    );
    const last = await waitFor(`${id} DONE, sec-b busy then idle`, async () => {
      const e = await readEnvelope(etcd, id);
      const c = await readCaps(etcd, "sec-b");
      return e?.value.state === "DONE" && c?.value.dynamic.workers_busy === 0 &&
          c.mod_revision > written
        ? c.mod_revision
        : notYet({ state: e?.value.state, caps: c?.value });
    });
    const seen: (string | undefined)[] = [];
    let prev = written;
    for (let rev = written + 1; rev <= last; rev++) {
      const res = await etcd.client().kv.range({
        key: Buffer.from("/boi/caps/sec-b"),
        revision: String(rev),
      });
      const kv = res.kvs[0];
      if (!kv || Number(kv.mod_revision) === prev) continue;
      prev = Number(kv.mod_revision);
      seen.push(JSON.parse(kv.value.toString()).static.cluster_admin);
    }
    assert.ok(seen.length >= 1, "sec-b rewrote its caps");
    assert.deepEqual(
      seen,
      seen.map(() => admin),
      `flags sec-b wrote: ${JSON.stringify(seen)}`,
    );
  };
  const g = await cli(etcd, [
    "cluster",
    "admin",
    "grant",
    "sec-b",
    "--node",
    nodeA.httpAddr,
  ]);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(
    (await readCaps(etcd, "sec-b"))?.value.static.cluster_admin,
    "true",
  );
  // The live node republishes its caps (a task changes workers_busy): the flag stays.
  await runOnB("granted", "true");
  assert.equal(
    (await readCaps(etcd, "sec-b"))?.value.static.cluster_admin,
    "true",
  );
  // sec-b is admin now, but the CA key stays on sec-a: minting there says so.
  const m = await cli(etcd, ["token", "mint", "--node", nodeB.httpAddr]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /does not hold the CA key/);
  const rv = await cli(etcd, [
    "cluster",
    "admin",
    "revoke",
    "sec-b",
    "--node",
    nodeA.httpAddr,
  ]);
  assert.equal(rv.code, 0, rv.stderr);
  assert.equal(
    (await readCaps(etcd, "sec-b"))?.value.static.cluster_admin,
    undefined,
  );
  // Revoked on a live node: neither its next caps publish nor a restart brings the flag back.
  await runOnB("revoked", undefined);
  assert.equal(
    (await readCaps(etcd, "sec-b"))?.value.static.cluster_admin,
    undefined,
  );
  await nodeB.restart();
  assert.equal(
    (await readCaps(etcd, "sec-b"))?.value.static.cluster_admin,
    undefined,
  );
});

Deno.test("a token admits a new node; it registers and runs a task pinned to its caps", async () => {
  await using etcd = await startEtcd();
  const a = adminNode("sec-a");
  await using nodeA = await startNode(etcd, a);
  await init(etcd, nodeA);
  const token = await mint(etcd, nodeA, [
    "--caps",
    "x-test-pool=joined",
    "--ttl",
    "60s",
  ]);
  assert.equal(
    (await etcd.client().getAll().prefix("/boi/join-tokens/").keys()).length,
    1,
  );
  await using nodeC = await joiner(etcd, "sec-c", token, a.joinPort, {
    caps: "x-test-pool=joined",
    // Endpoints come from the join answer.
    env: { BOI_ETCD_ENDPOINTS: "" },
  });
  assert.equal(
    (await etcd.client().getAll().prefix("/boi/join-tokens/").keys()).length,
    0,
    "the token is consumed",
  );
  const key = await Deno.stat(`${nodeC.dataDir}/identity/node.key`);
  assert.equal(key.mode! & 0o777, 0o600);
  const { task_ids: [id] } = await dispatchTo(
    etcd,
    `name: pinned\ntasks:\n  - id: t\n    run: "echo hi"\n    requires: { x-test-pool: joined }\n`,
  );
  const done = await waitFor(`${id} DONE`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "DONE" ? e.value : notYet(e?.value.state);
  });
  assert.equal(done.ran_on, "sec-c");

  // Restart: the stored certificate, not the (spent) token.
  await nodeC.restart();
  await nodeC.waitForLog((l) =>
    String(l.msg).startsWith("stored certificate found")
  );
});
