/**
 * The txn runner: executes the core's transaction effects through the group
 * commit (audit hooks guard them with an intent first), and reports each
 * outcome back as `txn_done` — with the current records of the keys when the
 * compare failed. A finish etcd cannot take is parked in the pending flush
 * before the failure is reported, and a failure is reported only after a
 * short pause, so a down etcd is not hammered by the same decision.
 */
import { isUnreachable, unreachableReason } from "../etcd_errors.ts";
import type { NodeEvent, TxnEffect, Worker } from "../core/mod.ts";
import { txnKeys } from "../core/txns.ts";
import { guardTxn, type NodeHooks } from "../hooks/mod.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import type { FlushReplayer } from "./flush_replayer.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { countTxn } from "./node_metrics.ts";
import type { TxnBatcher } from "./txn_batch.ts";
import { now } from "./clock.ts";

export interface TxnRunnerDeps {
  txns: TxnBatcher;
  hooks: NodeHooks | null;
  health: EtcdHealth;
  replayer: FlushReplayer;
  log: Logger;
  metrics: Metrics;
  push: (ev: NodeEvent) => void;
  /** The worker whose result a finish carries (to park it). */
  worker: (taskId: string) => Worker | undefined;
}

/** Pause before a failed (unreachable) transaction is reported and so re-decided. */
const RETRY_PAUSE_MS = 200;

export async function runTxnEffect(
  d: TxnRunnerDeps,
  e: TxnEffect,
): Promise<void> {
  try {
    const res = await guardTxn(
      d.hooks,
      e,
      () => d.txns.run(e.compare, e.success, txnKeys(e)),
    );
    d.health.mark(true);
    countTxn(d.metrics, d.log, e, res.ok);
    d.log.debug(res.ok ? "txn committed" : "txn compare failed", {
      reason: e.reason,
      task_id: e.task_id,
      revision: res.revision,
    });
    d.push({
      type: "txn_done",
      at: now(),
      effect: e,
      ok: res.ok,
      revision: res.revision,
      error: null,
      reads: res.reads,
    });
  } catch (err) {
    const down = isUnreachable(err);
    // While etcd is known to be down every retry would log the same line.
    const quiet = down && !d.health.up;
    if (down) d.health.mark(false, err);
    d.log.log(quiet ? "debug" : "warn", "txn failed", {
      reason: e.reason,
      task_id: e.task_id,
      error: unreachableReason(err),
    });
    if (e.reason === "finish" && down) {
      await d.replayer.park(e, d.worker(e.task_id));
    }
    await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    d.push({
      type: "txn_done",
      at: now(),
      effect: e,
      ok: false,
      revision: 0,
      error: String(err),
    });
  }
}
