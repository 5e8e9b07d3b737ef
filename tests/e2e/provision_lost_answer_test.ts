/**
 * An Allocate whose answer is lost (the provisioner allocated, then never
 * answered; the call timed out) is asked again with the same request_id, so
 * the one machine it stands for is known to boi and taken back at the
 * deadline: no failure counted at once, no second request for a second
 * machine while the first may exist.
 */
import assert from "node:assert/strict";
import {
  makeTempDir,
  notYet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import { init } from "./secure_util.ts";
import {
  events,
  macSpec,
  mockCalls,
  mockProvisionerEntry,
  provisionerAdmin,
  provisionFailures,
} from "./provision_util.ts";

// Each Allocate may take a quarter of it: 2 s, then it is asked again.
const DEADLINE_MS = 8000;

Deno.test("a lost Allocate answer → asked again with the same request_id; its allocation is deallocated at the deadline", async () => {
  await using etcd = await startEtcd();
  const record = `${await makeTempDir("boi-mock-prov-")}/calls.jsonl`;
  await using admin = await startNode(
    etcd,
    await provisionerAdmin(
      "prov-a",
      mockProvisionerEntry(record, {
        BOI_MOCK_PROVISION_NEVER_JOINS: "1",
        BOI_MOCK_PROVISION_LOSE_ANSWERS: "1",
      }),
      { env: { BOI_PROVISION_DEADLINE_MS: String(DEADLINE_MS) } },
    ),
  );
  await init(etcd, admin);
  await dispatchTo(etcd, macSpec("lost", 1));

  const calls = await waitFor("Allocate, Allocate, Deallocate", async () => {
    const calls = await mockCalls(record);
    return calls.some((c) => c.rpc === "Deallocate") ? calls : notYet(calls);
  }, { timeoutMs: 30_000 });
  const reqId = calls[0].corr_id.split(".")[0];
  const first = calls.slice(
    0,
    calls.findIndex((c) => c.rpc === "Deallocate") + 1,
  );
  assert.deepEqual(
    first.map((c) => [c.rpc, c.corr_id.split(".")[0]]),
    [
      ["Allocate", reqId],
      ["Allocate", reqId],
      ["Deallocate", `mock-${reqId}`],
    ],
    "the lost answer is asked for again, and the one allocation taken back",
  );
  await admin.waitForLog((l) =>
    l.msg === "Allocate outcome unknown: asking again" && l.req_id === reqId
  );
  const failed = await waitFor("provision.failed", () => {
    const f = events(admin, "provision.failed");
    return f.length > 0 ? f : notYet(f);
  });
  assert.deepEqual(
    [failed[0].req_id, failed[0].reason, failed[0].allocation_id],
    [reqId, "deadline", `mock-${reqId}`],
    "failed at its deadline, not at the lost answer",
  );
  const [f] = await provisionFailures(etcd);
  assert.ok(f.value.count >= 1, `counted: ${JSON.stringify(f.value)}`);
});
