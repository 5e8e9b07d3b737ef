/** The view, events and handlers of one node, driven as the shell drives them: for core tests. */
import assert from "node:assert/strict";
import { Keys } from "../keys.ts";
import type { Envelope } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { applyEffects, applyEvent } from "./apply.ts";
import type { Effect, TxnEffect } from "./effects.ts";
import type { KeyChange, NodeEvent } from "./events.ts";
import { handle, onWorkerExit } from "./handlers.ts";
import { RUNNING_WRITE_AFTER_MS } from "./worker_decide.ts";
import { type CoreConfig, emptyView, type MutableView } from "./view.ts";

export const keys = new Keys("/boi/");
let rev = 100;

/** The next etcd revision of the test's history. */
export function nextRev(): number {
  return ++rev;
}

/** The revision of the last change made. */
export function lastRev(): number {
  return rev;
}

export function envelope(id: string, over: Partial<Envelope> = {}): Envelope {
  return testEnvelope(`s1.${id}`, over);
}

export function put(key: string, value: unknown, lease = "0"): KeyChange {
  rev++;
  return {
    key,
    revision: rev,
    kv: {
      value: JSON.stringify(value),
      mod_revision: rev,
      create_revision: rev,
      lease,
    },
  };
}
export function del(key: string): KeyChange {
  rev++;
  return { key, revision: rev, kv: null };
}

/** A view of `self` in a cluster of `nodes`, all registered with default caps (plus `caps`), `config` over the defaults. */
export function cluster(
  self: string,
  nodes: string[],
  caps: Record<string, Record<string, string>> = {},
  workersMax = 4,
  config: Partial<CoreConfig> = {},
): MutableView {
  const v = emptyView({
    node_id: self,
    workers_max: workersMax,
    static_caps: { os: "linux", arch: "x86_64", ...(caps[self] ?? {}) },
    spill_after_ms: 1000,
    spill_step_ms: 100,
    retry_backoff_ms: 1000,
    cancel_grace_ms: 1000,
    claim_failure_window_ms: 300_000,
    claim_failure_limit: 3,
    claim_failure_cooldown_ms: 300_000,
    ...config,
  });
  applyEvent(v, keys, {
    type: "lease_granted",
    at: 0,
    lease_id: "7",
    valid_until: 1e15,
  });
  const changes: KeyChange[] = [put(keys.spec("s1"), {
    spec_id: "s1",
    yaml: "",
    sha256: "x",
    dispatched_by: "t",
    dispatched_at: 0,
    task_ids: [],
  })];
  for (const n of nodes) {
    changes.push(
      put(keys.node(n), {
        node_id: n,
        addr: "x:1",
        version: "0",
        started_at: 0,
        pid: 1,
      }, n === self ? "7" : "9"),
    );
    changes.push(put(keys.caps(n), {
      static: { os: "linux", arch: "x86_64", ...(caps[n] ?? {}) },
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
    }));
  }
  applyEvent(v, keys, { type: "changes", at: 0, changes });
  return v;
}

/** Runs one event through the reducer and the handlers, as the shell does; returns the effects. */
export function step(v: MutableView, ev: NodeEvent): Effect[] {
  applyEvent(v, keys, ev);
  const effects = handle(v, keys, ev);
  applyEffects(v, effects, ev.at);
  return effects;
}

/** Applies `changes` at time `at` and returns what the handlers decide. */
export function feed(
  v: MutableView,
  at: number,
  ...changes: KeyChange[]
): Effect[] {
  return step(v, { type: "changes", at, changes });
}

export const txns = (effects: Effect[]) =>
  effects.filter((e): e is TxnEffect => e.kind === "txn");
export const NODES = ["node-a", "node-b", "node-c"];
// hrw: "s1.t1" ranks node-a, node-c, node-b
export const T1 = "s1.t1";

/** Drives node-a through claim → spawn → started → exit; returns the view and the fence. */
export function claimAndRun(retries = 0): { v: MutableView; fence: number } {
  const v = cluster("node-a", NODES);
  const [claim] = txns(
    feed(v, 0, put(keys.task(T1), envelope("t1", { retries_left: retries }))),
  );
  const fence = nextRev();
  const ev = {
    type: "txn_done" as const,
    at: 1,
    effect: claim,
    ok: true,
    revision: fence,
    error: null,
  };
  applyEvent(v, keys, ev);
  const [claimed, ...prepare] = handle(v, keys, ev);
  assert.deepEqual(claimed, {
    kind: "emit",
    event: "task.claimed",
    payload: {
      task_id: T1,
      spec_id: "s1",
      node_id: "node-a",
      attempt: 1,
      fence,
    },
  });
  assert.deepEqual(prepare.map((e) => e.kind), ["prepare"]);
  assert.equal(prepare[0].kind === "prepare" && prepare[0].fence, fence);
  applyEffects(v, prepare, 1);
  const spawn = step(v, {
    type: "worker_prepared",
    at: 1,
    task_id: T1,
    fence,
    workdir: "/w",
    env: {},
  });
  assert.deepEqual(spawn.map((e) => e.kind), ["spawn"]);
  const started = {
    type: "worker_started" as const,
    at: 2,
    task_id: T1,
    fence,
    pid: 42,
  };
  applyEvent(v, keys, started);
  // RUNNING waits RUNNING_WRITE_AFTER_MS: a task that ends sooner folds it into its finish.
  assert.deepEqual(txns(handle(v, keys, started)), []);
  assert.deepEqual(txns(step(v, { type: "tick", at: 51 })), []);
  const tick = { type: "tick" as const, at: 2 + RUNNING_WRITE_AFTER_MS };
  applyEvent(v, keys, tick);
  const running = txns(handle(v, keys, tick));
  assert.equal(running.length, 1);
  assert.equal(running[0].reason, "running");
  const runningEnv = JSON.parse(
    (running[0].success[0] as { value: string }).value,
  );
  assert.equal(runningEnv.state, "RUNNING");
  assert.equal(runningEnv.started_at, 2);
  assert.equal(runningEnv.fence, fence);
  assert.deepEqual(running[0].compare[0], {
    key: keys.claim(T1),
    target: "create",
    equals: fence,
  });
  applyEffects(v, running, 2);
  applyEvent(v, keys, {
    type: "txn_done",
    at: 3,
    effect: running[0],
    ok: true,
    revision: nextRev(),
    error: null,
  });
  return { v, fence };
}

/** {@linkcode claimAndRun}, then the worker exits 0 at 10: its finish transaction. */
export function runAndExit(): {
  v: MutableView;
  fence: number;
  fin: TxnEffect;
} {
  const { v, fence } = claimAndRun();
  applyEvent(v, keys, {
    type: "worker_exit",
    at: 10,
    task_id: T1,
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  });
  const [fin] = txns(onWorkerExit(v, keys, T1, 10));
  return { v, fence, fin };
}
