/** The node's own metric series (SPEC §12) and how each transaction outcome counts. */
import type { NodeEvent, NodeView, TxnEffect } from "../core/mod.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { PluginRecord } from "./plugin_host.ts";
import { now } from "./clock.ts";

/** Declares the node's series; gauges are read from the view at scrape time. */
export function declareNodeMetrics(
  m: Metrics,
  view: NodeView,
  flushBytes: () => number,
  health: EtcdHealth,
): void {
  m.declare("boi_etcd_up", "gauge", "1 when the last etcd call succeeded");
  m.declare(
    "boi_etcd_unreachable_seconds",
    "gauge",
    "seconds since etcd became unreachable, 0 when up",
  );
  m.declare("boi_tasks", "gauge", "tasks in this node's view by state");
  m.declare("boi_claims_total", "counter", "claims won by this node");
  m.declare(
    "boi_claim_conflicts_total",
    "counter",
    "claim transactions whose compare failed",
  );
  m.declare(
    "boi_lease_expired_requeues_total",
    "counter",
    "tasks re-queued by this node after a lease expiry",
  );
  m.declare(
    "boi_dispatch_rejected_etcd_unreachable_total",
    "counter",
    "dispatches refused while etcd was unreachable",
  );
  m.declare(
    "boi_watch_events_total",
    "counter",
    "key changes this node received from its watch of the prefix",
  );
  m.declare("boi_workers_busy", "gauge", "workers running on this node");
  m.declare(
    "boi_task_duration_seconds",
    "histogram",
    "task run time on this node",
  );
  m.declare(
    "boi_dispatch_to_start_seconds",
    "histogram",
    "dispatch to worker start on this node",
  );
  m.set("boi_etcd_up", 1);
  m.collect(() => {
    m.reset("boi_tasks");
    const counts = new Map<string, number>();
    for (const t of view.tasks.values()) {
      counts.set(t.value.state, (counts.get(t.value.state) ?? 0) + 1);
    }
    for (const [state, n] of counts) m.set("boi_tasks", n, { state });
    m.set("boi_workers_busy", view.workers.size);
    m.set("boi_pending_flush_bytes", flushBytes());
    m.set(
      "boi_etcd_unreachable_seconds",
      health.downSince === null ? 0 : (now() - health.downSince) / 1000,
    );
  });
}

/** Counts (and logs) what a transaction's outcome means for the metrics. */
export function countTxn(
  m: Metrics,
  log: Logger,
  e: TxnEffect,
  ok: boolean,
): void {
  if (e.reason === "claim") {
    if (ok) {
      m.inc("boi_claims_total");
      log.info("claimed", { task_id: e.task_id, attempt: e.attempt });
    } else m.inc("boi_claim_conflicts_total");
  }
  if (e.reason === "requeue" && ok) {
    m.inc("boi_lease_expired_requeues_total");
    log.info("requeued after lease expiry", { task_id: e.task_id });
  }
  if (e.reason === "finish" && ok) {
    const env = JSON.parse(
      e.success[0].op === "put" ? e.success[0].value : "{}",
    );
    log.info("task finished", {
      task_id: e.task_id,
      state: env.state,
      exit_code: env.exit_code,
      attempts: env.attempts,
    });
    if (env.started_at && env.finished_at) {
      m.observe(
        "boi_task_duration_seconds",
        (env.finished_at - env.started_at) / 1000,
      );
    }
  }
}

/** Wraps the watch's push so each key change counts: the watch fan-out per node (bench: events per node per task). */
export function countWatchEvents(
  m: Metrics,
  push: (ev: NodeEvent) => void,
): (ev: NodeEvent) => void {
  return (ev) => {
    if (ev.type === "changes") {
      m.inc("boi_watch_events_total", {}, ev.changes.length);
    }
    push(ev);
  };
}

/** A plugin's state change, as its gauge and restart counter (SPEC §12). */
export function countPluginChange(
  m: Metrics,
  plugin: string,
  prev: PluginRecord | undefined,
  record: PluginRecord,
): void {
  m.set("boi_plugin_unstable", record.state === "unstable" ? 1 : 0, { plugin });
  if (prev && record.crashes.length > prev.crashes.length) {
    m.inc("boi_plugin_restarts_total", { plugin });
  }
}
