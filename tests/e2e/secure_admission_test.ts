/**
 * Issue 13 tests 1–4 (open etcd): cluster init and the admin gate, minting
 * refused on a non-admin node, a token admitting a node that then runs a
 * pinned task, and every refused join leaving no trace in etcd.
 */
import assert from "node:assert/strict";
import {
  cli,
  notYet,
  readCaps,
  readEnvelope,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { createCa, issueKeyAndCert } from "../../node/identity/ca.ts";
import { signToken } from "../../node/identity/token.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import {
  adminNode,
  init,
  joiner,
  mint,
  refusedJoin,
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
  /** Runs a task on sec-b and waits until its caps show it idle again. */
  const runOnB = async (name: string) => {
    const { task_ids: [id] } = await dispatchTo(
      etcd,
      `name: ${name}\ntasks:\n  - id: t\n    run: "sleep 1.5"\n    requires: { x-test-pool: b }\n`,
    );
    await waitFor(`${id} DONE, sec-b busy then idle`, async () => {
      const e = await readEnvelope(etcd, id);
      const c = await readCaps(etcd, "sec-b");
      return e?.value.state === "DONE" && c?.value.dynamic.workers_busy === 0
        ? true
        : notYet({ state: e?.value.state, caps: c?.value });
    });
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
  await runOnB("granted");
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
  await runOnB("revoked");
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

/** Never parsed: every refusal here comes before the CSR is read. */
const CSR_STUB = "-----BEGIN CERTIFICATE REQUEST-----x";

Deno.test("refused joins leave no trace in etcd: tampered, expired, reused, foreign, cluster_admin, wrong server", async () => {
  await using etcd = await startEtcd();
  const a = adminNode("sec-a");
  await using nodeA = await startNode(etcd, a);
  const fp = await init(etcd, nodeA);
  const url = `https://localhost:${a.joinPort}`;
  const join = (id: string, token: string, bootstrap = url, caps?: string) =>
    refusedJoin(etcd, id, {
      BOI_JOIN_TOKEN: token,
      BOI_BOOTSTRAP_URL: bootstrap,
    }, caps ? { caps } : {});
  const refusedCleanly = async (
    what: string,
    attempt: () => Promise<{ code: number; text: string }>,
    why: RegExp,
  ) => {
    const before = await settled(etcd);
    const r = await attempt();
    assert.equal(r.code, 1, `${what}: ${r.text}`);
    assert.match(r.text, why, what);
    assert.deepEqual(await snapshot(etcd), before, `${what} left a trace`);
  };

  const caPem =
    (await etcd.client().get("/boi/cluster/ca").json() as { cert_pem: string })
      .cert_pem;
  /** A raw `POST /v1/join` over TLS verified against the cluster CA. */
  const postJoin = async (body: unknown) => {
    const client = Deno.createHttpClient({ caCerts: [caPem] });
    const res = await fetch(`${url}/v1/join`, {
      method: "POST",
      client,
      body: JSON.stringify(body),
    });
    const text = await res.text();
    client.close();
    return { code: res.status === 403 ? 1 : 0, text };
  };
  const good = await mint(etcd, nodeA);
  const [h, p, s] = good.split(".");
  const claims = JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/")));
  const forgedPayload = btoa(
    JSON.stringify({ ...claims, cap_hint: { "x-evil-root": "yes" } }),
  )
    .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  await refusedCleanly(
    "tampered",
    () =>
      join("j-tamper", `${h}.${forgedPayload}.${s}`, url, "x-evil-root=yes"),
    /signature does not verify/,
  );

  const short = await mint(etcd, nodeA, ["--ttl", "2s"]);
  await new Promise((r) => setTimeout(r, 2500));
  await refusedCleanly(
    "expired",
    () => join("j-expired", short),
    /token expired at/,
  );

  const other = (await createCa("other")).ca;
  const foreign = (await signToken(other, {}, 300)).token;
  await refusedCleanly(
    "foreign CA",
    () => join("j-foreign", foreign),
    /presents CA fingerprint [0-9a-f]{64}, the token expects [0-9a-f]{64}/,
  );
  await refusedCleanly(
    "foreign CA, sent anyway",
    () =>
      postJoin({
        token: foreign,
        node_id: "j-foreign",
        caps: {},
        csr: CSR_STUB,
      }),
    /join refused: the token belongs to another cluster/,
  );
  const forged =
    (await signToken({ ...other, fingerprint: fp }, {}, 300)).token;
  await refusedCleanly(
    "signed by another CA, our fingerprint",
    () => join("j-forged", forged),
    /signature does not verify/,
  );

  // cluster_admin in caps: config refuses it, so ask the join server directly.
  await refusedCleanly(
    "cluster_admin",
    () =>
      postJoin({
        token: good,
        node_id: "j-admin",
        caps: { cluster_admin: "true" },
        csr: CSR_STUB,
      }),
    /caps must not contain cluster_admin/,
  );

  // A server whose certificate chain is not the token's CA: the token is never sent.
  const fake = await issueKeyAndCert(other, {
    cn: "fake",
    dns: ["localhost"],
    ips: ["127.0.0.1"],
    server: true,
    client: false,
  });
  let posted = 0;
  const fakeServer = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: fake.cert_pem,
    key: fake.key_pem,
    onListen() {},
  }, (req) => {
    if (new URL(req.url).pathname === "/v1/join") posted++;
    return new Response(other.cert_pem);
  });
  await refusedCleanly(
    "wrong server",
    () => join("j-mitm", good, `https://localhost:${fakeServer.addr.port}`),
    /presents CA fingerprint .* not sending the token/,
  );
  assert.equal(
    posted,
    0,
    "the token went to a server that failed the fingerprint check",
  );
  // Same, when it serves our CA certificate but cannot prove it holds a cert signed by it.
  const liar = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: fake.cert_pem,
    key: fake.key_pem,
    onListen() {},
  }, (req) => {
    if (new URL(req.url).pathname === "/v1/join") posted++;
    return new Response(caPem);
  });
  await refusedCleanly(
    "lying server",
    () => join("j-liar", good, `https://localhost:${liar.addr.port}`),
    /join at .* failed/,
  );
  assert.equal(posted, 0);
  await fakeServer.shutdown();
  await liar.shutdown();

  // The good token survived all that; two joins race on it: exactly one wins.
  const racers = await Promise.all(
    ["j-one", "j-two"].map((id) =>
      startNode(etcd, {
        nodeId: id,
        waitRegistered: false,
        env: { BOI_JOIN_TOKEN: good, BOI_BOOTSTRAP_URL: url },
      })
    ),
  );
  try {
    const outcome = await waitFor(
      "one racer registered, the other exited",
      async () => {
        const exited = racers.filter((r) => r.exitStatus !== null);
        const live = await etcd.client().getAll().prefix("/boi/nodes/j-")
          .keys();
        return exited.length === 1 && live.length === 1
          ? { exited, live }
          : notYet({ exited: exited.length, live });
      },
      { timeoutMs: 30_000 },
    );
    assert.match(outcome.exited[0].logTail(50), /already used/);
    assert.equal(outcome.exited[0].exitStatus?.code, 1);
  } finally {
    await Promise.all(racers.map((r) => r[Symbol.asyncDispose]()));
  }
  // Spent now: a third try is refused cleanly.
  await refusedCleanly("reused", () => join("j-three", good), /already used/);
});
