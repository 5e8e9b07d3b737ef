/**
 * Hooks end to end (SPEC §8, issue 12 tests 5–8): back-pressure from a slow
 * audit sink, best_effort with the plugin down, subscriptions, and the
 * partition events. Real etcd, real nodes, real plugin processes.
 */
import assert from "node:assert/strict";
import {
  cli,
  delay,
  listEnvelopes,
  makeTempDir,
  notYet,
  startEtcd,
  startNode,
  startProxy,
  waitFor,
} from "../harness/mod.ts";
import { Keys } from "../../node/keys.ts";
import { hrwWinner } from "../../node/core/hrw.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import {
  dedup,
  hooksPlugins,
  queueStats,
  quickSpec,
  readHwm,
  readSink,
  walFiles,
} from "./hooks_util.ts";

/** Tasks of a spec that left PENDING, counted from etcd. */
async function pastPending(
  c: { etcd: Parameters<typeof listEnvelopes>[0] },
  specId: string,
): Promise<number> {
  return (await listEnvelopes(c.etcd, { specId }))
    .filter((e) => e.value.state !== "PENDING").length;
}

/** Kinds of the event lines in the node's active WAL segment. */
async function walKinds(dataDir: string): Promise<string[]> {
  const text = await Deno.readTextFile(`${dataDir}/hooks-wal/hooks.jsonl`);
  return text.split("\n").filter((l) => l.includes('"kind"'))
    .map((l) => JSON.parse(l).kind);
}

Deno.test("audit sink acking 1 event/s: claims stop at 100 unacked (seen in etcd), saturated once, work resumes", async () => {
  const record = `${await makeTempDir("boi-mock-")}/calls.jsonl`;
  const plugins = await hooksPlugins({
    tier: "audit",
    script: "mock.ts",
    env: { BOI_MOCK_SLOW_ACK_MS: "1000", BOI_MOCK_RECORD: record },
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    workersMax: 4,
    env: { BOI_PLUGINS: plugins },
  }]);
  const a = c.node("node-a");
  const { spec_id } = await dispatch(c, quickSpec("bp", 80));
  const stalled = await waitFor("the audit queue to stall", async () => {
    const s = await queueStats(a);
    return s.stalled ? s : notYet(s);
  }, { timeoutMs: 30_000, intervalMs: 100 });
  assert.ok(stalled.unacked >= 100, JSON.stringify(stalled));
  const metrics = await (await fetch(`${a.url}/metrics`)).text();
  const unacked = Number(
    /^boi_hooks_unacked\{plugin="hooks"\} (\d+)$/m.exec(metrics)?.[1],
  );
  assert.ok(unacked >= 99, `boi_hooks_unacked ${unacked}`);
  assert.match(metrics, /^boi_hooks_stalls_total\{plugin="hooks"\} 1$/m);
  // Writes in flight when it stalled may still land; after that, nothing moves.
  await delay(1000);
  const held = await pastPending(c, spec_id);
  await delay(3000);
  const s = await queueStats(a);
  assert.ok(s.stalled, `still stalled: ${JSON.stringify(s)}`);
  assert.equal(await pastPending(c, spec_id), held, "no claim while stalled");
  assert.ok(held < 80, `${held} of 80 claimed`);
  assert.equal(s.stalls, 1);
  assert.equal(
    (await walKinds(a.dataDir)).filter((k) => k === "hook.queue.saturated")
      .length,
    1,
  );
  // The operator's view: boi plugin queue.
  const q = await cli(c.etcd, ["plugin", "queue", "hooks", "--json"]);
  assert.equal(q.code, 0, q.explain());
  const [row] = JSON.parse(q.stdout);
  assert.equal(row.node_id, "node-a");
  assert.equal(row.tier, "audit");
  assert.ok(row.unacked > 80 && row.stalls === 1, q.stdout);
  assert.ok(row.oldest_unacked_age_ms > 0 && typeof row.hwm_seq === "number");
  const text = await cli(c.etcd, ["plugin", "queue", "hooks"]);
  assert.match(
    text.stdout,
    /^node-a\s+audit\s+\d+\s+\d+\s+\d+\s+[\d.]+s\s+1\s+(stalled|flowing)$/m,
  );
  const none = await cli(c.etcd, ["plugin", "queue", "nope"]);
  assert.equal(none.code, 1, none.explain());
  // Acks catch up to 90: claims resume.
  const resumed = await waitFor("claims to resume", async () => {
    const n = await pastPending(c, spec_id);
    return n > held ? n : notYet({ n, held, stats: await queueStats(a) });
  }, { timeoutMs: 30_000, intervalMs: 200 });
  console.log(`held at ${held} tasks past PENDING, resumed to ${resumed}`);
  // Every OnEvent carried a boi-corr-id naming the emitter and the seq.
  const calls = (await Deno.readTextFile(record)).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((c) => c.rpc === "OnEvent");
  assert.ok(calls.length > 5);
  for (const [i, c] of calls.entries()) {
    assert.match(c.corr_id, new RegExp(`^node-a\\.${i + 1}\\.[0-9a-f]+$`));
  }
});

