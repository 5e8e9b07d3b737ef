/**
 * `logs sweep`: log retention now (SPEC §9, §11). Asks every live node to
 * sweep its own logs (`POST /internal/logs/sweep`) — the node that wrote
 * the files owns and deletes them — and prints what each one deleted.
 */
import { securedFetch } from "./node_http.ts";
import type { Command } from "@commander-js/extra-typings";
import { adminHeaders } from "./admin_secret.ts";
import { NodeRecord } from "../node/schema.ts";
import type { SweepReport } from "../node/shell/retention.ts";
import {
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  type Io,
} from "./context.ts";
import { formatDuration } from "./format.ts";
import { fetchError } from "../node/fetch_error.ts";

/** A node's sweep may scan many files: give it time. */
export const SWEEP_TIMEOUT_MS = 60_000;

/** One node's answer in `logs sweep --json`. */
export interface SweepOutcome {
  node_id: string;
  addr: string;
  ok: boolean;
  report: SweepReport | null;
  error: string | null;
}

/** "110.0 MiB", "12.5 KiB", "17 B". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

const REASONS = {
  age: "terminal, older than the age limit",
  spec_size: "spec over its size cap",
} as const;

/** The human report of one node's sweep. */
export function formatOutcome(o: SweepOutcome): string[] {
  if (!o.ok || o.report === null) {
    return [`${o.node_id}: sweep failed: ${o.error}`];
  }
  const r = o.report;
  const errors = r.errors.map((e) => `  error: ${e}`);
  if (r.deleted.length === 0) {
    return [
      `${o.node_id}: nothing to delete (${r.scanned} log${
        r.scanned === 1 ? "" : "s"
      }, ${formatBytes(r.scanned_bytes)})`,
      ...errors,
    ];
  }
  const n = r.deleted.length;
  return [
    `${o.node_id}: deleted ${n} log${n === 1 ? "" : "s"}, ${
      formatBytes(r.freed_bytes)
    } freed (${r.scanned - n} kept)`,
    ...r.deleted.map((d) =>
      `  ${d.path}  ${formatBytes(d.size)}  modified ${
        formatDuration(r.at - d.mtime)
      } ago  (${REASONS[d.reason]})`
    ),
    ...errors,
  ];
}

/** Calls one node's sweep. */
export async function sweepNode(
  node: NodeRecord,
  headers: Record<string, string>,
  fetchFn: typeof fetch = fetch,
  timeoutMs = SWEEP_TIMEOUT_MS,
): Promise<SweepOutcome> {
  const base = { node_id: node.node_id, addr: node.addr };
  try {
    const res = await fetchFn(`http://${node.addr}/internal/logs/sweep`, {
      method: "POST",
      headers,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) {
      return {
        ...base,
        ok: false,
        report: null,
        error: `HTTP ${res.status}: ${text.trim().slice(0, 200)}`,
      };
    }
    return { ...base, ok: true, report: JSON.parse(text), error: null };
  } catch (e) {
    return {
      ...base,
      ok: false,
      report: null,
      error: `cannot reach ${node.addr}: ${fetchError(e)}`,
    };
  }
}

/** Runs `logs sweep`; returns the exit code (1 when a node failed). */
export async function runSweep(
  io: Io,
  opts: CommonOptions,
  fetchFn: typeof fetch = fetch,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  fetchFn = await securedFetch(ctx, fetchFn); // https with the CLI certificate in a secure cluster
  const { nodes, headers } = await ctx.withStore(async (store) => ({
    nodes: await store.list(ctx.keys.dir("nodes"), NodeRecord),
    headers: await adminHeaders(ctx, store),
  }));
  const live = nodes.items.map((i) => i.value).sort((a, b) =>
    a.node_id < b.node_id ? -1 : 1
  );
  const outcomes = await Promise.all(
    live.map((n) => sweepNode(n, headers, fetchFn)),
  );
  if (ctx.json) ctx.printJson(outcomes);
  else if (outcomes.length === 0) ctx.print("no live nodes");
  else for (const o of outcomes) for (const l of formatOutcome(o)) ctx.print(l);
  return outcomes.every((o) => o.ok) ? EXIT.ok : EXIT.failed;
}

/** Registers `logs sweep` on the program. */
export function registerLogs(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const logs = program
    .command("logs")
    .description("task logs on the nodes");
  const [etcd, prefix, json] = commonOptions();
  logs
    .command("sweep")
    .description(
      "apply log retention on every live node now (terminal logs older than 7 days, then each spec's oldest logs above 100 MiB)",
    )
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (opts) => done(await runSweep(io, opts)));
}
