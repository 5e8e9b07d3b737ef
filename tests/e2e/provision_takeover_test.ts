/**
 * Issue 14 test 4: the admin node that opened a request is killed; the
 * request expires with its lease (shortened for the test), and another
 * admin node — granted, and holding a copy of the CA key as a standby
 * admin must (docs/operations.md) — takes over provisioning.
 */
import assert from "node:assert/strict";
import {
  cli,
  type EtcdLike,
  makeTempDir,
  type NodeProc,
  notYet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import { init } from "./secure_util.ts";
import {
  doneOnOneNode,
  localProvisionerEntry,
  macSpec,
  mockProvisionerEntry,
  provisionerAdmin,
  provisionReqs,
} from "./provision_util.ts";

/** Long enough that prov-a is killed well before its request's lease ends. */
const REQ_TTL_S = 8;

/**
 * prov-a: the first admin, initialised, whose provisioner says yes and never
 * delivers (its request stays open); `env` for its node.
 */
async function startNeverDelivering(
  etcd: EtcdLike,
  record: string,
  env: Record<string, string>,
): Promise<NodeProc> {
  const a = await startNode(
    etcd,
    await provisionerAdmin(
      "prov-a",
      mockProvisionerEntry(record, { BOI_MOCK_PROVISION_NEVER_JOINS: "1" }),
      { env },
    ),
  );
  await init(etcd, a);
  return a;
}

/** prov-a's open request, once its Allocate has answered. */
function provARequest(etcd: EtcdLike) {
  return waitFor("prov-a's request", async () => {
    const rs = await provisionReqs(etcd);
    return rs.length === 1 && rs[0].value.allocation_id ? rs : notYet(rs);
  }, { timeoutMs: 15_000 });
}

/** `cluster admin grant <node>`, asked of admin `a`. */
async function grantAdmin(etcd: EtcdLike, a: NodeProc, node: string) {
  const r = await cli(etcd, [
    "cluster",
    "admin",
    "grant",
    node,
    "--node",
    a.httpAddr,
  ]);
  assert.equal(r.code, 0, r.stderr);
}

/**
 * prov-b: a standby admin with the reference provisioner, the CA key copied
 * to its data dir by the operator (docs/operations.md); not admin yet.
 */
async function startStandby(
  etcd: EtcdLike,
  a: NodeProc,
  env: Record<string, string> = {},
): Promise<NodeProc> {
  const dirB = await makeTempDir("boi-prov-b-");
  await Deno.mkdir(`${dirB}/ca`, { mode: 0o700 });
  for (const f of ["ca.key", "ca.crt"]) {
    await Deno.copyFile(`${a.dataDir}/ca/${f}`, `${dirB}/ca/${f}`);
  }
  await Deno.chmod(`${dirB}/ca/ca.key`, 0o600);
  const b = await startNode(
    etcd,
    await provisionerAdmin("prov-b", localProvisionerEntry(), {
      dataDir: dirB,
      env,
    }),
  );
  await b.waitForLog((l) => l.msg === "join listener up");
  return b;
}

Deno.test("admin killed with a request open → the request expires with its lease; a granted standby admin provisions", async () => {
  await using etcd = await startEtcd();
  const record = `${await makeTempDir("boi-mock-prov-")}/calls.jsonl`;
  await using a = await startNeverDelivering(etcd, record, {
    BOI_PROVISION_REQ_TTL_S: String(REQ_TTL_S),
  });

  await using b = await startStandby(etcd, a, {
    BOI_PROVISION_REQ_TTL_S: String(REQ_TTL_S),
  });

  const { spec_id } = await dispatchTo(etcd, macSpec("takeover", 2));
  const [openA] = await provARequest(etcd);
  assert.equal(openA.value.requested_by, "prov-a");
  assert.notEqual(openA.lease, "0");
  await grantAdmin(etcd, a, "prov-b");
  // While prov-a's request is open, the new admin does not open another.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(
    (await provisionReqs(etcd)).map((r) => r.value.req_id),
    [openA.value.req_id],
  );
  assert.deepEqual(
    b.logs().filter((l) => l.msg === "provision request opened"),
    [],
  );

  a.kill("SIGKILL");
  const killedAt = Date.now();
  assert.ok(
    killedAt < openA.value.requested_at + REQ_TTL_S * 1000,
    "killed while the request's lease still held",
  );
  await waitFor("prov-a's request gone with its lease", async () => {
    const rs = await provisionReqs(etcd);
    return rs.every((r) => r.value.req_id !== openA.value.req_id)
      ? true
      : notYet(rs.map((r) => r.value.req_id));
  }, { timeoutMs: (REQ_TTL_S + 5) * 1000 });

  const provisioned = await doneOnOneNode(
    etcd,
    spec_id,
    2,
    "the tasks DONE on prov-b's provisioned node",
  );
  assert.match(
    provisioned,
    /^p-[0-9a-f]{8}-2-[0-9a-z]+$/,
    "the second request's node",
  );
  const opened = b.logs().filter((l) => l.msg === "provision request opened");
  assert.equal(opened.length, 1, "prov-b opened one request");
  const fulfilled = await b.waitForLog((l) =>
    l.msg === "event" && l.event === "provision.fulfilled"
  );
  assert.equal(fulfilled.node_id, provisioned);
  const rs = await provisionReqs(etcd);
  assert.equal(rs.length, 1);
  assert.equal(rs[0].value.requested_by, "prov-b");
  // Opened only once prov-a's request had expired with its lease, after the kill.
  assert.ok(
    rs[0].value.requested_at >= killedAt &&
      rs[0].value.requested_at >=
        openA.value.requested_at + REQ_TTL_S * 1000 - 1000,
    `prov-b opened at ${
      rs[0].value.requested_at
    }; prov-a's opened at ${openA.value.requested_at}, killed at ${killedAt}`,
  );
  assert.equal(rs[0].value.fulfilled_by, provisioned);
});