Deno.test("best_effort with the hooks plugin down: no WAL, no HWM key, tasks complete, drops counted", async () => {
  const plugins = await hooksPlugins({
    script: "mock.ts",
    // Answers the handshake, then dies on every next call: crash loop, then unstable.
    env: { BOI_MOCK_CRASH_AFTER: "1" },
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    env: { BOI_PLUGINS: plugins },
  }]);
  const a = c.node("node-a");
  const { spec_id } = await dispatch(c, quickSpec("be", 10));
  const envs = await waitTerminal(c, spec_id, 30_000);
  assert.deepEqual(envs.map((e) => e.state), Array(10).fill("DONE"));
  await waitFor("events dropped and counted", async () => {
    const m = await (await fetch(`${a.url}/metrics`)).text();
    const n = Number(
      /^boi_hooks_dropped_total\{plugin="hooks"\} (\d+)$/m.exec(m)?.[1] ?? 0,
    );
    return n > 0 ? n : notYet(n);
  }, { timeoutMs: 20_000, intervalMs: 200 });
  assert.deepEqual(await walFiles(a), []);
  assert.equal(await readHwm(c.etcd, "hooks", "node-a"), null);
});

Deno.test("a plugin subscribed to node.* receives no task events, and none enter its WAL", async () => {
  const sink = `${await makeTempDir("boi-sink-")}/events.jsonl`;
  const plugins = await hooksPlugins({
    tier: "audit",
    env: { BOI_HOOKS_FILE: sink },
    subscribe: ["node.*"],
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    env: { BOI_PLUGINS: plugins },
  }]);
  const a = c.node("node-a");
  const { spec_id } = await dispatch(c, quickSpec("sub", 5));
  await waitTerminal(c, spec_id, 30_000);
  await waitFor("node.joined in the sink", async () => {
    const kinds = (await readSink(sink)).map((l) => l.kind);
    return kinds.includes("node.joined") ? kinds : notYet(kinds);
  }, { timeoutMs: 10_000, intervalMs: 100 });
  const kinds = (await readSink(sink)).map((l) => l.kind);
  assert.ok(kinds.every((k) => k.startsWith("node.")), String(kinds));
  assert.ok(
    (await walKinds(a.dataDir)).every((k) => k.startsWith("node.")),
  );
  // Task events were emitted, just not to this plugin (logged at debug once
  // the finish's answer is read: after etcd shows DONE, so waited for).
  await a.waitForLog((l) => l.msg === "event" && l.event === "task.completed");
});

