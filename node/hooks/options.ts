/** What the node's hooks are configured with, and what they report of their queue. */
import type { Etcd3 } from "etcd3";
import type { NodeEvent } from "../core/events.ts";
import type { Keys } from "../keys.ts";
import type { Hooks, HookTier } from "../plugins/contracts.ts";
import type { Metrics } from "../shell/metrics.ts";
import type { HookLog } from "./delivery.ts";

/** The hooks plugin's settings from the plugins file. */
export interface HooksSettings {
  /** Plugin name: names the WAL file and the HWM key. */
  name: string;
  /** @default "best_effort" */
  tier: HookTier;
  /** Kinds or globs; null: every kind. */
  subscribe: string[] | null;
  /** Events per WAL segment before it is sealed. @default 10000 */
  wal_segment_events?: number;
  /** Unacked audit events that stall claims and commits; resumes at 90 % of it. @default 100 */
  backpressure_window?: number;
}

/** Options of {@linkcode NodeHooks}. */
export interface NodeHooksOptions {
  node_id: string;
  data_dir: string;
  settings: HooksSettings;
  sink: Hooks;
  client: Etcd3;
  keys: Keys;
  log: HookLog;
  metrics: Metrics;
  /** Delivers the back-pressure event into the node's event loop. */
  push(ev: NodeEvent): void;
}

/** `GET /internal/hooks/{plugin}/queue` and `boi plugin queue`: one node's view of its queue. */
export interface QueueStats {
  node_id: string;
  plugin: string;
  tier: HookTier;
  subscribe: readonly string[];
  /** Highest seq given out (audit) / events taken (best_effort). */
  last_seq: number;
  acked_seq: number;
  /** The HWM this node last stored in etcd. */
  hwm_seq: number;
  unacked: number;
  /** ts of the oldest unacked event; null when none. */
  oldest_unacked_ts: number | null;
  stalled: boolean;
  stalls: number;
  delivered: number;
  dropped: number;
}
