/**
 * Issue 14 test 1: a task no node can run makes the admin node's reference
 * provisioner start a node that can; the tasks run there; one request for
 * five tasks. Tests 2–3 (failures): provision_failure_test.ts; test 4
 * (admin killed): provision_takeover_test.ts.
 */
import assert from "node:assert/strict";
import {
  cli,
  listEnvelopes,
  notYet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import { init } from "./secure_util.ts";
import {
  events,
  joinTokenKeys,
  localProvisionerEntry,
  macSpec,
  provisionerAdmin,
  provisionReqs,
} from "./provision_util.ts";

Deno.test("unschedulable tasks → the reference provisioner starts a mac node, the tasks run on it, one request for 5 tasks", async () => {
  await using etcd = await startEtcd();
  await using admin = await startNode(
    etcd,
    await provisionerAdmin("prov-a", localProvisionerEntry()),
  );
  await init(etcd, admin);
  const t0 = Date.now();
  const { spec_id, task_ids } = await dispatchTo(etcd, macSpec("mac5"));
  assert.equal(task_ids.length, 5);

  // While the node comes up, the tasks say what is happening.
  const note = await waitFor("a provisioning note on the tasks", async () => {
    const envs = await listEnvelopes(etcd, { specId: spec_id });
    const e = envs.find((e) => e.value.last_error?.startsWith("provisioning"));
    return e ? e.value.last_error : notYet(envs.map((e) => e.value.last_error));
  }, { timeoutMs: 15_000 });
  assert.match(
    note!,
    /^provisioning node for \{"x-test-pool":"mac"\} \(req [0-9a-f]{8}-1-[0-9a-z]+\)$/,
  );
  const status = await cli(etcd, ["cluster", "status"]);
  assert.match(
    status.stdout,
    /^provisioning: req [0-9a-f]{8}-1-[0-9a-z]+ for \{"x-test-pool":"mac"\}/m,
  );

  const done = await waitFor("all 5 tasks DONE", async () => {
    const envs = await listEnvelopes(etcd, { specId: spec_id });
    return envs.length === 5 && envs.every((e) => e.value.state === "DONE")
      ? envs
      : notYet(envs.map((e) => `${e.value.task_id} ${e.value.state}`));
  }, { timeoutMs: 60_000 });
  const ranOn = new Set(done.map((e) => e.value.ran_on));
  assert.equal(ranOn.size, 1, `ran on ${[...ranOn]}`);
  const provisioned = [...ranOn][0]!;
  assert.match(provisioned, /^p-[0-9a-f]{8}-1-[0-9a-z]+$/);
  for (const e of done) assert.equal(e.value.last_error, null);

  const requested = events(admin, "provision.requested");
  assert.equal(requested.length, 1, "one request for 5 tasks");
  const fulfilled = await admin.waitForLog(
    (l) => l.msg === "event" && l.event === "provision.fulfilled",
  );
  assert.equal(fulfilled.node_id, provisioned);
  assert.equal(typeof fulfilled.latency_ms, "number");
  assert.ok(
    (fulfilled.latency_ms as number) > 0 &&
      (fulfilled.latency_ms as number) < Date.now() - t0,
    `latency ${fulfilled.latency_ms} ms`,
  );
  const reqs = await provisionReqs(etcd);
  assert.equal(reqs.length, 1);
  assert.equal(reqs[0].value.fulfilled_by, provisioned);
  assert.equal(reqs[0].value.requested_by, "prov-a");
  assert.match(reqs[0].value.allocation_id ?? "", /^local-/);
  assert.deepEqual(await joinTokenKeys(etcd), [], "the token was consumed");
  assert.deepEqual(events(admin, "provision.failed"), []);
  // The provisioned node is the plugin's child: it stops with the admin node.
  await admin.stop();
  await waitFor("the provisioned node gone", async () => {
    const r = await etcd.client().get(`/boi/nodes/${provisioned}`).string();
    return r === null ? true : notYet(r);
  }, { timeoutMs: 20_000 });
});
