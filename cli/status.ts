/** `status [spec_id]`: task counts per spec, or one spec's tasks. */
import { securedFetch } from "./node_http.ts";
import type { Command } from "@commander-js/extra-typings";
import {
  Envelope,
  ID_PATTERN,
  SpecRecord,
  TASK_STATES,
  type TaskState,
} from "../node/schema.ts";
import {
  CliError,
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  idArgument,
  type Io,
} from "./context.ts";
import {
  countStates,
  formatDuration,
  summarizeCounts,
  table,
  taskTable,
} from "./format.ts";
import {
  type CachedViewAnswer,
  fetchCachedView,
  MEMBERSHIP_CACHE_TTL_S,
  nodeAddr,
  nodeOption,
} from "./local_node.ts";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";

/** One spec in `status --json`. */
export interface SpecCounts {
  spec_id: string;
  counts: Record<TaskState, number>;
}

/** Counts per committed spec, oldest dispatch first; also the spec ids with tasks but no record. */
export function specCounts(
  specs: SpecRecord[],
  envelopes: Envelope[],
): { specs: SpecCounts[]; uncommitted: Map<string, number> } {
  const bySpec = new Map<string, Envelope[]>();
  for (const e of envelopes) {
    const list = bySpec.get(e.spec_id) ?? [];
    list.push(e);
    bySpec.set(e.spec_id, list);
  }
  const sorted = [...specs].sort((a, b) =>
    a.dispatched_at - b.dispatched_at || a.spec_id.localeCompare(b.spec_id)
  );
  const uncommitted = new Map<string, number>();
  const known = new Set(specs.map((s) => s.spec_id));
  for (const [id, list] of bySpec) {
    if (!known.has(id)) uncommitted.set(id, list.length);
  }
  return {
    specs: sorted.map((s) => ({
      spec_id: s.spec_id,
      counts: countStates(bySpec.get(s.spec_id) ?? []),
    })),
    uncommitted,
  };
}

/** Options of `status`. */
export interface StatusOptions extends CommonOptions {
  staleOk?: true;
  node?: string;
}

/** Runs `status`; returns the exit code. */
export async function runStatus(
  io: Io,
  specId: string | undefined,
  opts: StatusOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const node = opts.staleOk === true ? nodeAddr(io, opts.node) : null;
  try {
    return await freshStatus(ctx, specId);
  } catch (err) {
    if (node === null || !(err instanceof EtcdUnreachableError)) throw err;
    return await staleStatus(ctx, err, node, specId);
  }
}

/** The spec table of `status`, oldest dispatch first. */
function specTable(
  specs: SpecCounts[],
  dispatchedAt: Map<string, number>,
  now: number,
): string[] {
  return table(
    ["SPEC", "TASKS", ...TASK_STATES, "DISPATCHED"],
    specs.map((s) => [
      s.spec_id,
      String(Object.values(s.counts).reduce((a, b) => a + b, 0)),
      ...TASK_STATES.map((st) => String(s.counts[st])),
      `${formatDuration(now - dispatchedAt.get(s.spec_id)!)} ago`,
    ]),
  );
}

/**
 * `status --stale-ok` while etcd is unreachable (SPEC §6): the local node's
 * cached view, stamped STALE with its age; refused (exit 3) when no node
 * answers or the view is older than `membership_cache_ttl_s`.
 */
