/**
 * The pending flush in motion (SPEC §6): a finish etcd could not take is
 * parked (fsynced) and handed to the file; once etcd answers, each entry is
 * replayed oldest first — committed under its fence, or found already
 * committed or superseded. Which of the three is decided by the core
 * (`decideReplay`); this part only reads, writes and reports.
 */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import { deadline, isUnreachable } from "../etcd_errors.ts";
import type { Keys } from "../keys.ts";
import type { FlushEntry } from "../schema.ts";
import type {
  CoreConfig,
  Effect,
  NodeEvent,
  TxnEffect,
  Worker,
} from "../core/mod.ts";
import { decideReplay } from "../core/flush_replay.ts";
import { committedEvents } from "../core/hook_events.ts";
import { guardTxn, type NodeHooks } from "../hooks/mod.ts";
import { runTxn, toChange } from "./etcd_io.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import type { Logger } from "./log.ts";
import type { PendingFlush } from "./pending_flush.ts";
import { now } from "./clock.ts";

export interface FlushReplayerDeps {
  flush: PendingFlush;
  client: Etcd3;
  keys: Keys;
  config: CoreConfig;
  log: Logger;
  health: EtcdHealth;
  push: (ev: NodeEvent) => void;
  /** Effects decided here (the superseded event) go out like the core's. */
  execute: (e: Effect) => void;
  stopping: () => boolean;
  /** The node's hooks: a replayed commit is a transition like any other (intent, events). */
  hooks?: () => NodeHooks | null;
}

export class FlushReplayer {
  #replaying = false;

  constructor(readonly deps: FlushReplayerDeps) {}

  /** Parks the result of a finish etcd could not take; the file owns it once this resolves. */
  async park(e: TxnEffect, w: Worker | undefined): Promise<void> {
    const fence = e.compare.find((c) => c.target === "create")?.equals;
    if (!w || !w.result || fence === undefined || w.fence !== fence) return;
    try {
      await this.deps.flush.append({
        task_id: w.task_id,
        fence,
        attempt: w.attempt,
        code: w.result.code,
        signal: w.result.signal,
        error: w.result.error,
        lost: w.result.lost,
        started_at: w.started_at,
        finished_at: w.result.finished_at,
        parked_at: now(),
      });
    } catch (err) {
      // Not durable: keep it in memory and let the finish be retried instead.
      this.deps.log.error("pending flush: append failed", {
        task_id: w.task_id,
        error: String(err),
      });
      return;
    }
    this.deps.log.warn("result parked in pending flush", {
      task_id: w.task_id,
      fence,
    });
    this.deps.push({
      type: "result_flushed",
      at: now(),
      task_id: w.task_id,
      fence,
    });
  }

  /** Replays parked results oldest first; one round at a time. */
  async replay(): Promise<void> {
    const { flush } = this.deps;
    if (this.#replaying || this.deps.stopping() || flush.entries.length === 0) {
      return;
    }
    this.#replaying = true;
    try {
      for (const entry of [...flush.entries]) {
        try {
          await this.#replayOne(entry);
        } catch (err) {
          if (isUnreachable(err)) throw err; // etcd is gone: end the round
          // This one cannot settle now (its envelope keeps changing, etcd
          // refused the request): the entries behind it are not held up;
          // it is tried again next round, still oldest first.
          this.deps.log.error("pending flush replay failed", {
            task_id: entry.task_id,
            fence: entry.fence,
            error: String(err),
          });
          continue;
        }
        // Its fate in etcd is settled: the core hears it even if the file
        // cannot be rewritten now (a full disk), or the task would wait for
        // a resolution that never comes. A line left behind is found settled
        // at the next start.
        this.deps.push({
          type: "flush_resolved",
          at: now(),
          task_id: entry.task_id,
        });
        await flush.remove(entry.task_id, entry.fence).catch((err) =>
          this.deps.log.error(
            "pending flush: a settled entry stays in the file",
            {
              task_id: entry.task_id,
              fence: entry.fence,
              error: String(err),
            },
          )
        );
      }
    } catch (err) {
      this.deps.health.mark(false, err); // unreachable: the only error let out
    } finally {
      this.#replaying = false;
    }
  }

  async #replayOne(entry: FlushEntry): Promise<void> {
    const { client, keys, log } = this.deps;
    const claimKey = keys.claim(entry.task_id);
    const taskKey = keys.task(entry.task_id);
    for (let i = 0; i < 10; i++) {
      const [claimRes, taskRes] = await Promise.all([
        client.kv.range({ key: Buffer.from(claimKey) }, deadline(3000)),
        client.kv.range({ key: Buffer.from(taskKey) }, deadline(3000)),
      ]);
      this.deps.health.mark(true);
      const kvOf = (r: typeof claimRes) =>
        r.kvs[0] ? toChange(r.kvs[0], false) : null;
      const step = decideReplay(
        this.deps.config,
        keys,
        entry,
        kvOf(claimRes),
        kvOf(taskRes),
      );
      if (step.kind === "already") {
        log.info("pending flush: result was already committed", {
          task_id: entry.task_id,
        });
        return;
      }
      if (step.kind === "superseded") {
        log.warn("result superseded", {
          task_id: entry.task_id,
          fence: entry.fence,
          current_claim_fence: step.current_claim_fence,
          state: step.state,
        });
        this.deps.execute({
          kind: "emit",
          event: "task.result_superseded",
          payload: { task_id: entry.task_id, fence: entry.fence },
        });
        return;
      }
      const txn: TxnEffect = {
        kind: "txn",
        reason: "finish",
        task_id: entry.task_id,
        from_state: step.from,
        compare: step.compare,
        success: step.success,
      };
      const res = await guardTxn(
        this.deps.hooks?.() ?? null,
        txn,
        () => runTxn(client, txn.compare, txn.success),
      );
      if (res.ok) {
        const { keys, execute } = this.deps;
        for (const ev of committedEvents(keys, txn, res.revision)) execute(ev);
        log.info("result committed from pending flush", {
          task_id: entry.task_id,
          fence: entry.fence,
          state: step.next.state,
          attempts: step.next.attempts,
        });
        return;
      }
    }
    log.warn("pending flush: envelope kept changing, will retry", {
      task_id: entry.task_id,
    });
    throw new Error(`pending flush: could not commit ${entry.task_id}`);
  }
}
