/**
 * A secure cluster whose nodes are not on 127.0.0.1: each node's HTTPS
 * certificate must name the host of its `BOI_HTTP_ADDR`, or the CLI and the
 * other nodes (tail forwarding) refuse it. Other loopback addresses stand
 * for other machines' (Linux routes all of 127/8 to `lo`).
 */
import assert from "node:assert/strict";
import {
  cli,
  makeTempDir,
  notYet,
  readEnvelope,
  startNode,
  startSecureEtcd,
  waitFor,
} from "../harness/mod.ts";
import { x509 } from "../../node/identity/x509.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import { adminNode, joiner, mint } from "./secure_util.ts";

/** The IP and DNS names a PEM certificate carries. */
function sans(pem: string): string[] {
  const ext = new x509.X509Certificate(pem).getExtension(
    x509.SubjectAlternativeNameExtension,
  );
  return (ext?.names.items ?? []).map((n) => `${n.type}:${n.value}`).sort();
}

Deno.test("secure mode off 127.0.0.1: node certificates name the advertised host, so CLI and tail forwarding reach every node", async () => {
  const aDir = await makeTempDir("boi-secaddr-a-");
  const a = adminNode("sa-a", {
    dataDir: aDir,
    httpHost: "127.0.0.2",
    env: { BOI_HTTP_HOSTS: "boi-a.test" },
  });
  const secure = await startSecureEtcd(a, {
    dataDirPrefix: "boi-etcd-secaddr-",
  });
  await using etcd = secure.etcd;
  await using nodeA = await startNode(etcd, a);
  const withCerts = ["--certs", secure.certs];
  const token = await mint(etcd, nodeA, [
    "--caps",
    "x-test-pool=far",
    ...withCerts,
  ]);
  await using nodeB = await joiner(etcd, "sa-b", token, a.joinPort, {
    caps: "x-test-pool=far",
    httpHost: "127.0.0.3",
    env: { BOI_ETCD_ENDPOINTS: "" },
  });
  assert.match(nodeB.httpAddr, /^127\.0\.0\.3:/);

  // What each certificate names: its node id, localhost, 127.0.0.1, the
  // advertised host and (for A) the names of BOI_HTTP_HOSTS.
  const certA = await Deno.readTextFile(`${aDir}/identity/node.crt`);
  const certB = await Deno.readTextFile(`${nodeB.dataDir}/identity/node.crt`);
  for (const want of ["dns:sa-a", "dns:localhost", "dns:boi-a.test"]) {
    assert.ok(sans(certA).includes(want), `A's SANs ${sans(certA)}: ${want}`);
  }
  for (const want of ["ip:127.0.0.1", "ip:127.0.0.2"]) {
    assert.ok(sans(certA).includes(want), `A's SANs ${sans(certA)}: ${want}`);
  }
  for (const want of ["dns:sa-b", "ip:127.0.0.1", "ip:127.0.0.3"]) {
    assert.ok(sans(certB).includes(want), `B's SANs ${sans(certB)}: ${want}`);
  }

  const { task_ids: [id] } = await dispatchTo(
    etcd,
    `name: far\ntasks:\n  - id: t\n    run: "echo far-hello"\n    requires: { x-test-pool: far }\n`,
    withCerts,
  );
  await waitFor(`${id} DONE`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "DONE" ? e.value : notYet(e?.value.state);
  });
  // The CLI reaches B at 127.0.0.3 (its advertised addr), verified by the CA.
  const tail = await cli(etcd, ["tail", id, ...withCerts]);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, "far-hello\n");
  // Node to node: A forwards the tail of B's log, verifying B at 127.0.0.3.
  const pem = (f: string) => Deno.readTextFile(`${secure.certs}/${f}`);
  const client = Deno.createHttpClient({
    caCerts: [await pem("ca.crt")],
    cert: await pem("client.crt"),
    key: await pem("client.key"),
  });
  try {
    const fwd = await fetch(`https://${nodeA.httpAddr}/internal/tail/${id}`, {
      client,
    });
    assert.equal(fwd.status, 200, `tail forwarded by sa-a: ${fwd.status}`);
    assert.equal(await fwd.text(), "far-hello\n");
    const r = await cli(etcd, [
      "plugin",
      "restart",
      "pool",
      "--node",
      "sa-b",
      ...withCerts,
    ]);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    client.close();
  }

  // Moved to another address: the admin node holds the CA key and issues
  // itself a certificate that names the new host; a joined node cannot, and
  // says at start what its certificate lacks.
  await nodeA.stop();
  await using movedA = await startNode(etcd, { ...a, httpHost: "127.0.0.4" });
  const reissued = movedA.logs().find((l) =>
    l.msg === "node certificate reissued with the host it is reached by"
  );
  assert.deepEqual(reissued?.added, ["127.0.0.4"], movedA.logTail());
  await mint(etcd, movedA, ["--caps", "x-test-pool=far", ...withCerts]);
  await nodeB.stop();
  await using movedB = await startNode(etcd, {
    nodeId: "sa-b",
    dataDir: nodeB.dataDir,
    caps: "x-test-pool=far",
    httpHost: "127.0.0.5",
    env: { BOI_ETCD_ENDPOINTS: "" },
  });
  const warned = movedB.logs().find((l) =>
    /does not name the host it is reached by/.test(String(l.msg))
  );
  assert.deepEqual(warned?.missing, ["127.0.0.5"], movedB.logTail());
  const refused = await cli(etcd, [
    "plugin",
    "restart",
    "pool",
    "--node",
    "sa-b",
    ...withCerts,
  ]);
  assert.notEqual(refused.code, 0, "a certificate without 127.0.0.5 passed");
  assert.match(
    refused.stderr,
    /cannot reach node sa-b at 127\.0\.0\.5:\d+: invalid peer certificate: certificate not valid for name "127\.0\.0\.5"/,
  );
});
