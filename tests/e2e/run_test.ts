/** Issue #2 e2e 1, 6, 7: a spec runs in dependency order; retries; cancel kills the tree. */
import assert from "node:assert/strict";
import {
  cli,
  listEnvelopes,
  processGroupAlive,
  readEnvelope,
  REPO_ROOT,
  waitFor,
} from "../harness/mod.ts";
import type { Envelope } from "../../node/schema.ts";
import { dispatch, logPath, startCluster, waitTerminal } from "./cluster.ts";

const NODES = ["node-a", "node-b", "node-c"];

Deno.test("hello.yaml: all DONE in dependency order, output in the log files, dispatch --wait exits 0", async () => {
  await using c = await startCluster(NODES);
  const r = await cli(c.etcd, [
    "dispatch",
    `${REPO_ROOT}/examples/hello.yaml`,
    "--wait",
    "--json",
  ], {
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, `dispatch --wait failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { spec_id: string; tasks: Envelope[] };
  const byId = new Map(out.tasks.map((t) => [t.task_id.split(".")[1], t]));
  assert.deepEqual([...byId.keys()].sort(), ["count", "greet", "report"]);
  for (const t of byId.values()) {
    assert.equal(t.state, "DONE", `${t.task_id}: ${t.last_error}`);
  }
  const report = byId.get("report")!;
  for (const dep of ["greet", "count"]) {
    const d = byId.get(dep)!;
    assert.ok(
      report.started_at! >= d.finished_at!,
      `report started ${report.started_at} before ${dep} finished ${d.finished_at}`,
    );
  }
  const expected: Record<string, RegExp> = {
    greet: /greeting done/,
    count: /count 1\ncount 2\ncount 3/,
    report: /greet and count are DONE/,
  };
  for (const [id, re] of Object.entries(expected)) {
    const t = byId.get(id)!;
    const text = await Deno.readTextFile(logPath(c.node(t.ran_on!), t));
    assert.match(text, re, `${id} log on ${t.ran_on}`);
  }
});

Deno.test("a task exiting 3 with retries: 2 runs 3 times and ends FAILED with exit_code 3", async () => {
  await using c = await startCluster(NODES, {
    env: { BOI_RETRY_BACKOFF_MS: "200" },
  });
  const { spec_id } = await dispatch(
    c,
    `name: retry
tasks:
  - id: flaky
    run: 'echo "run $BOI_ATTEMPT on $BOI_NODE_ID"; exit 3'
    retries: 2
`,
  );
  const [t] = await waitTerminal(c, spec_id);
  assert.equal(t.state, "FAILED");
  assert.equal(t.exit_code, 3);
  assert.equal(t.attempts, 3);
  assert.equal(t.retries_left, 0);
  let runs = 0;
  for (const n of c.nodes.values()) {
    const text = await Deno.readTextFile(logPath(n, t)).catch(() => "");
    runs += text.split("\n").filter((l) => l.startsWith("run ")).length;
  }
  assert.equal(runs, 3, "the command ran exactly 3 times across the cluster");
});

Deno.test("tasks cancel on a running task: CANCELLED within 2 s and its process tree is gone", async () => {
  await using c = await startCluster(NODES);
  const { task_ids: [id] } = await dispatch(
    c,
    `name: cancel
tasks:
  - id: long
    run: 'sleep 120 & sleep 120 & wait'
`,
  );
  const running = await waitFor(`${id} RUNNING`, async () => {
    const e = await readEnvelope(c.etcd, id);
    return e?.value.state === "RUNNING" ? e.value : undefined;
  });
  const claimant = c.node(running.claimant_node_id!);
  const started = await claimant.waitForLog(
    (l) => l.msg === "worker started" && l.task_id === id,
    5000,
  );
  const pgid = Number(started.pid);
  assert.ok(
    await processGroupAlive(pgid),
    "the task's process group runs before the cancel",
  );
  const t0 = Date.now();
  const r = await cli(c.etcd, ["tasks", "cancel", id]);
  assert.equal(r.code, 0, r.stderr);
  await waitFor(
    `${id} CANCELLED`,
    async () => (await readEnvelope(c.etcd, id))?.value.state === "CANCELLED",
    {
      timeoutMs: 2000,
    },
  );
  const cancelledAfter = Date.now() - t0;
  await waitFor(
    `process group ${pgid} gone`,
    async () => !(await processGroupAlive(pgid)),
    {
      timeoutMs: 2000,
    },
  );
  console.log(`cancelled after ${cancelledAfter} ms (including CLI start-up)`);
  const all = await listEnvelopes(c.etcd, { specId: running.spec_id });
  assert.equal(all[0].value.last_error, "cancelled by user");
});
