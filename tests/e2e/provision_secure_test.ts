/**
 * Provisioning in a secure cluster (issue 14 with issue 13): etcd requires
 * cluster certificates, so the provisioned node can reach it only through
 * its join — the provisioner hands it a token and the join URL, never an
 * endpoint or a certificate — and then runs the task.
 */
import assert from "node:assert/strict";
import {
  cli,
  listEnvelopes,
  makeTempDir,
  notYet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import { adminNode } from "./secure_util.ts";
import { pluginsFile } from "./plugin_util.ts";
import {
  events,
  localProvisionerEntry,
  macSpec,
  provisionReqs,
} from "./provision_util.ts";

Deno.test("secure mode: the provisioned node joins with its token, reaches etcd with its certificate, runs the tasks", async () => {
  const etcdDir = await makeTempDir("boi-etcd-prov-sec-");
  const plugins = await pluginsFile({
    provisioner: localProvisionerEntry(),
  });
  const a = adminNode("prov-sec-a", {
    dataDir: await makeTempDir("boi-prov-sec-a-"),
    env: { BOI_PLUGINS: plugins },
  });
  let certs: string;
  {
    // Open first: the admin node creates the CA and the etcd certificates.
    await using open = await startEtcd({ dataDir: etcdDir });
    await using nodeA = await startNode(open, a);
    const r = await cli(open, [
      "cluster",
      "init",
      "--secure",
      "--node",
      nodeA.httpAddr,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    certs = JSON.parse(r.stdout).certs_dir;
  }
  const pem = async (f: string) => await Deno.readTextFile(`${certs}/${f}`);
  await using etcd = await startEtcd({
    dataDir: etcdDir,
    tls: {
      caFile: `${certs}/ca.crt`,
      certFile: `${certs}/etcd-server.crt`,
      keyFile: `${certs}/etcd-server.key`,
      client: {
        ca: await pem("ca.crt"),
        cert: await pem("client.crt"),
        key: await pem("client.key"),
      },
    },
  });
  await using admin = await startNode(etcd, a);
  const { spec_id } = await dispatchTo(etcd, macSpec("secmac", 2), [
    "--certs",
    certs,
  ]);
  const done = await waitFor(
    "the tasks DONE on a provisioned node",
    async () => {
      const envs = await listEnvelopes(etcd, { specId: spec_id });
      return envs.length === 2 && envs.every((e) => e.value.state === "DONE")
        ? envs
        : notYet(envs.map((e) => `${e.value.state} ${e.value.last_error}`));
    },
    { timeoutMs: 60_000 },
  );
  const ranOn = new Set(done.map((e) => e.value.ran_on));
  assert.equal(ranOn.size, 1);
  const provisioned = [...ranOn][0]!;
  assert.match(provisioned, /^p-[0-9a-f]{12}-1$/);
  const fulfilled = await admin.waitForLog((l) =>
    l.msg === "event" && l.event === "provision.fulfilled"
  );
  assert.equal(fulfilled.node_id, provisioned);
  assert.equal(events(admin, "provision.requested").length, 1);
  const [req] = await provisionReqs(etcd);
  assert.equal(req.value.fulfilled_by, provisioned);
  // The node learnt etcd from its join answer and holds a cluster certificate.
  const nodeDir =
    `${a.dataDir}/plugins/provisioner/nodes/${provisioned}/identity`;
  const names = [...Deno.readDirSync(nodeDir)].map((e) => e.name).sort();
  assert.ok(names.length > 0, `identity files in ${nodeDir}`);
});
