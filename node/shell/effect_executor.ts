/**
 * What each of the core's effects means in the outside world: the one place
 * the shell turns an effect into I/O. The core decided it; nothing here
 * decides again, except prepare ahead, which starts no command
 * (prepare_ahead.ts).
 */
import type {
  Effect,
  MutableView,
  NodeEvent,
  RouteEffect,
} from "../core/mod.ts";
import type { Router } from "../plugins/contracts.ts";
import type { NodeHooks } from "../hooks/mod.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import type { Logger } from "./log.ts";
import { aheadSpec } from "./prepare_ahead.ts";
import type { ProvisionRunner } from "./provisioning.ts";
import { runTxnEffect, type TxnRunnerDeps } from "./txn_runner.ts";
import type { WorkerRunner } from "./worker_runner.ts";
import { now as clock } from "./clock.ts";

/** The shell's parts an effect may reach. */
export interface EffectTargets {
  view: MutableView;
  log: Logger;
  etcd: EtcdHealth;
  txns: TxnRunnerDeps;
  workers: WorkerRunner;
  hooks: NodeHooks | null;
  provision: ProvisionRunner | null;
  router: Router | null;
  /** Where an effect's outcome comes back as an event. */
  push: (ev: NodeEvent) => void;
}

/** Starts the I/O of one effect; results come back as events the shell pushes. */
export function executeEffect(t: EffectTargets, e: Effect): void {
  switch (e.kind) {
    case "txn": {
      // Its workspace is prepared while the claim flies (prepare_ahead.ts).
      const spec = aheadSpec(t.view, e, t.etcd.up);
      if (spec !== undefined) t.workers.ahead.start(spec, e.task_id);
      runTxnEffect(t.txns, e);
      return;
    }
    case "prepare":
      t.workers.prepare(e);
      return;
    case "spawn":
      t.workers.spawn(e);
      return;
    case "abort":
      t.workers.abort(
        e,
        t.view.tasks.get(e.task_id)?.value.spec_id ??
          e.task_id.slice(0, e.task_id.indexOf(".")),
      );
      return;
    case "kill":
      t.workers.kill(e);
      return;
    case "drop_worker":
      return;
    case "log":
      t.log.log(e.level, e.msg, e.fields);
      return;
    case "emit":
      // Per-task events at debug: several per task would cost a busy node CPU at info.
      t.log.log(e.event.startsWith("task.") ? "debug" : "info", "event", {
        event: e.event,
        ...e.payload,
      });
      t.hooks?.emit(e);
      return;
    case "provision":
      t.provision?.run(e);
      return;
    case "route":
      route(t, e);
      return;
  }
}

const ROUTE_WARN_EVERY_MS = 10_000;
let lastRouteWarn = -Infinity;

/** Asks the router; any failure is an answer too (no advice: HRW decides). */
function route(t: EffectTargets, e: RouteEffect): void {
  const answer = (
    requires: Record<string, string> | null,
    preferred: string[],
    error: string | null,
  ) =>
    t.push({
      type: "route_advice",
      at: clock(),
      task_id: e.task_id,
      sv: e.sv,
      requires,
      preferred,
      error,
    });
  if (t.router === null) return answer(null, [], "no router plugin");
  t.router.route({
    task_id: e.task_id,
    requires: e.requires,
    candidates: e.candidates,
  }).then(
    (r) => answer(r.requires, r.preferred_node_ids, null),
    (err: Error) => {
      // At most one line per ROUTE_WARN_EVERY_MS: a router that is down
      // fails every task's call, and its supervisor reports it already.
      const now = clock();
      if (now - lastRouteWarn >= ROUTE_WARN_EVERY_MS) {
        lastRouteWarn = now;
        t.log.warn("route failed: HRW decides", {
          task_id: e.task_id,
          error: err.message,
        });
      }
      answer(null, [], err.message);
    },
  );
}
