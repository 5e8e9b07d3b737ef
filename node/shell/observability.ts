/**
 * Wiring of the node's observability surface: tail, log retention, the
 * dashboard and the metrics they (and SPEC §12) add. main.ts creates one
 * `Observability`, hands it to `handleHttp`, calls `attach(node)` once the
 * node exists and `close()` on shutdown (which ends every open stream).
 */
import type { NodeView } from "../core/view.ts";
import { TERMINAL_STATES } from "../schema.ts";
import type { Metrics } from "./metrics.ts";
import { denoFs, type TailEnv, taskLogInfo } from "./tail.ts";
import {
  scheduleSweeps,
  type SweepEnv,
  sweepLogs,
  type SweepReport,
} from "./retention.ts";
import { type DashboardState, dashboardState } from "./dashboard.ts";

/** What this module uses of a BoiNode (kept narrow: node.ts changes under us). */
export interface ObservedNode {
  readonly view: NodeView;
  readonly metrics: Metrics;
  readonly deps: {
    readonly config: { readonly node_id: string; readonly data_dir: string };
  };
  readonly log: {
    info(msg: string, fields?: Record<string, unknown>): void;
    warn(msg: string, fields?: Record<string, unknown>): void;
  };
  health(): { ok: boolean; reason: string };
}

export interface ObservabilityOptions {
  /** How often a tail follow looks for new bytes. @default 100 */
  tailPollMs?: number;
  /** Retention sweep period. @default 1 hour */
  sweepIntervalMs?: number;
  /** First sweep after start. @default 60 s */
  sweepFirstDelayMs?: number;
  fetch?: typeof fetch;
}

/**
 * SPEC §12 series whose owners (supervisor, pending flush, hooks) set them:
 * declared up front, so a scrape lists them at 0 before their first event.
 */
export function declareCatalogMetrics(m: Metrics): void {
  m.declare(
    "boi_plugin_restarts_total",
    "counter",
    "plugin restarts by the supervisor, by plugin",
  );
  m.declare(
    "boi_plugin_unstable",
    "gauge",
    "1 while a plugin is unstable (crash budget spent), by plugin",
  );
  m.declare(
    "boi_pending_flush_bytes",
    "gauge",
    "bytes of results waiting in the pending-flush file",
  );
  m.declare(
    "boi_hooks_unacked",
    "gauge",
    "audit hook events delivered but not acked, by plugin",
  );
}

/** This module's own series. */
function declareOwnMetrics(m: Metrics): void {
  m.declare("boi_tail_streams", "gauge", "tail responses being streamed now");
  m.declare("boi_tail_requests_total", "counter", "tail requests answered");
  m.declare("boi_log_sweeps_total", "counter", "log retention sweeps run");
  m.declare(
    "boi_logs_deleted_total",
    "counter",
    "task logs deleted by retention",
  );
  m.declare(
    "boi_logs_deleted_bytes_total",
    "counter",
    "bytes of task logs deleted by retention",
  );
}

export class Observability {
  readonly #stop = new AbortController();
  readonly #opts: Required<Omit<ObservabilityOptions, "fetch">> & {
    fetch: typeof fetch;
  };
  #streams = 0;
  #sweeping: Promise<SweepReport> | null = null;

  constructor(opts: ObservabilityOptions = {}) {
    this.#opts = {
      tailPollMs: opts.tailPollMs ?? 100,
      sweepIntervalMs: opts.sweepIntervalMs ?? 3600_000,
      sweepFirstDelayMs: opts.sweepFirstDelayMs ?? 60_000,
      fetch: opts.fetch ?? fetch,
    };
  }

  /** Aborted on shutdown: tail follows and event streams end. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Registers the metrics and starts the hourly sweep. */
  attach(node: ObservedNode): void {
    declareCatalogMetrics(node.metrics);
    declareOwnMetrics(node.metrics);
    scheduleSweeps(
      async () => {
        if (!this.ready(node)) return;
        const r = await this.sweep(node).catch((e) => {
          node.log.warn("log sweep failed", { error: String(e) });
          return null;
        });
        if (r) {
          node.log.info("log sweep", {
            scanned: r.scanned,
            deleted: r.deleted.length,
            freed_bytes: r.freed_bytes,
            errors: r.errors.length,
          });
        }
      },
      this.#stop.signal,
      this.#opts.sweepIntervalMs,
      this.#opts.sweepFirstDelayMs,
    );
  }

  close(): void {
    this.#stop.abort();
  }

  /** Registered and the view listed: safe to judge which tasks are terminal. */
  ready(node: ObservedNode): boolean {
    return node.view.lease_id !== null &&
      node.view.nodes.has(node.deps.config.node_id);
  }

  logsDir(node: ObservedNode): string {
    return `${node.deps.config.data_dir}/logs`;
  }

  tailEnv(node: ObservedNode): TailEnv {
    const view = node.view;
    return {
      node_id: node.deps.config.node_id,
      logs_dir: this.logsDir(node),
      task: (id) => taskLogInfo(view, id),
      node_addr: (id) => view.nodes.get(id)?.value.addr ?? null,
      origin_allowed: (origin) => {
        for (const n of view.nodes.values()) {
          if (origin === `http://${n.value.addr}`) return true;
        }
        return false;
      },
      fs: denoFs,
      poll_ms: this.#opts.tailPollMs,
      signal: this.#stop.signal,
      warn: (msg, fields) => node.log.warn(msg, fields),
      streams: (d) => {
        this.#streams += d;
        node.metrics.set("boi_tail_streams", this.#streams);
      },
      fetch: this.#opts.fetch,
    };
  }

  /** One retention sweep (concurrent callers share the one in progress). */
  sweep(node: ObservedNode): Promise<SweepReport> {
    if (this.#sweeping) return this.#sweeping;
    const view = node.view;
    const terminal = (id: string) => {
      if (view.workers.has(id)) return false;
      const t = view.tasks.get(id);
      return t === undefined || TERMINAL_STATES.has(t.value.state);
    };
    const env: SweepEnv = {
      node_id: node.deps.config.node_id,
      logs_dir: this.logsDir(node),
      terminal,
      spec_finished: (spec) =>
        [...view.spec_tasks.get(spec) ?? []].every(terminal),
      now: () => Date.now(),
      info: (msg, fields) => node.log.info(msg, fields),
    };
    this.#sweeping = sweepLogs(env).then((r) => {
      const m = node.metrics;
      m.inc("boi_log_sweeps_total");
      m.inc("boi_logs_deleted_total", {}, r.deleted.length);
      m.inc("boi_logs_deleted_bytes_total", {}, r.freed_bytes);
      return r;
    }).finally(() => this.#sweeping = null);
    return this.#sweeping;
  }

  /** The dashboard snapshot, or null before the node is up. */
  state(node: ObservedNode): DashboardState {
    return dashboardState(node.view, node.health());
  }

  countTail(node: ObservedNode): void {
    node.metrics.inc("boi_tail_requests_total");
  }
}
