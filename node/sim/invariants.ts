/**
 * The simulator's invariants, checked on every step (and at the end of a
 * schedule): no write after a terminal state, no claimant write without the
 * fence, no Spawn after the node saw its claim gone or a cancel requested, no
 * worker left running more than one decision after that, no compare re-sent
 * unchanged after it failed (re-read, then re-decide), no envelope deleted
 * (retired) before its terminal state, and (at the end) no task left
 * unfinished, no spec record gone before its envelopes, and no caps record
 * frozen by a stale CAS revision.
 */
import { Envelope, TERMINAL_STATES } from "../schema.ts";
import type { CommitInfo } from "./etcd_model.ts";
import type { TxnEffect } from "../core/effects.ts";
import type { SimNode } from "./sim_node.ts";
import type { World } from "./world.ts";

interface Seen {
  /** task@fence → decision at which the node first saw its claim gone. */
  lost: Map<string, number>;
  /** task@fence → decision at which the node first saw cancel_requested. */
  cancel: Map<string, number>;
  /** Kills sent and not arrived yet, by task@fence. */
  killsInFlight: Map<string, number>;
  /** task + compares of transactions whose compare failed. */
  failedCompares: Set<string>;
}

/** The spec of the crashed dispatch (schedule.ts): it never gets a record. */
export const ORPHAN_SPEC = "lost";
/** The spec of the slow dispatch (schedule.ts): its record comes late. */
export const SLOW_SPEC = "slow";

/** Writers that act as the task's claimant: their writes must carry the fence. */
const CLAIMANT_REASONS = new Set(["running", "finish", "replay"]);

export class Checker {
  readonly #seen = new WeakMap<SimNode, Seen>();
  /** Terminal writes per task (exactly one once a schedule ends). */
  readonly terminal = new Map<string, number>();
  /** task@fence → the node whose finish (or replay) of that attempt committed. */
  readonly #finished = new Map<string, string>();
  /** task@fence → the node that announced its task.completed. */
  readonly #completed = new Map<string, string>();
  /** The last committed state and ran_on of each envelope key. */
  readonly #last = new Map<string, Pick<Envelope, "state" | "ran_on">>();
  /** Tasks whose envelope was deleted (retired) after a terminal state. */
  readonly retired = new Set<string>();
  /** Envelopes of the crashed dispatch deleted (no record, never claimed). */
  readonly orphansRetired = new Set<string>();

  constructor(readonly w: World) {
    w.etcd.onCommit = (c) => this.#onCommit(c);
  }

