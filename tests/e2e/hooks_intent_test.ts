/**
 * The audit tier's intents (docs/events.md) for a task that goes
 * CLAIMED→DONE in one write: that commit emits two events, task.started and
 * task.completed, appended one after the other. The intent must be resolved
 * by the last of them, so a crash between the two appends leaves it open,
 * and the restart emits what is missing (task.completed), not what is
 * already in the WAL. A CI run lost task.completed exactly there (SIGKILL
 * right after a 50 ms task's exit).
 */
import assert from "node:assert/strict";
import { notYet, waitFor } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import {
  hooksPlugins,
  queueStats,
  quickSpec,
  readHwm,
  walFiles,
} from "./hooks_util.ts";

type WalLine = {
  seq?: number;
  kind?: string;
  payload?: { task_id?: string };
  intent?: { id: number; task_id: string; reason: string; from_state?: string };
  resolved?: number;
};

async function walLines(dir: string, file: string): Promise<WalLine[]> {
  return (await Deno.readTextFile(`${dir}/hooks-wal/${file}`)).split("\n")
    .filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

Deno.test("audit: a CLAIMED→DONE commit's intent is resolved by its last event, and a crash between its two events is recovered with task.completed alone", async () => {
  const sink = `${await Deno.makeTempDir({
    prefix: "boi-sink-",
  })}/events.jsonl`;
  const plugins = await hooksPlugins({
    tier: "audit",
    env: { BOI_HOOKS_FILE: sink },
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    workersMax: 2,
    env: { BOI_PLUGINS: plugins },
  }]);
  const a = c.node("node-a");
  const { spec_id, task_ids } = await dispatch(c, quickSpec("fi", 3));
  await waitTerminal(c, spec_id, 30_000);
  await waitFor("every event acked and the HWM stored", async () => {
    const s = await queueStats(a);
    const h = await readHwm(c.etcd, "hooks", "node-a");
    return s.unacked === 0 && h?.seq === s.last_seq ? s : notYet({ s, h });
  }, { timeoutMs: 30_000, intervalMs: 200 });
  const [file] = await walFiles(a);
  const lines = await walLines(a.dataDir, file);

  // 1. Each finish intent is resolved after both of its events are written.
  for (const id of task_ids) {
    const at = (kind: string) =>
      lines.findIndex((l) => l.kind === kind && l.payload?.task_id === id);
    const intent = lines.find((l) =>
      l.intent?.task_id === id && l.intent.reason === "finish"
    )?.intent;
    assert.ok(intent, `${id}: a finish intent in the WAL`);
    // `true` ends long before its RUNNING write is due: one CLAIMED→DONE write.
    assert.equal(
      intent.from_state,
      "CLAIMED",
      `${id}: ${JSON.stringify(intent)}`,
    );
    const resolved = lines.findIndex((l) => l.resolved === intent.id);
    assert.ok(at("task.started") >= 0 && at("task.completed") >= 0, id);
    assert.ok(
      resolved > at("task.completed") && resolved > at("task.started"),
      `${id}: intent ${intent.id} resolved at line ${resolved}, task.started at ${
        at("task.started")
      }, task.completed at ${at("task.completed")}`,
    );
  }

  // 2. The WAL as a crash between the last task's two appends leaves it:
  // its task.completed and the intent's resolution never reached the file.
  a.kill("SIGKILL");
  await a.exited;
  const last = task_ids[task_ids.length - 1];
  const intentId =
    lines.find((l) =>
      l.intent?.task_id === last && l.intent.reason === "finish"
    )!.intent!.id;
  const cut = lines.filter((l) =>
    !(l.kind === "task.completed" && l.payload?.task_id === last) &&
    l.resolved !== intentId
  );
  assert.equal(cut.length, lines.length - 2);
  const text = await Deno.readTextFile(`${a.dataDir}/hooks-wal/${file}`);
  const header = text.split("\n").filter((l) => !l.startsWith("{"))
    .filter((l) => l !== "");
  await Deno.writeTextFile(
    `${a.dataDir}/hooks-wal/${file}`,
    [...header, ...cut.map((l) => JSON.stringify(l))].join("\n") + "\n",
  );
  await a.restart();
  const rec = await a.waitForLog(
    (l) =>
      l.msg === "hooks: events recovered from an intent" && l.task_id === last,
    20_000,
  );
  assert.deepEqual(rec.events, ["task.completed"], a.logTail(20));
});
