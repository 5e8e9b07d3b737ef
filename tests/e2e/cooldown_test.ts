/**
 * Claim-failure cooldown (SPEC §6): a node whose claims expire 3 times within
 * the window (here: frozen past its lease 3 times, one claim each) marks
 * itself degraded, gets no claims while degraded, and heals on its own after
 * the cooldown (shortened here to 12 s).
 */
import assert from "node:assert/strict";
import {
  makeTempDir,
  readCaps,
  readClaim,
  readEnvelope,
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
import { hrwScore } from "../../node/core/hrw.ts";

const COOLDOWN_MS = 12_000;

Deno.test("claims expire 3 times on one node: it reports health degraded, gets no claims, heals after the cooldown and claims again", async () => {
  await using etcd = await startEtcd();
  await using x = await startNode(etcd, {
    nodeId: "node-x",
    caps: { "x-t-pool": "x" },
    env: { BOI_CLAIM_FAILURE_COOLDOWN_MS: String(COOLDOWN_MS) },
  });
  await using y = await startNode(etcd, { nodeId: "node-y" });

  // A task only node-x can run; its first three attempts would take 30 s.
  const held = await dispatchYaml(
    etcd,
    `name: held\ntasks:\n  - id: t\n    requires: { x-t-pool: x }\n    max_attempts: 5\n    run: 'if [ "$BOI_ATTEMPT" -le 3 ]; then sleep 30; fi; echo "attempt $BOI_ATTEMPT"'\n`,
  );
  const id = held.task_ids[0];
  const t0 = performance.now();
  const cycles: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    await waitFor(`${id} attempt ${attempt} RUNNING on node-x`, async () => {
      const e = await readEnvelope(etcd, id);
      return e?.value.state === "RUNNING" && e.value.attempts === attempt &&
        e.value.claimant_node_id === "node-x";
    });
    // Frozen past its lease: etcd drops the node and its claim.
    x.kill("SIGSTOP");
    try {
      await waitFor(
        `the claim of attempt ${attempt} gone`,
        async () => await readClaim(etcd, id) === null,
        { timeoutMs: 10_000 },
      );
    } finally {
      x.kill("SIGCONT");
    }
    cycles.push(`expiry ${attempt} +${since(t0)} ms`);
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
  assert.equal(
    x.logs().filter((l) => l.msg === "node.degraded").length,
    1,
    "not degraded before the third expiry",
  );

  // While degraded: new work all goes to node-y, and node-x's own task waits.
  const other = await dispatchYaml(etcd, specYaml("other", 6, "'echo hi'"));
  const done = await waitSpecTerminal(etcd, other.spec_id);
  const doneAt = since(t0);
  assert.deepEqual(
    done.map((t) => `${t.state}@${t.ran_on}`),
    Array(6).fill("DONE@node-y"),
  );
  const waiting = await readEnvelope(etcd, id);
  assert.equal(waiting?.value.state, "PENDING");
  assert.equal(waiting?.value.attempts, 3);
  assert.equal(await readClaim(etcd, id), null);
  const still = await readCaps(etcd, "node-x");
  assert.equal(
    still?.value.dynamic.health,
    "degraded",
    "still degraded while the other tasks ran: the checks above meant something",
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
  // Healed, it claims again: its task runs there, attempt 4.
  const [back] = await waitSpecTerminal(etcd, held.spec_id, 15_000);
  assert.equal(
    `${back.state}@${back.ran_on}#${back.attempts}`,
    "DONE@node-x#4",
  );
  console.log(
    `froze node-x 3 times (${
      cycles.join(", ")
    }); degraded (caps) +${degradedAt} ms; 6 other tasks DONE on node-y +${doneAt} ms; healed (caps) +${healedAt} ms, ${healedAfter} ms after the third expiry; attempt 4 DONE there`,
  );
  await y.waitRegistered(); // y served the whole time
});

Deno.test("a node whose workspace fails every Prepare (a full disk) degrades after 3 in a row instead of failing every task it claims", async () => {
  await using etcd = await startEtcd();
  const dataDir = await makeTempDir("boi-cooldown-x-");
  await using _dir = {
    async [Symbol.asyncDispose]() {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  // The reference workspace's root is a file: every Prepare fails at once
  // (ENOTDIR), as on a full disk (ENOSPC), while the plugin stays healthy.
  await Deno.mkdir(`${dataDir}/plugins/workspace`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/plugins/workspace/work`, "");
  await using x = await startNode(etcd, {
    nodeId: "node-x",
    dataDir,
    workersMax: 1,
  });
  await using _y = await startNode(etcd, { nodeId: "node-y" });

  // Pinned: node-x must own (HRW) at least 3 of the tasks to lose 3
  // different ones. A random spec id left it 2 or fewer in ~2 % of runs
  // (then no degrade, and before the fix in decide.ts those tasks burnt
  // their max_attempts on it: FAILED@node-x).
  const specId = "full-rwit3x";
  const owned = Array.from({ length: 12 }, (_, i) => `${specId}.t${i}`)
    .filter((t) => hrwScore(t, "node-x") > hrwScore(t, "node-y")).length;
  assert.ok(owned >= 3, `node-x owns ${owned} of 12`);
  const spec = await dispatchYaml(
    etcd,
    specYaml("full", 12, "'echo hi'").replace("\n", `\nid: ${specId}\n`),
  );
  const done = await waitSpecTerminal(etcd, spec.spec_id);
  assert.deepEqual(
    done.map((t) => `${t.state}@${t.ran_on}`),
    Array(12).fill("DONE@node-y"),
  );
  // Each lost attempt on node-x shows as an extra attempt of its task.
  const lost = done.reduce((n, t) => n + t.attempts - 1, 0);
  assert.ok(lost >= 3 && lost <= 4, `${lost} attempts lost on node-x`);
  const line = await x.waitForLog((l) => l.msg === "node.degraded");
  assert.equal(line.reason, "workspace Prepare failing");
  const caps = await readCaps(etcd, "node-x");
  assert.equal(caps?.value.dynamic.health, "degraded");
});

Deno.test("a node whose workspace fails every Prepare leaves the retry of a task it lost to the healthy node, even with too few tasks to degrade", async () => {
  await using etcd = await startEtcd();
  const dataDir = await makeTempDir("boi-cooldown-x-");
  await using _dir = {
    async [Symbol.asyncDispose]() {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  await Deno.mkdir(`${dataDir}/plugins/workspace`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/plugins/workspace/work`, "");
  await using _x = await startNode(etcd, {
    nodeId: "node-x",
    dataDir,
    workersMax: 1,
  });
  // Never full: node-x steals nothing, so it loses only its own task.
  await using _y = await startNode(etcd, { nodeId: "node-y", workersMax: 16 });
  // node-x owns exactly one of the 12 tasks (HRW): one loss, no degrade.
  const specId = "full-b5ot3s";
  const owned = Array.from({ length: 12 }, (_, i) => `${specId}.t${i}`)
    .filter((t) => hrwScore(t, "node-x") > hrwScore(t, "node-y"));
  assert.equal(owned.length, 1, JSON.stringify(owned));
  const spec = await dispatchYaml(
    etcd,
    specYaml("full", 12, "'echo hi'").replace("\n", `\nid: ${specId}\n`),
  );
  const done = await waitSpecTerminal(etcd, spec.spec_id);
  // Before: node-x claimed it again at each retry (its not_before beat
  // node-y's spill-over), FAILED@node-x after 3 lost attempts.
  assert.deepEqual(
    done.map((t) => `${t.state}@${t.ran_on}`),
    Array(12).fill("DONE@node-y"),
  );
  const mine = done.find((t) => t.task_id === owned[0])!;
  assert.equal(mine.attempts, 2, "one attempt lost on node-x, then node-y");
});