Deno.test("partition one node from etcd past its lease and heal: its sink gets partition_detected, then partition_healed", async () => {
  await using etcd = await startEtcd();
  await using proxy = startProxy(etcd);
  const sink = `${await makeTempDir("boi-sink-")}/events.jsonl`;
  const plugins = await hooksPlugins({
    tier: "audit",
    env: { BOI_HOOKS_FILE: sink },
  });
  await using _a = await startNode(etcd, {
    nodeId: "node-a",
    endpoints: proxy.endpoint,
    leaseTtlS: 2,
    env: { BOI_PLUGINS: plugins },
  });
  await waitFor("node.joined in the sink", async () => {
    const kinds = (await readSink(sink)).map((l) => l.kind);
    return kinds.includes("node.joined") ? kinds : notYet(kinds);
  }, { timeoutMs: 10_000, intervalMs: 100 });
  proxy.cut("blackhole");
  // The sink is local: the event arrives while etcd is still cut off.
  await waitFor("partition_detected in the sink", async () => {
    const kinds = (await readSink(sink)).map((l) => l.kind);
    return kinds.includes("cluster.partition_detected") ? kinds : notYet(kinds);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  await delay(3000); // past the 2 s lease
  proxy.restore();
  const kinds = await waitFor("partition_healed in the sink", async () => {
    const kinds = (await readSink(sink)).map((l) => l.kind);
    return kinds.includes("cluster.partition_healed") ? kinds : notYet(kinds);
  }, { timeoutMs: 20_000, intervalMs: 100 });
  const p = kinds.filter((k) => k.startsWith("cluster."));
  assert.deepEqual(p, [
    "cluster.partition_detected",
    "cluster.partition_healed",
  ]);
  // Its lease expired meanwhile: it registered again.
  await waitFor("node.joined again", async () => {
    const n = (await readSink(sink)).filter((l) => l.kind === "node.joined")
      .length;
    return n >= 2 ? n : notYet(n);
  }, { timeoutMs: 20_000, intervalMs: 100 });
});

Deno.test("two nodes: each transition reported once, by the node that made it; dispatched once per task, also with a lease-less node record beside them", async () => {
  const dir = await makeTempDir("boi-sinks-");
  const sinks = { "node-a": `${dir}/a.jsonl`, "node-b": `${dir}/b.jsonl` };
  const node = async (id: keyof typeof sinks) => ({
    nodeId: id,
    workersMax: 2,
    env: {
      BOI_PLUGINS: await hooksPlugins({
        tier: "audit",
        env: { BOI_HOOKS_FILE: sinks[id] },
      }),
    },
  });
  await using c = await startCluster([
    await node("node-a"),
    await node("node-b"),
  ]);
  // `etcdctl put /boi/nodes/ghost …`: no lease, no caps, so no member and no
  // monitor; ranked as one, it would take the task.dispatched of the tasks
  // it wins from both nodes.
  await c.etcd.client().put(new Keys("/boi/").node("ghost")).value(
    JSON.stringify({
      node_id: "ghost",
      addr: "127.0.0.1:1",
      version: "0",
      started_at: 0,
      pid: 1,
    }),
  );
  const { spec_id, task_ids } = await dispatch(
    c,
    quickSpec("two", 30, "'sleep 0.02'"),
  );
  assert.ok(
    task_ids.some((id) =>
      hrwWinner(id, ["node-a", "node-b", "ghost"]) === "ghost"
    ),
    "the spec must have tasks the ghost would monitor",
  );
  const envs = await waitTerminal(c, spec_id, 60_000);
  for (const id of ["node-a", "node-b"] as const) {
    await waitFor(`${id}'s queue drained`, async () => {
      const s = await queueStats(c.node(id));
      return s.unacked === 0 ? s : notYet(s);
    }, { timeoutMs: 20_000, intervalMs: 100 });
  }
  const lines = [
    ...await readSink(sinks["node-a"]),
    ...await readSink(sinks["node-b"]),
  ];
  const by = (kind: string) => {
    const m = new Map<string, string[]>();
    for (const l of dedup(lines).filter((l) => l.kind === kind)) {
      const id = String(l.payload.task_id);
      m.set(id, [...m.get(id) ?? [], l.emitter_node_id]);
    }
    return m;
  };
  const ranOn = new Map(envs.map((e) => [e.task_id, e.ran_on]));
  assert.deepEqual(
    new Set(envs.map((e) => e.ran_on)),
    new Set(["node-a", "node-b"]),
    "both nodes ran tasks",
  );
  const completed = by("task.completed");
  const claimed = by("task.claimed");
  const dispatched = by("task.dispatched");
  for (const id of task_ids) {
    assert.deepEqual(completed.get(id), [ranOn.get(id)], `completed ${id}`);
    assert.deepEqual(claimed.get(id), [ranOn.get(id)], `claimed ${id}`);
    assert.equal(dispatched.get(id)?.length, 1, `dispatched ${id}`);
  }
  // Each node reports its own join, in its own sink.
  for (const [id, file] of Object.entries(sinks)) {
    const joined = (await readSink(file)).filter((l) =>
      l.kind === "node.joined"
    );
    assert.deepEqual(joined.map((l) => l.payload.node_id), [id]);
  }
});

Deno.test("a result committed from the pending flush after a cut is reported as task.completed, once", async () => {
  await using etcd = await startEtcd();
  await using proxy = startProxy(etcd);
  const sink = `${await makeTempDir("boi-sink-")}/events.jsonl`;
  await using a = await startNode(etcd, {
    nodeId: "node-a",
    endpoints: proxy.endpoint,
    leaseTtlS: 5, // outlives the short cut below
    env: {
      BOI_PLUGINS: await hooksPlugins({
        tier: "audit",
        env: { BOI_HOOKS_FILE: sink },
      }),
    },
  });
  const spec = `${await makeTempDir("boi-spec-")}/spec.yaml`;
  await Deno.writeTextFile(spec, quickSpec("park", 1, "'sleep 1'"));
  const r = await cli(etcd, ["dispatch", spec, "--json"]);
  assert.equal(r.code, 0, r.explain());
  const id = JSON.parse(r.stdout).task_ids[0];
  await a.waitForLog((l) => l.msg === "worker started" && l.task_id === id);
  proxy.cut("blackhole");
  await a.waitForLog((l) => l.msg === "worker exited" && l.task_id === id);
  proxy.cut("reset"); // the finish fails now instead of at its deadline
  await a.waitForLog((l) =>
    l.msg === "result parked in pending flush" && l.task_id === id
  );
  proxy.restore();
  await a.waitForLog(
    (l) => l.msg === "result committed from pending flush" && l.task_id === id,
    20_000,
  );
  const done = await waitFor("task.completed in the sink", async () => {
    const ls = dedup(await readSink(sink)).filter((l) =>
      l.kind === "task.completed" && l.payload.task_id === id
    );
    return ls.length > 0 ? ls : notYet(ls.length);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  await waitFor("queue drained", async () => {
    const s = await queueStats(a);
    return s.unacked === 0 ? s : notYet(s);
  }, { timeoutMs: 15_000, intervalMs: 100 });
  const all = dedup(await readSink(sink)).filter((l) =>
    l.kind === "task.completed" && l.payload.task_id === id
  );
  assert.equal(all.length, 1, JSON.stringify(all));
  assert.equal(done[0].payload.node_id, "node-a");
});
