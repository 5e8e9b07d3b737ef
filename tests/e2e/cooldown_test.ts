/**
 * Claim-failure cooldown (SPEC §6): a node whose claims expire 3 times within
 * the window marks itself degraded, gets no claims while degraded, and heals
 * on its own after the cooldown (shortened here to 8 s).
 */
import assert from "node:assert/strict";
import {
  listEnvelopes,
  readCaps,
  readClaim,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import {
  dispatchYaml,
  since,
  specYaml,
  waitSpecTerminal,
} from "./outage_util.ts";

const COOLDOWN_MS = 8000;

Deno.test("3 claims expire on one node: it reports health degraded, gets no claims, heals after the cooldown and claims again", async () => {
  await using etcd = await startEtcd();
  await using x = await startNode(etcd, {
    nodeId: "node-x",
    caps: { "x-t-pool": "x" },
    env: { BOI_CLAIM_FAILURE_COOLDOWN_MS: String(COOLDOWN_MS) },
  });
  await using y = await startNode(etcd, { nodeId: "node-y" });

  // Three tasks only node-x can run; the first attempt would take 30 s.
  const held = await dispatchYaml(
    etcd,
    specYaml(
      "held",
      3,
      `'if [ "$BOI_ATTEMPT" = 1 ]; then sleep 30; fi; echo "attempt $BOI_ATTEMPT"'`,
      { "x-t-pool": "x" },
    ),
  );
  await waitFor("node-x runs all 3 tasks", async () => {
    const all = await listEnvelopes(etcd, { specId: held.spec_id });
    return all.length === 3 &&
      all.every((e) =>
        e.value.state === "RUNNING" && e.value.claimant_node_id === "node-x"
      );
  });
  // Frozen past its lease: etcd drops the node and its 3 claims.
  x.kill("SIGSTOP");
  const t0 = performance.now();
  try {
    await waitFor("the 3 claims gone", async () => {
      for (const id of held.task_ids) {
        if (await readClaim(etcd, id) !== null) return false;
      }
      return true;
    }, { timeoutMs: 10_000 });
  } finally {
    x.kill("SIGCONT");
  }
  const degradedLine = await x.waitForLog((l) => l.msg === "node.degraded");
  const caps = await waitFor("node-x caps say degraded", async () => {
    const c = await readCaps(etcd, "node-x");
    return c?.value.dynamic.health === "degraded" ? c : undefined;
  });
  const degradedAt = since(t0);
  const expiries = degradedLine.expiries as number[];
  assert.equal(expiries.length, 3, JSON.stringify(degradedLine));
  assert.equal(caps.value.dynamic.health, "degraded");

  // While degraded: new work all goes to node-y, and node-x's own tasks wait.
  const other = await dispatchYaml(etcd, specYaml("other", 6, "'echo hi'"));
  const done = await waitSpecTerminal(etcd, other.spec_id);
  const doneAt = since(t0);
  assert.deepEqual(
    done.map((t) => `${t.state}@${t.ran_on}`),
    Array(6).fill("DONE@node-y"),
  );
  for (const id of held.task_ids) {
    const cl = await readClaim(etcd, id);
    assert.equal(cl, null, `${id} was claimed by ${cl?.value.node_id}`);
  }
  const still = await readCaps(etcd, "node-x");
  assert.equal(
    still?.value.dynamic.health,
    "degraded",
    "still degraded while the other tasks ran: the check above meant something",
  );

  await x.waitForLog((l) => l.msg === "node.healed", COOLDOWN_MS + 5000);
  await waitFor("node-x caps say ok", async () => {
    const c = await readCaps(etcd, "node-x");
    return c?.value.dynamic.health === "ok";
  });
  const healedAt = since(t0);
  const lastExpiry = Math.max(...expiries);
  const healedLine = x.logs().find((l) => l.msg === "node.healed")!;
  const healedAfter = Number(healedLine.ts) - lastExpiry;
  assert.ok(
    healedAfter >= COOLDOWN_MS && healedAfter < COOLDOWN_MS + 3000,
    `healed ${healedAfter} ms after the third expiry (cooldown ${COOLDOWN_MS} ms)`,
  );
  // Healed, it claims again: its own tasks run there, attempt 2.
  const back = await waitSpecTerminal(etcd, held.spec_id, 15_000);
  assert.deepEqual(
    back.map((t) => `${t.state}@${t.ran_on}#${t.attempts}`),
    Array(3).fill("DONE@node-x#2"),
  );
  console.log(
    `froze node-x at 0; degraded (caps) +${degradedAt} ms; 6 other tasks DONE on node-y +${doneAt} ms; healed (caps) +${healedAt} ms, ${healedAfter} ms after the third expiry; its 3 tasks re-ran there`,
  );
  await y.waitRegistered(); // y served the whole time
});
