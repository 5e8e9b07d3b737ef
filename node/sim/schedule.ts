/**
 * One seeded schedule: K nodes, a spec of T tasks, a random set of faults in
 * the fault window, then calm until every task is terminal. Returns the
 * outcome; a broken invariant ends it with the violation and a short trace.
 */
import { cancelStep } from "../core/cancel.ts";
import type { Compare } from "../core/effects.ts";
import { Envelope, type SpecRecord } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { Checker, ORPHAN_SPEC, SLOW_SPEC } from "./invariants.ts";
import { ORPHAN_GRACE_SIM_MS, SimNode } from "./sim_node.ts";
import {
  DEFAULT_PARAMS,
  type FaultKnobs,
  type SimParams,
  Violation,
  World,
} from "./world.ts";

export interface Outcome {
  seed: number;
  ok: boolean;
  violation?: string;
  trace?: string[];
  faults: string[];
  /** Virtual time the schedule took, ms. */
  virtual_ms: number;
  steps: number;
  /** The finished spec was retired (deleted) before the end. */
  retired?: boolean;
  /** The envelopes of the crashed dispatch were deleted before the end. */
  orphans_retired?: boolean;
}

const FAULTS = [
  "crash",
  "pause",
  "partition",
  "etcd_down",
  "compact",
  "pool_crash",
  "workspace_down",
  "slow_prepare",
  "cancel",
  "cancel",
  "stray_claim",
  "ghost_node",
  "hooks_crash",
  "slow_sink",
] as const;

/** Runs one schedule; `trace` keeps the last lines for a report (slower). */
export function runSchedule(
  seed: number,
  params: Partial<SimParams> = {},
  trace = false,
): Outcome {
  const p = { ...DEFAULT_PARAMS, ...params };
  // Knobs come from their own stream so they do not shift the schedule's other choices.
  const kr = new World(seed ^ 0x5eed, p, {} as FaultKnobs).rng;
  const knobs: FaultKnobs = {
    lost_reply: kr.chance(0.5) ? 0.03 : 0,
    endpoint_retry: kr.chance(0.5) ? 0.03 : 0,
    dup_watch: kr.chance(0.5) ? 0.05 : 0,
    watch_delay_max: kr.pick([1, 5, 30, 200]),
    audit_hooks: kr.chance(0.5),
    routers: kr.chance(0.5),
    lost_kill: kr.chance(0.5) ? 0.3 : 0,
    spec_retention_ms: kr.chance(0.5) ? kr.pick([300, 1500, 4000]) : 0,
    orphans: kr.chance(0.5),
    error_replies: kr.chance(0.5),
  };
  const w = new World(seed, p, knobs);
  w.tracing = trace;
  const check = new Checker(w);
  const ids = Array.from({ length: p.nodes }, (_, i) => `node-${i}`);
  const nodes = new Map<string, SimNode>();
  const incarnations = new Map<string, number>();
  const spawnNode = (id: string) => {
    const inc = (incarnations.get(id) ?? 0) + 1;
    incarnations.set(id, inc);
    const n = new SimNode(w, id, inc, check);
    nodes.set(id, n);
    n.start();
  };
  ids.forEach((id, i) => w.sched.after(i * 7, () => spawnNode(id)));
  const orphanIds = knobs.orphans ? dispatchOrphans(w) : [];
  // With the crashed dispatch, a slow one too: its two transactions further
  // apart than the orphan grace, its marker there in between.
  const taskIds = [
    ...dispatch(w, p.tasks),
    ...(knobs.orphans ? dispatchSlowly(w) : []),
  ];
  const faults: string[] = [];
  const nFaults = w.rng.int(1, 5);
  for (let i = 0; i < nFaults; i++) {
    const kind = w.rng.pick(FAULTS);
    const at = w.rng.int(150, p.fault_window_ms);
    const node = w.rng.pick(ids);
    const global = ["compact", "etcd_down", "ghost_node", "stray_claim"];
    faults.push(`${kind}@${at}${global.includes(kind) ? "" : ":" + node}`);
    w.sched.after(at, () => inject(w, kind, node, nodes, spawnNode, taskIds));
  }
  let done = false;
  const outcome = (extra: Partial<Outcome>): Outcome => ({
    seed,
    ok: true,
    faults,
    virtual_ms: w.sched.now,
    steps: w.sched.steps,
    ...extra,
  });
  try {
    const allTerminal = () =>
      taskIds.every((id) => {
        const kv = w.etcd.kv.get(w.keys.task(id));
        if (kv === undefined) return check.retired.has(id);
        return /"state":"(DONE|FAILED|CANCELLED)"/.test(kv.value);
      });
    w.sched.runUntil(p.fault_window_ms + 3000);
    for (let t = w.sched.now; t < p.deadline_ms && !done; t += 500) {
      w.sched.runUntil(t);
      done = allTerminal();
    }
    // A frozen record never catches up; a live one does within a publish
    // period or two (caps go out at most once a second, after replays and
    // re-registration): poll for up to 5 s of calm before judging.
    while ([...nodes.values()].some((n) => n.paused)) {
      w.sched.runUntil(w.sched.now + 500);
    }
    const calmUntil = w.sched.now + 5000;
    while (w.sched.now < calmUntil) {
      w.sched.runUntil(w.sched.now + 100);
      if (!check.capsStale([...nodes.values()]) && hooksCaughtUp(nodes)) break;
    }
    // With retention on, give the finished spec the time to be retired,
    // so the deletes race the faults' leftovers (replays, stale views).
    const orphansLeft = () =>
      orphanIds.some((id) => w.etcd.kv.has(w.keys.task(id)));
    if (knobs.spec_retention_ms > 0) {
      const until = w.sched.now + knobs.spec_retention_ms + 5000;
      while (
        w.sched.now < until &&
        (w.etcd.kv.has(w.keys.spec("sim")) || orphansLeft())
      ) {
        w.sched.runUntil(w.sched.now + 250);
      }
    }
    check.final([...nodes.values()], taskIds);
    return outcome({
      retired: !w.etcd.kv.has(w.keys.spec("sim")),
      orphans_retired: orphanIds.length > 0 && !orphansLeft(),
    });
  } catch (e) {
    if (!(e instanceof Violation)) throw e;
    return outcome({ ok: false, violation: e.message, trace: w.traceLines() });
  }
}