export async function staleStatus(
  ctx: Ctx,
  cause: EtcdUnreachableError,
  node: string,
  specId: string | undefined,
): Promise<number> {
  let view: CachedViewAnswer;
  try {
    view = await fetchCachedView(
      node,
      specId,
      undefined,
      await securedFetch(ctx), // https with the CLI certificate in a secure cluster
    );
  } catch (err) {
    throw new CliError(
      `${cause.message}; no cached view either: the node at ${node} did not answer (${
        (err as Error).message
      })`,
      EXIT.unreachable,
    );
  }
  const limitMs = MEMBERSHIP_CACHE_TTL_S * 1000;
  if (view.cache_age_ms > limitMs) {
    throw new CliError(
      `${cause.message}; the cached view of node ${view.node_id} is ${
        formatDuration(view.cache_age_ms)
      } old, older than the ${MEMBERSHIP_CACHE_TTL_S}s it may be used for`,
      EXIT.unreachable,
    );
  }
  const stamp = `STALE (cache age ${formatDuration(view.cache_age_ms)})`;
  const counts = view.specs.filter((s) =>
    specId === undefined || s.spec_id === specId
  ).map((s): SpecCounts => ({
    spec_id: s.spec_id,
    counts: { ...countStates([]), ...s.counts },
  }));
  if (specId !== undefined && counts.length === 0) {
    throw new CliError(
      `${stamp}: spec ${specId} is not in the cached view of node ${view.node_id}`,
    );
  }
  if (ctx.json) {
    ctx.printJson({
      stale: true,
      cache_age_ms: view.cache_age_ms,
      source_node: view.node_id,
      etcd_error: cause.message,
      etcd_down_since: view.etcd_down_since,
      dispatch_paused: view.dispatch_paused,
      specs: counts,
      nodes: view.nodes,
      ...(specId !== undefined ? { tasks: view.tasks ?? [] } : {}),
    });
    return EXIT.ok;
  }
  const now = ctx.io.now();
  ctx.print(`${stamp} from node ${view.node_id}: ${cause.message}`);
  ctx.print(
    view.etcd_down_since === null
      ? `node ${view.node_id} still reaches etcd`
      : `node ${view.node_id} lost etcd ${
        formatDuration(now - view.etcd_down_since)
      } ago`,
  );
  if (view.dispatch_paused) ctx.print("dispatch is paused cluster-wide");
  if (specId !== undefined) {
    const tasks = view.tasks ?? [];
    ctx.print(`${specId}: ${summarizeCounts(counts[0].counts)}`);
    for (const line of taskTable(tasks)) ctx.print(line);
  } else if (counts.length === 0) {
    ctx.print("no specs");
  } else {
    const when = new Map(view.specs.map((s) => [s.spec_id, s.dispatched_at]));
    for (const line of specTable(counts, when, now)) ctx.print(line);
  }
  ctx.print("");
  for (
    const line of table(
      ["NODE", "ADDR", "HEALTH", "WORKERS", "DRAINING"],
      view.nodes.map((n) => [
        n.node_id,
        n.addr,
        n.health ?? "-",
        n.workers_max === null
          ? "-"
          : `${n.workers_busy ?? "?"}/${n.workers_max}`,
        n.draining ? "yes" : "-",
      ]),
    )
  ) ctx.print(line);
  return EXIT.ok;
}

/** `status` from etcd itself. */
async function freshStatus(
  ctx: Ctx,
  specId: string | undefined,
): Promise<number> {
  const io = ctx.io;
  return await ctx.withStore(async (store) => {
    if (specId === undefined) {
      const specs = await store.list(ctx.keys.dir("specs"), SpecRecord);
      const tasks = await store.list(ctx.keys.dir("dispatch-queue"), Envelope);
      const records = specs.items.map((s) => s.value);
      const result = specCounts(records, tasks.items.map((t) => t.value));
      for (const [id, n] of result.uncommitted) {
        ctx.warn(
          `note: ${n} task(s) of ${id} have no spec record (unfinished dispatch); nodes ignore them, and delete them once they have seen them so for BOI_ORPHAN_GRACE_S (1 hour by default)`,
        );
      }
      if (ctx.json) {
        ctx.printJson({ specs: result.specs });
        return EXIT.ok;
      }
      if (result.specs.length === 0) {
        ctx.print("no specs");
        return EXIT.ok;
      }
      const when = new Map(records.map((r) => [r.spec_id, r.dispatched_at]));
      for (const line of specTable(result.specs, when, io.now())) {
        ctx.print(line);
      }
      return EXIT.ok;
    }

    const { item: spec, exists } = await store.get(
      ctx.keys.spec(specId),
      SpecRecord,
    );
    if (!exists) throw new CliError(`spec ${specId} not found`);
    if (spec === null) {
      throw new CliError(`spec ${specId} has an invalid record`);
    }
    const { items } = await store.list(
      `${ctx.keys.dir("dispatch-queue")}${specId}.`,
      Envelope,
    );
    const byId = new Map(items.map((i) => [i.value.task_id, i.value]));
    const ordered = spec.value.task_ids.map((id) => byId.get(id)).filter((
      e,
    ): e is Envelope => e !== undefined);
    const missing = spec.value.task_ids.filter((id) => !byId.has(id));
    for (const id of missing) ctx.warn(`warning: task ${id} is missing`);
    const counts = countStates(ordered);
    if (ctx.json) {
      ctx.printJson({ specs: [{ spec_id: specId, counts }], tasks: ordered });
      return EXIT.ok;
    }
    ctx.print(
      `${specId}: ${summarizeCounts(counts)} (dispatched ${
        formatDuration(io.now() - spec.value.dispatched_at)
      } ago by ${spec.value.dispatched_by})`,
    );
    for (const line of taskTable(ordered)) ctx.print(line);
    return EXIT.ok;
  }, { reads_only: true });
}

/** Registers `status` on the program. */
export function registerStatus(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const [etcd, prefix, json] = commonOptions();
  program
    .command("status")
    .description("task counts of every spec, or the tasks of one spec")
    .addArgument(idArgument("[spec_id]", "spec id", ID_PATTERN))
    .option(
      "--stale-ok",
      "when etcd is unreachable, answer from the local node's cached view (stamped STALE; refused past 30 s)",
    )
    .addOption(nodeOption())
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (specId, opts) => done(await runStatus(io, specId, opts)));
}
