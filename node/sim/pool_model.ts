/**
 * A model of a node's pool plugin for the simulator: processes keyed by
 * (task, claim token) like the reference pool — Spawn is idempotent, a Kill
 * for a worker still starting is held until it has a pid, a Kill for a worker
 * the pool has never heard of does nothing (as `pool_local` does). A crash
 * kills every process and cuts every stream.
 */
import type { Rng } from "./rng.ts";
import type { Scheduler } from "./scheduler.ts";

export type WorkerEventSink = (
  ev:
    | { kind: "started"; pid: number }
    | { kind: "exit"; code: number | null; signal: string | null }
    | { kind: "cut"; error: string },
) => void;

export interface ModelProcess {
  readonly task_id: string;
  readonly fence: number;
  phase: "starting" | "running" | "done";
  /** A kill reached the pool while this process was known to it. */
  killed: boolean;
  pendingKill: number | null;
  sink: WorkerEventSink;
}

export class PoolModel {
  readonly procs = new Map<string, ModelProcess>();
  up = true;
  #pid = 100;
  /** Kills that arrived before their Spawn: that Spawn is refused (a kill is never forgotten). */
  readonly killedEarly = new Set<string>();

  constructor(readonly sched: Scheduler, readonly rng: Rng) {}

  /** `run` is the task's `sim <ms> <fail-probability>` command. */
  spawn(
    taskId: string,
    fence: number,
    run: string,
    sink: WorkerEventSink,
  ): void {
    const key = `${taskId}\x1f${fence}`;
    const existing = this.procs.get(key);
    if (existing) {
      existing.sink = sink; // re-attach: same worker, new stream
      return;
    }
    if (!this.up) {
      sink({ kind: "cut", error: "pool unavailable" });
      return;
    }
    if (this.killedEarly.delete(key)) {
      sink({ kind: "exit", code: null, signal: "SIGKILL" });
      return;
    }
    const p: ModelProcess = {
      task_id: taskId,
      fence,
      phase: "starting",
      killed: false,
      pendingKill: null,
      sink,
    };
    this.procs.set(key, p);
    const [, ms, failp] = run.split(" ");
    const duration = Number(ms);
    const code = this.rng.chance(Number(failp)) ? 1 : 0;
    this.sched.after(this.rng.next() * 3, () => {
      if (p.phase !== "starting") return;
      p.phase = "running";
      p.sink({ kind: "started", pid: this.#pid++ });
      if (p.pendingKill !== null) this.#signal(p, p.pendingKill);
      this.sched.after(duration, () => this.#exit(p, code, null));
    });
  }

  kill(taskId: string, fence: number, graceMs: number): void {
    const p = this.procs.get(`${taskId}\x1f${fence}`);
    if (!p) {
      this.killedEarly.add(`${taskId}\x1f${fence}`);
      return;
    }
    if (p.phase === "done") return;
    p.killed = true;
    if (p.phase === "starting") p.pendingKill = graceMs;
    else this.#signal(p, graceMs);
  }

  /** The plugin process died: its workers die with it, every stream is cut. */
  crash(): void {
    this.up = false;
    for (const p of this.procs.values()) {
      if (p.phase === "done") continue;
      p.phase = "done";
      p.sink({ kind: "cut", error: "pool plugin crashed" });
    }
    this.procs.clear();
  }

  /** Processes still alive (the checker looks for ones nobody will stop). */
  running(): ModelProcess[] {
    return [...this.procs.values()].filter((p) => p.phase !== "done");
  }

  #signal(p: ModelProcess, graceMs: number): void {
    // Model tasks honour SIGTERM at once; SIGKILL (grace 0) is immediate too.
    this.sched.after(
      Math.min(graceMs, 1),
      () => this.#exit(p, null, graceMs > 0 ? "SIGTERM" : "SIGKILL"),
    );
  }

  #exit(p: ModelProcess, code: number | null, signal: string | null): void {
    if (p.phase === "done") return;
    p.phase = "done";
    this.procs.delete(`${p.task_id}\x1f${p.fence}`);
    p.sink({ kind: "exit", code, signal });
  }
}
