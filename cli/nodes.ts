/** `nodes`: live nodes with their capabilities, health and load. */
import type { Command } from "@commander-js/extra-typings";
import { CapsRecord, type Health, NodeRecord } from "../node/schema.ts";
import {
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  type Io,
} from "./context.ts";
import { formatDuration, table } from "./format.ts";

/** One entry of `nodes --json`. */
export interface NodeRow {
  node_id: string;
  addr: string;
  caps: Record<string, string>;
  health: Health | null;
  workers_busy: number | null;
  workers_max: number | null;
}

const DYNAMIC_FIELDS = new Set(["workers_busy", "workers_max", "health"]);

/** Static caps with the dynamic string values laid over them (dynamic wins, SPEC §5). */
export function mergeCaps(
  caps: CapsRecord | undefined,
): Record<string, string> {
  if (caps === undefined) return {};
  const out: Record<string, string> = { ...caps.static };
  for (const [k, v] of Object.entries(caps.dynamic)) {
    if (!DYNAMIC_FIELDS.has(k) && typeof v === "string") out[k] = v;
  }
  return out;
}

/** Joins node and caps records; nodes without a node record are not live and are left out. */
export function nodeRows(
  nodes: NodeRecord[],
  caps: Map<string, CapsRecord>,
): NodeRow[] {
  return [...nodes].sort((a, b) => a.node_id.localeCompare(b.node_id)).map(
    (n) => {
      const c = caps.get(n.node_id);
      return {
        node_id: n.node_id,
        addr: n.addr,
        caps: mergeCaps(c),
        health: c?.dynamic.health ?? null,
        workers_busy: c?.dynamic.workers_busy ?? null,
        workers_max: c?.dynamic.workers_max ?? null,
      };
    },
  );
}

/** Runs `nodes`; returns the exit code. */
export async function runNodes(io: Io, opts: CommonOptions): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    const nodes = await store.list(ctx.keys.dir("nodes"), NodeRecord);
    const caps = await store.list(ctx.keys.dir("caps"), CapsRecord);
    const capsById = new Map(
      caps.items.map((
        c,
      ) => [c.key.slice(ctx.keys.dir("caps").length), c.value]),
    );
    const rows = nodeRows(nodes.items.map((n) => n.value), capsById);
    if (ctx.json) {
      ctx.printJson(rows);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      ctx.print("no live nodes");
      return EXIT.ok;
    }
    const ttl = new Map<string, number | null>();
    await Promise.all(nodes.items.map(async (n) => {
      try {
        ttl.set(n.value.node_id, await store.leaseTtl(n.lease));
      } catch {
        ttl.set(n.value.node_id, null);
      }
    }));
    const started = new Map(
      nodes.items.map((n) => [n.value.node_id, n.value.started_at]),
    );
    const now = io.now();
    for (
      const line of table(
        ["NODE", "ADDR", "HEALTH", "WORKERS", "LEASE", "UP", "CAPS"],
        rows.map((r) => {
          const left = ttl.get(r.node_id);
          return [
            r.node_id,
            r.addr,
            r.health ?? "-",
            r.workers_max === null ? "-" : `${r.workers_busy}/${r.workers_max}`,
            left === null || left === undefined ? "-" : `${left}s left`,
            formatDuration(now - started.get(r.node_id)!),
            Object.entries(r.caps).map(([k, v]) => `${k}=${v}`).join(",") ||
            "-",
          ];
        }),
      )
    ) ctx.print(line);
    return EXIT.ok;
  }, { reads_only: true });
}

/** Registers `nodes` on the program. */
export function registerNodes(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const [etcd, prefix, json] = commonOptions();
  program
    .command("nodes")
    .description("live nodes: address, capabilities, health, workers, lease")
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (opts) => done(await runNodes(io, opts)));
}