/** Every live node's audit sink has everything it emitted. */
function hooksCaughtUp(nodes: Map<string, SimNode>): boolean {
  return [...nodes.values()].every((n) => !n.alive || n.hooks.caughtUp());
}

function inject(
  w: World,
  kind: typeof FAULTS[number],
  id: string,
  nodes: Map<string, SimNode>,
  spawnNode: (id: string) => void,
  taskIds: string[],
): void {
  const n = nodes.get(id);
  const ttl = w.params.lease_ttl_ms;
  w.trace(`fault ${kind} ${id}`);
  switch (kind) {
    case "crash":
      if (!n?.alive) return;
      n.crash();
      w.sched.after(w.rng.int(300, 3000), () => spawnNode(id));
      return;
    case "pause":
      if (n?.alive && !n.paused) n.pause(ttl + w.rng.int(200, 3000));
      return;
    case "partition":
      w.partitioned.add(id);
      w.sched.after(w.rng.int(500, 5000), () => {
        w.partitioned.delete(id);
        nodes.get(id)?.pump();
      });
      return;
    case "etcd_down":
      w.etcd.up = false;
      w.sched.after(w.rng.int(200, 4000), () => {
        w.etcd.up = true;
        w.etcd.restoreLeases();
        for (const m of nodes.values()) m.pump();
      });
      return;
    case "compact":
      w.etcd.compact();
      return;
    case "pool_crash":
      if (n?.alive) n.crashPool(w.rng.int(200, 1500));
      return;
    case "workspace_down":
      if (!n?.alive) return;
      n.workspaceUp = false;
      w.sched.after(w.rng.int(200, 2000), () => n.workspaceUp = true);
      return;
    case "slow_prepare":
      w.slowPrepareUntil.set(id, w.sched.now + w.rng.int(2000, 6000));
      return;
    case "cancel":
      return userCancel(w, w.rng.pick(taskIds));
    case "hooks_crash":
      if (n?.alive) n.hooks.crashPlugin(w.rng.int(100, 2000));
      return;
    case "slow_sink": {
      if (!n?.alive) return;
      n.hooks.slowAckMs = 50;
      w.sched.after(w.rng.int(1000, 4000), () => n.hooks.slowAckMs = 0);
      return;
    }
    case "stray_claim": {
      // `etcdctl put` of a claim no node holds (no lease), on an unclaimed task.
      const task = w.rng.pick(taskIds);
      const key = w.keys.claim(task);
      w.trace(`stray claim on ${task}`);
      w.etcd.txn("user:stray", [{
        compare: [{ key, target: "version", equals: 0 }],
        success: [{
          op: "put",
          key,
          value: JSON.stringify({
            node_id: "ghost",
            lease_id: "0",
            claimed_at: 0,
            attempt: 1,
          }),
        }],
      }]);
      return;
    }
    case "ghost_node": {
      // A node record without a lease (and no caps): never a member.
      const key = w.keys.node("node-ghost");
      w.etcd.txn("user:ghost", [{
        compare: [],
        success: [{
          op: "put",
          key,
          value: JSON.stringify({
            node_id: "node-ghost",
            addr: "x:1",
            version: "0",
            started_at: 0,
            pid: 1,
          }),
        }],
      }]);
      return;
    }
  }
}

