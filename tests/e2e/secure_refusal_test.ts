/**
 * Issue 13 test 4: every refused join leaves no trace in etcd (key set and
 * revision compared): tampered, expired, reused (also two concurrent joins
 * with one token: exactly one wins), another cluster's token, a join asking
 * for cluster_admin, a CSR asking for a wildcard name, the id of a granted admin that is down (its grant would
 * make the joiner admin), and a server that fails the token's fingerprint.
 */
import assert from "node:assert/strict";
import { notYet, startEtcd, startNode, waitFor } from "../harness/mod.ts";
import { createCa, issueKeyAndCert } from "../../node/identity/ca.ts";
import { signToken } from "../../node/identity/token.ts";
import { generateKeyPair, SIGN_ALG, x509 } from "../../node/identity/x509.ts";
import {
  adminNode,
  init,
  mint,
  ok,
  refusedJoin,
  settled,
  snapshot,
} from "./secure_util.ts";

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
    assert.match(r.text, why, `${what}: ${r.text}`);
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

  // A CSR asking for a name the admin does not sign (a wildcard would cover
  // every host of the domain): refused before the token is consumed.
  const keys = await generateKeyPair();
  const wild = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=j-wild",
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{
        type: "dns",
        value: "*.example.com",
      }]),
    ],
  });
  await refusedCleanly(
    "a wildcard name in the CSR",
    () =>
      postJoin({
        token: good,
        node_id: "j-wild",
        caps: {},
        csr: wild.toString("pem"),
      }),
    /join refused: bad csr: it asks for the DNS name \\"\*\.example\.com\\": a host name like \\"build-1\.example\.com\\" is expected \(no wildcards\)/,
  );

  // The id of an admin that is down: its grant outlives it, so a join under
  // that id would register with cluster_admin. Granted while not live (the
  // grant record alone), then a valid token asks for that id.
  await ok(etcd, [
    "cluster",
    "admin",
    "grant",
    "j-ghost-admin",
    "--node",
    nodeA.httpAddr,
  ]);
  await refusedCleanly(
    "the id of an admin that is down",
    () => join("j-ghost-admin", good),
    /node id j-ghost-admin holds a cluster_admin grant: a join cannot take that id/,
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