  #of(n: SimNode): Seen {
    let s = this.#seen.get(n);
    if (!s) {
      s = {
        lost: new Map(),
        cancel: new Map(),
        killsInFlight: new Map(),
        failedCompares: new Set(),
      };
      this.#seen.set(n, s);
    }
    return s;
  }

  /** Records what the node's view says about each of its workers' claims. */
  afterApply(n: SimNode): void {
    const v = n.view;
    if (v.workers.size === 0) return;
    const s = this.#of(n);
    for (const wk of v.workers.values()) {
      const key = `${wk.task_id}@${wk.fence}`;
      const claim = v.claims.get(wk.task_id);
      const mine = claim !== undefined && claim.create_revision === wk.fence &&
        claim.lease === v.lease_id;
      if (!mine && !s.lost.has(key)) s.lost.set(key, n.decisions);
      if (
        v.tasks.get(wk.task_id)?.value.cancel_requested && !s.cancel.has(key)
      ) {
        s.cancel.set(key, n.decisions);
      }
    }
  }

  /** Re-read, then re-decide: a compare that failed is never sent again unchanged. */
  onTxnSent(n: SimNode, e: TxnEffect): void {
    const key = compareKey(e);
    if (this.#of(n).failedCompares.has(key)) {
      this.w.fail(
        `${n.id} re-sent ${e.reason}(${e.task_id}) with a compare that already failed: ${
          JSON.stringify(e.compare)
        }`,
      );
    }
  }

  onTxnConflict(n: SimNode, e: TxnEffect): void {
    this.#of(n).failedCompares.add(compareKey(e));
  }

  /** A result reported superseded must really not be in etcd (finding 3: it was, after a retry). */
  onEmit(n: SimNode, event: string, payload: Record<string, unknown>): void {
    if (event === "task.completed") {
      // One commit, one event: a lost answer recognised by the read-back,
      // the watch (unsure.ts) or the flush replay must not announce it twice.
      const key = `${payload.task_id}@${payload.fence}`;
      if (this.#completed.has(key)) {
        this.w.fail(
          `${n.id} emitted task.completed for ${key} again (first by ${
            this.#completed.get(key)
          })`,
        );
      }
      this.#completed.set(key, n.id);
      return;
    }
    if (event !== "task.result_superseded") return;
    const key = `${payload.task_id}@${payload.fence}`;
    if (this.#finished.get(key) === n.id) {
      this.w.fail(
        `${n.id} reported ${key} superseded, but it committed that result itself`,
      );
    }
  }

  onSpawnSent(n: SimNode, taskId: string, fence: number): void {
    const s = this.#of(n);
    const key = `${taskId}@${fence}`;
    if (s.lost.has(key)) {
      this.w.fail(
        `${n.id} sent Spawn for ${key} after it saw its claim gone (decision ${
          s.lost.get(key)
        }, now ${n.decisions})`,
      );
    }
    if (s.cancel.has(key)) {
      this.w.fail(
        `${n.id} sent Spawn for ${key} after it saw cancel_requested (decision ${
          s.cancel.get(key)
        }, now ${n.decisions})`,
      );
    }
  }

  onKillSent(n: SimNode, taskId: string, fence: number): void {
    const m = this.#of(n).killsInFlight;
    const key = `${taskId}@${fence}`;
    m.set(key, (m.get(key) ?? 0) + 1);
  }

  onKillArrived(n: SimNode, taskId: string, fence: number): void {
    const m = this.#of(n).killsInFlight;
    const key = `${taskId}@${fence}`;
    const left = (m.get(key) ?? 1) - 1;
    if (left <= 0) m.delete(key);
    else m.set(key, left);
  }

  /** A process the node knows it must not run is being stopped by the next decision at the latest. */
  afterDecision(n: SimNode): void {
    if (n.pool.procs.size === 0) return;
    const s = this.#of(n);
    for (const p of n.pool.procs.values()) {
      if (p.phase === "done" || p.killed) continue;
      const key = `${p.task_id}@${p.fence}`;
      if (s.killsInFlight.has(key)) continue;
      const since = s.lost.get(key) ?? s.cancel.get(key);
      if (since !== undefined && n.decisions >= since + 2) {
        this.w.fail(
          `${n.id} leaves ${key} running (${p.phase}) ${
            n.decisions - since
          } decisions after it saw its claim gone or a cancel, and no kill reached the pool`,
        );
      }
    }
  }

  #onCommit(c: CommitInfo): void {
    const dq = this.w.keys.dir("dispatch-queue");
    const claims = this.w.keys.dir("claims");
    const orphan = `${ORPHAN_SPEC}.`;
    const reason = c.writer.slice(c.writer.indexOf(":") + 1);
    for (const op of c.txn.success) {
      // A task of a spec without a record is never claimed nor written by a
      // node: only the crashed dispatcher wrote it, only retention deletes it.
      const id = op.key.startsWith(dq)
        ? op.key.slice(dq.length)
        : op.key.startsWith(claims)
        ? op.key.slice(claims.length)
        : "";
      if (id.startsWith(orphan)) {
        if (op.op === "delete" && op.key.startsWith(dq)) {
          this.orphansRetired.add(id);
        } else if (!c.writer.startsWith("user:")) {
          this.w.fail(
            `${c.writer} wrote ${op.key} (${op.op}), a task whose spec has no record (rev ${c.revision})`,
          );
        }
        continue;
      }
      if (op.op === "delete" && op.key.startsWith(dq)) {
        // Retention (retire.ts) deletes finished envelopes only; a write
        // after it is caught below, as a write after the terminal state.
        const prev = this.#last.get(op.key);
        if (!prev || !TERMINAL_STATES.has(prev.state)) {
          this.w.fail(
            `${c.writer} deleted ${id} while it was ${
              prev?.state ?? "never written"
            } (rev ${c.revision})`,
          );
        }
        this.retired.add(id);
        continue;
      }
      if (op.op !== "put" || !op.key.startsWith(dq)) continue;
      // Written by the real txn builders from valid envelopes: no need to validate again.
      const prev = this.#last.get(op.key) ?? null;
      const next = JSON.parse(op.value) as Envelope;
      this.#last.set(op.key, { state: next.state, ran_on: next.ran_on });
      if (prev && TERMINAL_STATES.has(prev.state)) {
        this.w.fail(
          `${c.writer} wrote ${next.task_id} (${next.state}) after it was ${prev.state} (rev ${c.revision})`,
        );
      }
      if (TERMINAL_STATES.has(next.state)) {
        this.terminal.set(
          next.task_id,
          (this.terminal.get(next.task_id) ?? 0) + 1,
        );
      }
      const claimantWrite = CLAIMANT_REASONS.has(reason) ||
        (next.state === "RUNNING" && prev?.state !== "RUNNING") ||
        next.ran_on !== (prev?.ran_on ?? null);
      if (reason === "finish" || reason === "replay") {
        this.#finished.set(
          `${next.task_id}@${next.fence}`,
          c.writer.slice(0, c.writer.indexOf(":")),
        );
      }
      if (claimantWrite) {
        const claimKey = this.w.keys.claim(next.task_id);
        const fenced = c.txn.compare.some((x) =>
          x.key === claimKey && x.target === "create" && x.equals === next.fence
        );
        if (!fenced || next.fence === null) {
          this.w.fail(
            `${c.writer} wrote ${next.task_id} ${next.state} without the fence (fence ${next.fence}, rev ${c.revision})`,
          );
        }
      }
    }
  }

  /** Whether some live node's caps record in etcd differs from what it would publish now. */
  capsStale(nodes: SimNode[]): boolean {
    return nodes.some((n) => {
      if (!n.alive || n.paused || n.view.lease_id === null) return false;
      const kv = this.w.etcd.kv.get(this.w.keys.caps(n.id));
      return kv !== undefined &&
        JSON.stringify(JSON.parse(kv.value).dynamic) !== n.capsNow();
    });
  }

  /** End of schedule: every task terminal, every live node's caps record current. */
  final(nodes: SimNode[], taskIds: string[]): void {
    const open: string[] = [];
    for (const id of taskIds) {
      const kv = this.w.etcd.kv.get(this.w.keys.task(id));
      const env = kv ? Envelope.parse(JSON.parse(kv.value)) : null;
      if (!env && this.retired.has(id)) continue;
      if (!env || !TERMINAL_STATES.has(env.state)) {
        open.push(`${id}=${env?.state ?? "missing"}`);
      }
    }
    if (open.length > 0) {
      this.w.fail(`tasks never finished: ${open.slice(0, 8).join(", ")}`);
    }
    // A spec record goes only after every envelope of it.
    for (const spec of new Set(taskIds.map((id) => id.split(".")[0]))) {
      if (this.w.etcd.kv.has(this.w.keys.spec(spec))) continue;
      const left = taskIds.filter((id) =>
        id.startsWith(`${spec}.`) && this.w.etcd.kv.has(this.w.keys.task(id))
      );
      if (left.length > 0) {
        this.w.fail(
          `the spec record was deleted with envelopes left: ${
            left.slice(0, 8).join(", ")
          }`,
        );
      }
    }
    for (const n of nodes) {
      if (!n.alive) continue;
      // The audit sink holds every seq this node ever made durable: no loss, no gap.
      const last = n.hooks.state.next_seq - 1;
      for (let seq = 1; seq <= last; seq++) {
        if (!n.hooks.disk.sink.has(seq)) {
          this.w.fail(
            `${n.id}'s audit sink lacks seq ${seq} of ${last} (acked ${n.hooks.state.acked})`,
          );
        }
      }
    }
    for (const n of nodes) {
      if (!n.alive || n.view.lease_id === null) continue;
      const kv = this.w.etcd.kv.get(this.w.keys.caps(n.id));
      if (!kv) continue;
      const stored = JSON.stringify(JSON.parse(kv.value).dynamic);
      if (stored !== n.capsNow()) {
        this.w.fail(
          `${n.id}'s caps record is frozen: etcd has ${stored}, the node would publish ${n.capsNow()}`,
        );
      }
    }
  }
}

/** A transaction's task and compares as one string. */
function compareKey(e: TxnEffect): string {
  let k = e.task_id;
  for (const c of e.compare) k += `\x1f${c.key}\x1e${c.target}\x1e${c.equals}`;
  return k;
}