/** `tasks cancel` as the CLI does it: the pure policy, a compare on the envelope, three tries. */
function userCancel(w: World, taskId: string, tries = 3): void {
  if (!w.etcd.up || tries === 0) return;
  const key = w.keys.task(taskId);
  const kv = w.etcd.kv.get(key);
  if (!kv) return;
  const step = cancelStep(
    Envelope.parse(JSON.parse(kv.value)),
    Math.floor(w.sched.now),
  );
  if (step.kind !== "put") return;
  w.trace(`user cancels ${taskId} (${step.envelope.state})`);
  const [r] = w.etcd.txn("user:cancel", [{
    compare: [{ key, target: "mod", equals: kv.mod_revision }],
    success: [{ op: "put", key, value: JSON.stringify(step.envelope) }],
  }]);
  if (!r.ok) w.sched.after(1, () => userCancel(w, taskId, tries - 1));
}

/** Writes the spec in one transaction, as `dispatch` does (version == 0 on every key). */
/**
 * What a dispatcher killed between its transactions leaves: envelopes of spec
 * "lost" whose record never comes (ids in `ORPHAN_SPEC`, see invariants.ts).
 */
function dispatchOrphans(w: World): string[] {
  const ids = [`${ORPHAN_SPEC}.a`, `${ORPHAN_SPEC}.b`];
  const ops = ids.map((id) => ({
    op: "put" as const,
    key: w.keys.task(id),
    value: JSON.stringify(
      testEnvelope(id, { spec_id: ORPHAN_SPEC, run: "sim 5 0" }),
    ),
  }));
  w.sched.after(
    20,
    () => w.etcd.txn("user:crashed-dispatch", [{ compare: [], success: ops }]),
  );
  return ids;
}

/**
 * A dispatch of two transactions (spec `SLOW_SPEC`) whose second comes long
 * after the orphan grace: the first holds the marker, the second requires
 * it, deletes it and commits the record. No node may delete its envelopes.
 */
function dispatchSlowly(w: World): string[] {
  const ids = [`${SLOW_SPEC}.a`, `${SLOW_SPEC}.b`];
  const marker = w.keys.dispatching(SLOW_SPEC);
  const put = (id: string) => ({
    op: "put" as const,
    key: w.keys.task(id),
    value: JSON.stringify(testEnvelope(id, { run: "sim 5 0" })),
  });
  const spec: SpecRecord = {
    spec_id: SLOW_SPEC,
    yaml: "",
    sha256: "",
    dispatched_by: "sim",
    dispatched_at: 0,
    task_ids: ids,
  };
  w.sched.after(30, () =>
    w.etcd.txn("user:slow-dispatch", [{
      compare: [{ key: marker, target: "version", equals: 0 }],
      success: [put(ids[0]), {
        op: "put",
        key: marker,
        value: JSON.stringify({
          spec_id: SLOW_SPEC,
          dispatched_by: "sim",
          transactions: 2,
        }),
      }],
    }]));
  w.sched.after(
    30 + ORPHAN_GRACE_SIM_MS * 4,
    () =>
      w.etcd.txn("user:slow-dispatch", [{
        compare: [{ key: marker, target: "version", equals: 1 }],
        success: [put(ids[1]), { op: "delete", key: marker }, {
          op: "put",
          key: w.keys.spec(SLOW_SPEC),
          value: JSON.stringify(spec),
        }],
      }]),
  );
  return ids;
}

function dispatch(w: World, count: number): string[] {
  const specId = "sim";
  const ids: string[] = [];
  const ops: { op: "put"; key: string; value: string }[] = [];
  const compare: Compare[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${specId}.t${i}`;
    const deps = i > 0 && w.rng.chance(0.15)
      ? [`${specId}.t${w.rng.int(0, i - 1)}`]
      : [];
    const retries = w.rng.pick([0, 0, 1, 2]);
    const env = testEnvelope(id, {
      state: deps.length > 0 ? "BLOCKED" : "PENDING",
      run: `sim ${w.rng.int(5, 400)} ${w.rng.pick([0, 0, 0.2])}`,
      depends_on: deps,
      retries_left: retries,
    });
    ids.push(id);
    compare.push({ key: w.keys.task(id), target: "version", equals: 0 });
    ops.push({ op: "put", key: w.keys.task(id), value: JSON.stringify(env) });
  }
  const spec: SpecRecord = {
    spec_id: specId,
    yaml: "",
    sha256: "",
    dispatched_by: "sim",
    dispatched_at: 0,
    task_ids: ids,
  };
  ops.push({
    op: "put",
    key: w.keys.spec(specId),
    value: JSON.stringify(spec),
  });
  w.sched.after(
    50,
    () => w.etcd.txn("user:dispatch", [{ compare, success: ops }]),
  );
  return ids;
}
