/**
 * Provisioning in a secure cluster (issue 14 with issue 13): etcd requires
 * cluster certificates, so the provisioned node can reach it only through
 * its join — the provisioner hands it a token and the join URL, never an
 * endpoint or a certificate — and then runs the task.
 */
import assert from "node:assert/strict";
import { makeTempDir, startNode, startSecureEtcd } from "../harness/mod.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import {
  doneOnOneNode,
  events,
  localProvisionerEntry,
  macSpec,
  provisionerAdmin,
  provisionReqs,
} from "./provision_util.ts";

Deno.test("secure mode: the provisioned node joins with its token, reaches etcd with its certificate, runs the tasks", async () => {
  const a = await provisionerAdmin("prov-sec-a", localProvisionerEntry(), {
    dataDir: await makeTempDir("boi-prov-sec-a-"),
  });
  const secure = await startSecureEtcd(a, {
    dataDirPrefix: "boi-etcd-prov-sec-",
  });
  await using etcd = secure.etcd;
  const { certs } = secure;
  await using admin = await startNode(etcd, a);
  const { spec_id } = await dispatchTo(etcd, macSpec("secmac", 2), [
    "--certs",
    certs,
  ]);
  const provisioned = await doneOnOneNode(
    etcd,
    spec_id,
    2,
    "the tasks DONE on a provisioned node",
  );
  assert.match(provisioned, /^p-[0-9a-f]{8}-1-[0-9a-z]+$/);
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
