/**
 * Issue #10, tests item 2: the Prepare race end to end, with real etcd, real
 * node processes and a real, slow workspace plugin (the mock with
 * `BOI_MOCK_SLOW_ACK_MS`, so each Prepare takes {@linkcode PREPARE_MS}; the
 * pool stays the reference pool_local). A task's command appends one line to
 * a ledger file: the ledger counts how many times the command really ran.
 *
 * 1. `tasks cancel` while the task is CLAIMED (Prepare in flight): CANCELLED,
 *    and the command never runs — the ledger stays absent.
 * 2. SIGSTOP the claimant while it prepares, past its lease; another node
 *    re-claims and finishes; SIGCONT: the thawed node must not start the
 *    command too — the ledger has exactly one line.
 *
 * The mock records each call it receives (`BOI_MOCK_RECORD`) with the time
 * it arrived, so the tests know when the claimant's Prepare started and thus
 * the earliest moment it can return (start + PREPARE_MS).
 */
import assert from "node:assert/strict";
import { stringifyYaml } from "../../node/yaml.ts";
import {
  cli,
  delay,
  makeTempDir,
  type NodeProc,
  notYet,
  readEnvelope,
  readNode,
  REPO_ROOT,
  waitFor,
} from "../harness/mod.ts";
import {
  type Cluster,
  dispatch,
  startCluster,
  waitTerminal,
} from "./cluster.ts";

/** How long the slow workspace's Prepare (and Cleanup) takes. */
const PREPARE_MS = 3000;
/**
 * After Prepare has returned to the node (and the node runs), how long a
 * command that is wrongly started would take at most to append its line: a
 * spawn is a local process start, well under a second even on a loaded
 * machine; the margin is generous so that a pass means "never ran".
 */
const MARGIN_MS = 4000;
const TTL_S = 2;

