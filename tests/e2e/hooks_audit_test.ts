/**
 * Hooks, audit tier, end to end (SPEC §8, issue 12 tests 1–4): real etcd, a
 * real node and the real hooks_jsonl plugin writing a JSONL file.
 */
import assert from "node:assert/strict";
import { makeTempDir, type NodeProc, notYet, waitFor } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import {
  dedup,
  hooksPlugins,
  queueStats,
  quickSpec,
  readHwm,
  readSink,
  type SinkLine,
  walFiles,
} from "./hooks_util.ts";

/**
 * Seqs 1..max each present once after dedup (nothing missing, nothing
 * twice), first arrivals in seq order (delivered in emission order).
 */
function assertContiguous(lines: SinkLine[]): number {
  const seqs = dedup(lines).map((l) => l.seq);
  seqs.forEach((s, i) =>
    assert.equal(s, i + 1, `seq ${i + 1} missing or doubled: ${seqs}`)
  );
  return seqs.length;
}

function completedOnce(lines: SinkLine[], taskIds: string[]): void {
  const done = dedup(lines).filter((l) => l.kind === "task.completed")
    .map((l) => String(l.payload.task_id)).sort();
  assert.deepEqual(done, [...taskIds].sort());
}

Deno.test("audit: 100 tasks → every task.completed exactly once after dedup, HWM = last seq, acked segments gone, HWM never decreases", async () => {
  const dir = await makeTempDir("boi-sink-");
  const sink = `${dir}/events.jsonl`;
  const plugins = await hooksPlugins({
    tier: "audit",
    env: { BOI_HOOKS_FILE: sink },
    wal_segment_events: 40,
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    workersMax: 8,
    env: { BOI_PLUGINS: plugins },
  }]);
  const a = c.node("node-a");
  // Test 4: sample the HWM all along; it must never go down.
  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const h = await readHwm(c.etcd, "hooks", "node-a").catch(() => null);
      if (h) samples.push(h.seq);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  // 0.2 s tasks on 8 workers: delivery spans ~2.5 s, several of the ≤ 1/s
  // HWM writes (with `true` a fast run gave the sampler one value only).
  const { task_ids } = await dispatch(
    c,
    quickSpec("many", 100, "'sleep 0.2'"),
  );
  const envs = await waitTerminal(c, task_ids[0].split(".")[0], 90_000);
  assert.ok(envs.every((e) => e.state === "DONE"));
  const stats = await waitFor(
    "every event acked and the HWM stored",
    async () => {
      const s = await queueStats(a);
      const h = await readHwm(c.etcd, "hooks", "node-a");
      // hwm_seq: the node has seen its own HWM write (and retired what it covers).
      return s.unacked === 0 && h?.seq === s.last_seq &&
          s.hwm_seq === s.last_seq
        ? s
        : notYet({ s, h });
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  sampling = false;
  await sampler;
  // The final HWM too: the sampler may have been asleep when it was written
  // (a fast run gives the ≤ 1/s HWM write just one value before the last).
  samples.push((await readHwm(c.etcd, "hooks", "node-a"))!.seq);
  const lines = await readSink(sink);
  completedOnce(lines, task_ids);
  assert.equal(assertContiguous(lines), stats.last_seq);
  assert.ok(
    lines.every((l) => l.tier === "audit" && l.emitter_node_id === "node-a"),
  );
  // Per task: dispatched, claimed, started (from its RUNNING write, or from
  // its finish when it ended first), completed; plus node.joined.
  const count = (k: string) => dedup(lines).filter((l) => l.kind === k).length;
  assert.deepEqual(
    ["task.dispatched", "task.claimed", "task.started", "node.joined"].map(
      count,
    ),
    [100, 100, 100, 1],
  );
  // 40 events a segment: many were sealed; once acked every one is gone.
  assert.deepEqual(await walFiles(a), ["hooks.jsonl"]);
  for (let i = 1; i < samples.length; i++) {
    assert.ok(samples[i] >= samples[i - 1], `HWM went down: ${samples}`);
  }
  assert.ok(
    new Set(samples).size >= 2,
    `HWM moved while delivering: ${samples}`,
  );
});

/** The pid of the newest incarnation of the node's hooks plugin, from its log. */
function hooksPid(n: NodeProc): number | null {
  const l = n.logs().filter((l) =>
    l.msg === "plugin spawned" && l.plugin === "hooks"
  ).at(-1);
  return l ? Number(l.pid) : null;
}

/** A cluster of one node with an audit hooks_jsonl sink; tasks sleep a little so a fault lands mid-run. */
async function auditNode(sink: string) {
  const plugins = await hooksPlugins({
    tier: "audit",
    env: { BOI_HOOKS_FILE: sink },
    wal_segment_events: 25,
  });
  return await startCluster([{
    nodeId: "node-a",
    workersMax: 4,
    env: { BOI_PLUGINS: plugins },
  }]);
}

Deno.test("audit: SIGKILL the hooks plugin mid-run → after its restart nothing is missing in the sink", async () => {
  const sink = `${await makeTempDir("boi-sink-")}/events.jsonl`;
  await using c = await auditNode(sink);
  const a = c.node("node-a");
  const { spec_id, task_ids } = await dispatch(
    c,
    quickSpec("pk", 40, "'sleep 0.05'"),
  );
  await waitFor("a few completions in the sink", async () => {
    const n = (await readSink(sink)).filter((l) => l.kind === "task.completed")
      .length;
    return n >= 5 ? n : notYet(n);
  }, { timeoutMs: 30_000, intervalMs: 20 });
  const pid = hooksPid(a)!;
  Deno.kill(pid, "SIGKILL");
  await a.waitForLog(
    (l) =>
      l.msg === "plugin ready" && l.plugin === "hooks" &&
      Number(l.incarnation) >= 2,
    15_000,
  );
  assert.notEqual(hooksPid(a), pid);
  await waitTerminal(c, spec_id, 60_000);
  const stats = await waitFor("every event acked", async () => {
    const s = await queueStats(a);
    return s.unacked === 0 ? s : notYet(s);
  }, { timeoutMs: 30_000, intervalMs: 200 });
  const lines = await readSink(sink);
  completedOnce(lines, task_ids);
  assert.equal(assertContiguous(lines), stats.last_seq);
});

Deno.test("audit: SIGKILL the node mid-run, restart on the same data dir → replay from the HWM, nothing missing", async () => {
  const sink = `${await makeTempDir("boi-sink-")}/events.jsonl`;
  await using c = await auditNode(sink);
  const a = c.node("node-a");
  const { spec_id, task_ids } = await dispatch(
    c,
    quickSpec("nk", 40, "'sleep 0.05'"),
  );
  await waitFor("a few completions in the sink", async () => {
    const n = (await readSink(sink)).filter((l) => l.kind === "task.completed")
      .length;
    return n >= 5 ? n : notYet(n);
  }, { timeoutMs: 30_000, intervalMs: 20 });
  a.kill("SIGKILL");
  await a.exited;
  const before = await readHwm(c.etcd, "hooks", "node-a");
  await a.restart();
  await a.waitForLog((l) => l.msg === "node ready", 20_000);
  await waitTerminal(c, spec_id, 60_000);
  const stats = await waitFor("every event acked", async () => {
    const s = await queueStats(a);
    const h = await readHwm(c.etcd, "hooks", "node-a");
    return s.unacked === 0 && h?.seq === s.last_seq ? s : notYet({ s, h });
  }, { timeoutMs: 30_000, intervalMs: 200 });
  assert.ok((before?.seq ?? 0) <= stats.hwm_seq);
  const lines = await readSink(sink);
  completedOnce(lines, task_ids);
  assert.equal(assertContiguous(lines), stats.last_seq);
  // The restarted node joined again and reported no gap.
  assert.equal(lines.filter((l) => l.kind === "node.joined").length, 2);
  assert.equal(lines.filter((l) => l.kind === "hook.gap.detected").length, 0);
});

/** Every event line in the node's WAL files, oldest segment first. */
async function walEvents(
  n: NodeProc,
): Promise<{ seq: number; kind: string; payload: Record<string, unknown> }[]> {
  const out = [];
  for (const name of await walFiles(n)) {
    const text = await Deno.readTextFile(`${n.dataDir}/hooks-wal/${name}`);
    for (const l of text.split("\n")) {
      if (l.includes('"kind"')) out.push(JSON.parse(l));
    }
  }
  return out;
}

Deno.test("audit: a truncated or missing WAL at start is reported as hook.gap.detected with the seq range", async () => {
  // A slow sink keeps events unacked, so the sealed segments are still there.
  const plugins = await hooksPlugins({
    tier: "audit",
    script: "mock.ts",
    env: { BOI_MOCK_SLOW_ACK_MS: "300" },
    wal_segment_events: 10,
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    env: { BOI_PLUGINS: plugins },
  }]);
  const a = c.node("node-a");
  await dispatch(c, quickSpec("gap", 20));
  const sealed = await waitFor("two sealed segments", async () => {
    const s = (await walFiles(a)).filter((f) => f !== "hooks.jsonl");
    return s.length >= 2 ? s : notYet(s);
  }, { timeoutMs: 30_000, intervalMs: 100 });
  a.kill("SIGKILL");
  await a.exited;
  const hwm = (await readHwm(c.etcd, "hooks", "node-a"))?.seq ?? 0;
  // Cut the last 3 entries off the newest sealed segment (named <first>-<last>).
  const victim = sealed.at(-1)!;
  const [first, last] = victim.slice("hooks.".length, -".jsonl".length)
    .split("-").map(Number);
  assert.ok(last - 2 > hwm, `segment ${victim} is past the HWM ${hwm}`);
  const path = `${a.dataDir}/hooks-wal/${victim}`;
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l);
  await Deno.writeTextFile(path, lines.slice(0, -3).join("\n") + "\n");
  await a.restart();
  const gap = await waitFor("hook.gap.detected in the WAL", async () => {
    const g = (await walEvents(a)).find((e) => e.kind === "hook.gap.detected");
    return g ?? notYet((await walEvents(a)).length);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  // A lost seq the sink acked is not a gap, and the HWM read above can be
  // stale: an HWM write sent just before the SIGKILL may commit after that
  // read (one CI run: read 27, the restart found 28). The gap starts right
  // after the HWM the restart used, never later than the first cut seq.
  // Each start logs one, before any delivery; this is the second start.
  const recovered = await waitFor("the restart's recovery line", () => {
    const r = a.logs().filter((l) => l.msg === "hooks: audit WAL recovered");
    return r.length >= 2 ? r.at(-1)! : notYet(r.length);
  }, { timeoutMs: 5_000, intervalMs: 50 });
  const used = Number(recovered.hwm);
  assert.ok(used >= hwm && used < last, `HWM at restart ${used}`);
  assert.deepEqual(gap.payload, {
    plugin: "hooks",
    from_seq: Math.max(last - 2, used + 1),
    to_seq: last,
    reason: "wal truncated",
  });
  assert.ok(first <= last - 2);

  // The whole WAL gone: the range starts after the HWM, its end is unknown.
  await waitFor("an HWM stored", async () => {
    const h = await readHwm(c.etcd, "hooks", "node-a");
    return h && h.seq > 0 ? h : notYet(h);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  a.kill("SIGKILL");
  await a.exited;
  const hwm2 = (await readHwm(c.etcd, "hooks", "node-a"))!.seq;
  await Deno.remove(`${a.dataDir}/hooks-wal`, { recursive: true });
  await a.restart();
  const gap2 = await waitFor(
    "hook.gap.detected after the WAL vanished",
    async () => {
      const g = (await walEvents(a)).find((e) =>
        e.kind === "hook.gap.detected"
      );
      return g ?? notYet(await walFiles(a));
    },
    { timeoutMs: 15_000, intervalMs: 100 },
  );
  assert.deepEqual(gap2.payload, {
    plugin: "hooks",
    from_seq: hwm2 + 1,
    to_seq: null,
    reason: "wal missing",
  });
  assert.equal(gap2.seq, hwm2 + 1, "seqs go on after the HWM");
});
