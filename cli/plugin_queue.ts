/**
 * `plugin queue <plugin>` (SPEC §8, §11): per node, the hooks queue of that
 * plugin — unacked events, the HWM stored in etcd, the age of the oldest
 * unacked event, stalls. The HWM comes from `/boi/hooks-hwm/<plugin>/<node>`;
 * the live numbers from each node's `GET /internal/hooks/<plugin>/queue`.
 */
import { HwmRecord, NodeRecord } from "../node/schema.ts";
import type { QueueStats } from "../node/hooks/mod.ts";
import { type CommonOptions, Ctx, EXIT, type Io } from "./context.ts";
import { CliError } from "./errors.ts";
import { table } from "./format.ts";
import { fetchError } from "../node/fetch_error.ts";

/** One row of `plugin queue --json`. */
export interface QueueRow {
  node_id: string;
  /** The node record is present. */
  live: boolean;
  tier: string | null;
  /** HWM stored in etcd (null: none stored). */
  hwm_seq: number | null;
  hwm_acked_at: number | null;
  last_seq: number | null;
  unacked: number | null;
  /** Age of the oldest unacked event in ms (null: none, or unknown). */
  oldest_unacked_age_ms: number | null;
  stalled: boolean | null;
  stalls: number | null;
  dropped: number | null;
  /** Why the live numbers are missing, e.g. the node is not live. */
  error: string | null;
}

/** How long one node may take to answer. */
const NODE_TIMEOUT_MS = 3000;

/** Runs `plugin queue`; exit 0 when at least one node knows the plugin. */
export async function runPluginQueue(
  io: Io,
  plugin: string,
  opts: CommonOptions,
  fetchFn: typeof fetch = fetch,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const { nodes, hwms } = await ctx.withStore(async (store) => {
    const nodes = (await store.list(ctx.keys.dir("nodes"), NodeRecord)).items
      .map((it) => it.value);
    const dir = `${ctx.keys.dir("hooks-hwm")}${plugin}/`;
    const hwms = new Map(
      (await store.list(dir, HwmRecord)).items.map((
        it,
      ) => [it.key.slice(dir.length), it.value]),
    );
    return { nodes, hwms };
  });
  const ids = [...new Set([...nodes.map((n) => n.node_id), ...hwms.keys()])]
    .sort();
  const rows: QueueRow[] = await Promise.all(ids.map(async (id) => {
    const node = nodes.find((n) => n.node_id === id);
    const hwm = hwms.get(id) ?? null;
    const row: QueueRow = {
      node_id: id,
      live: node !== undefined,
      tier: null,
      hwm_seq: hwm?.seq ?? null,
      hwm_acked_at: hwm?.acked_at ?? null,
      last_seq: null,
      unacked: null,
      oldest_unacked_age_ms: null,
      stalled: null,
      stalls: null,
      dropped: null,
      error: node ? null : "node is not live",
    };
    if (!node) return row;
    try {
      const res = await fetchFn(
        `http://${node.addr}/internal/hooks/${plugin}/queue`,
        { signal: AbortSignal.timeout(NODE_TIMEOUT_MS) },
      );
      const body = await res.json();
      if (res.status !== 200) {
        row.error = String(body.error ?? `HTTP ${res.status}`);
        return row;
      }
      const s = body as QueueStats;
      Object.assign(row, {
        tier: s.tier,
        last_seq: s.last_seq,
        unacked: s.unacked,
        oldest_unacked_age_ms: s.oldest_unacked_ts === null
          ? null
          : Math.max(0, io.now() - s.oldest_unacked_ts),
        stalled: s.stalled,
        stalls: s.stalls,
        dropped: s.dropped,
      });
    } catch (e) {
      row.error = `cannot reach ${node.addr}: ${fetchError(e)}`;
    }
    return row;
  }));
  const known = rows.filter((r) => r.tier !== null || r.hwm_seq !== null);
  if (ctx.json) {
    ctx.printJson(known);
  } else if (known.length > 0) {
    const n = (v: number | null) => v === null ? "-" : String(v);
    for (
      const line of table(
        ["NODE", "TIER", "UNACKED", "HWM", "LAST", "OLDEST", "STALLS", "STATE"],
        known.map((r) => [
          r.node_id,
          r.tier ?? "-",
          n(r.unacked),
          n(r.hwm_seq),
          n(r.last_seq),
          r.oldest_unacked_age_ms === null
            ? "-"
            : `${(r.oldest_unacked_age_ms / 1000).toFixed(1)}s`,
          n(r.stalls),
          r.error ?? (r.stalled ? "stalled" : "flowing"),
        ]),
      )
    ) ctx.print(line);
  }
  if (known.length === 0) {
    throw new CliError(`no node has a hooks plugin named ${plugin}`);
  }
  return EXIT.ok;
}