Deno.test("admin killed with a request open → past its deadline a granted standby admin closes it (Deallocate, a counted failure) and provisions, long before its lease ends", async () => {
  await using etcd = await startEtcd();
  const record = `${await makeTempDir("boi-mock-prov-")}/calls.jsonl`;
  const DEADLINE_MS = 4000;
  await using a = await startNeverDelivering(etcd, record, {
    BOI_PROVISION_DEADLINE_MS: String(DEADLINE_MS),
  });
  await using b = await startStandby(etcd, a);
  const { spec_id } = await dispatchTo(etcd, macSpec("late", 2));
  const [openA] = await provARequest(etcd);
  await grantAdmin(etcd, a, "prov-b");
  a.kill("SIGKILL");

  const provisioned = await doneOnOneNode(
    etcd,
    spec_id,
    2,
    "the tasks DONE on prov-b's provisioned node",
  );
  assert.match(
    provisioned,
    /^p-[0-9a-f]{8}-2-[0-9a-z]+$/,
    "the second request's node",
  );
  const failed = b.logs().filter((l) =>
    l.msg === "event" && l.event === "provision.failed"
  );
  assert.deepEqual(
    failed.map((l) => [l.req_id, l.reason, l.allocation_id]),
    [[openA.value.req_id, "deadline", openA.value.allocation_id]],
    "prov-b closed prov-a's request once",
  );
  assert.match(String(failed[0].error), /prov-a, which opened it, is gone/);
  const dealloc = b.logs().find((l) =>
    l.msg === "deallocated" && l.req_id === openA.value.req_id
  );
  assert.ok(dealloc, "Deallocate of prov-a's allocation was sent");
  const [mine] = await provisionReqs(etcd);
  assert.equal(mine.value.requested_by, "prov-b");
  // Opened after prov-a's deadline, not after its request's 300 s lease.
  assert.ok(
    mine.value.requested_at >= openA.value.deadline_at &&
      mine.value.requested_at < openA.value.requested_at + 60_000,
    `prov-b opened at ${mine.value.requested_at}; prov-a's deadline ${openA.value.deadline_at}`,
  );
});