/** A temp dir under /tmp, removed on dispose (after the cluster, declared later). */
async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await makeTempDir("boi-prepare-race-");
  return {
    path,
    [Symbol.asyncDispose]: () =>
      Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** A plugins file whose workspace is the slow mock; calls are recorded per node. */
async function slowWorkspacePlugins(dir: string): Promise<string> {
  const path = `${dir}/plugins.yaml`;
  await Deno.writeTextFile(
    path,
    stringifyYaml({
      workspace: {
        argv: [
          Deno.execPath(),
          "run",
          "-q",
          "-P=plugin",
          "--allow-net=unix:{socket}",
          `${REPO_ROOT}/plugins/mock.ts`,
        ],
        env: {
          BOI_MOCK_SLOW_ACK_MS: String(PREPARE_MS),
          BOI_MOCK_RECORD: `${dir}/{node_id}.calls.jsonl`,
        },
        ready_timeout_s: 15,
      },
    }),
  );
  return path;
}

/** One call the mock received. */
interface Call {
  ts: number;
  rpc: string;
  corr_id: string;
}

/** The Prepare calls of `taskId` that `nodeId`'s workspace received so far. */
async function prepares(
  dir: string,
  nodeId: string,
  taskId: string,
): Promise<Call[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/${nodeId}.calls.jsonl`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Call)
    .filter((c) => c.rpc === "Prepare" && c.corr_id.startsWith(`${taskId}.`));
}

/** The ledger's lines, or null while the file does not exist. */
async function ledgerLines(path: string): Promise<string[] | null> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Watches the ledger until `until` (epoch ms) and fails at once if it ever
 * holds more than `max` lines (null: it must not exist). A bounded absence
 * check is the only way to show that something did NOT happen; the bound is
 * computed from when Prepare returned to the node, so it is not a guess.
 */
async function ledgerStaysWithin(
  path: string,
  max: number | null,
  until: number,
  nodes: NodeProc[],
): Promise<void> {
  while (true) {
    const lines = await ledgerLines(path);
    const seen = lines === null ? "absent" : `${lines.length} line(s)`;
    if (max === null ? lines !== null : lines !== null && lines.length > max) {
      throw new Error(
        `the command ran when it must not have: ledger ${path} is ${seen}: ${
          JSON.stringify(lines)
        }\n${
          nodes.map((n) => `last lines of ${n.nodeId}:\n${n.logTail(20)}`)
            .join("\n")
        }`,
      );
    }
    for (const n of nodes) {
      assert.ok(
        n.running,
        `${n.nodeId} exited during the check, which proves nothing`,
      );
    }
    if (Date.now() >= until) return;
    await delay(Math.min(50, until - Date.now()));
  }
}

/** Waits until the task is CLAIMED by some node and that node's Prepare for it has begun. */
async function claimedAndPreparing(
  c: Cluster,
  dir: string,
  taskId: string,
): Promise<{ claimant: string; prepareAt: number }> {
  return await waitFor(
    `${taskId} CLAIMED with its Prepare in flight`,
    async () => {
      const e = await readEnvelope(c.etcd, taskId);
      const claimant = e?.value.claimant_node_id ?? null;
      if (e?.value.state !== "CLAIMED" || claimant === null) {
        return notYet({ state: e?.value.state, claimant });
      }
      const calls = await prepares(dir, claimant, taskId);
      if (calls.length === 0) return notYet({ claimant, prepares: 0 });
      return { claimant, prepareAt: calls[0].ts };
    },
    { timeoutMs: 20_000, intervalMs: 20 },
  );
}

Deno.test("tasks cancel while the workspace prepares: the task ends CANCELLED and its command never runs", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const ledger = `${dir}/ledger`;
  const plugins = await slowWorkspacePlugins(dir);
  await using c = await startCluster([{ nodeId: "node-a" }], {
    leaseTtlS: TTL_S,
    env: { BOI_PLUGINS: plugins },
  });
  const a = c.node("node-a");
  const { spec_id, task_ids: [id] } = await dispatch(
    c,
    `name: cancel-in-prepare\ntasks:\n  - id: t\n    run: 'echo ran >> ${ledger}'\n`,
  );
  const { prepareAt } = await claimedAndPreparing(c, dir, id);
  const prepareEnd = prepareAt + PREPARE_MS; // earliest return to the node

  // Cancel through the CLI; meanwhile note when cancel_requested is first stored.
  const cancel = cli(c.etcd, ["tasks", "cancel", id, "--timeout", "20s"], {
    timeoutMs: 30_000,
  });
  const requestedAt = await waitFor(`${id} cancel_requested`, async () => {
    const e = await readEnvelope(c.etcd, id);
    return e?.value.cancel_requested ? Date.now() : notYet(e?.value.state);
  }, { timeoutMs: 15_000, intervalMs: 20 });
  // The point of the test: the cancel was stored before Prepare could return.
  assert.ok(
    requestedAt < prepareEnd,
    `cancel_requested was seen ${
      requestedAt - prepareEnd
    } ms after Prepare could return: the test did not cancel during Prepare`,
  );
  const r = await cancel;
  assert.equal(r.code, 0, r.explain());

  const [t] = await waitTerminal(c, spec_id, 20_000);
  assert.equal(t.state, "CANCELLED", JSON.stringify(t));

  // Prepare returns at prepareEnd at the earliest (and the node has been
  // running all along); had the node spawned the command after that, its
  // line would be in the ledger within MARGIN_MS.
  await ledgerStaysWithin(ledger, null, prepareEnd + MARGIN_MS, [a]);
  const after = await readEnvelope(c.etcd, id);
  assert.equal(after?.value.state, "CANCELLED");
});

Deno.test("SIGSTOP the claimant while its workspace prepares, past its lease, then SIGCONT: the command runs exactly once", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const ledger = `${dir}/ledger`;
  const plugins = await slowWorkspacePlugins(dir);
  // Both nodes get the slow workspace: whichever wins the claim is frozen mid-Prepare.
  await using c = await startCluster(["node-a", "node-b"], {
    leaseTtlS: TTL_S,
    env: { BOI_PLUGINS: plugins },
  });
  const { spec_id, task_ids: [id] } = await dispatch(
    c,
    `name: freeze-in-prepare\ntasks:\n  - id: t\n    max_attempts: 3\n    run: 'echo "ran on $BOI_NODE_ID attempt $BOI_ATTEMPT" >> ${ledger}'\n`,
  );
  const { claimant, prepareAt } = await claimedAndPreparing(c, dir, id);
  const frozen = c.node(claimant);
  const other = [...c.nodes.values()].find((n) => n !== frozen)!;
  const oldLease = (await readNode(c.etcd, claimant))!.lease;
  frozen.kill("SIGSTOP");
  const stoppedAt = Date.now();
  assert.ok(
    stoppedAt < prepareAt + PREPARE_MS,
    `SIGSTOP sent ${
      stoppedAt - prepareAt - PREPARE_MS
    } ms after Prepare could return: the test did not freeze the node mid-Prepare`,
  );
  let thawedAt = 0;
  try {
    // The lease expires, the other node re-claims, prepares and runs it.
    const [t] = await waitTerminal(c, spec_id, 25_000);
    assert.equal(t.state, "DONE", JSON.stringify(t));
    assert.equal(t.ran_on, other.nodeId, JSON.stringify(t));
    assert.ok(
      Date.now() - stoppedAt > TTL_S * 1000,
      "frozen past its lease",
    );
    const lines = await ledgerLines(ledger);
    assert.equal(lines?.length, 1, `ledger: ${JSON.stringify(lines)}`);
  } finally {
    frozen.kill("SIGCONT");
    thawedAt = Date.now();
  }

  // The thawed node learns its lease is gone and registers anew.
  await waitFor(`${claimant} registered again under a new lease`, async () => {
    const rec = await readNode(c.etcd, claimant);
    return rec !== null && rec.lease !== oldLease &&
        rec.value.pid === frozen.pid
      ? rec
      : notYet(rec);
  }, { timeoutMs: 15_000, intervalMs: 50 });
  // Its Prepare (answered by the plugin while the node was frozen) returns
  // once it runs again, at max(prepare end, thaw); a command it started then
  // would show up in the ledger within MARGIN_MS.
  const returnedBy = Math.max(prepareAt + PREPARE_MS, thawedAt);
  await ledgerStaysWithin(ledger, 1, returnedBy + MARGIN_MS, [frozen, other]);
  const lines = await ledgerLines(ledger);
  assert.equal(lines?.length, 1, `ledger: ${JSON.stringify(lines)}`);
  assert.match(lines![0], new RegExp(`^ran on ${other.nodeId} `));
  const e = await readEnvelope(c.etcd, id);
  assert.equal(e?.value.state, "DONE");
  assert.equal(e?.value.ran_on, other.nodeId);
});
