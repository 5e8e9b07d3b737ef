/** `status [spec_id]`: task counts per spec, or one spec's tasks. */
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
}

/** Runs `status`; returns the exit code. */
export async function runStatus(
  io: Io,
  specId: string | undefined,
  opts: StatusOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    if (specId === undefined) {
      const specs = await store.list(ctx.keys.dir("specs"), SpecRecord);
      const tasks = await store.list(ctx.keys.dir("dispatch-queue"), Envelope);
      const records = specs.items.map((s) => s.value);
      const result = specCounts(records, tasks.items.map((t) => t.value));
      for (const [id, n] of result.uncommitted) {
        ctx.warn(
          `note: ${n} task(s) of ${id} have no spec record (unfinished dispatch); nodes ignore them`,
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
      const now = io.now();
      for (
        const line of table(
          ["SPEC", "TASKS", ...TASK_STATES, "DISPATCHED"],
          result.specs.map((s) => [
            s.spec_id,
            String(Object.values(s.counts).reduce((a, b) => a + b, 0)),
            ...TASK_STATES.map((st) => String(s.counts[st])),
            `${formatDuration(now - when.get(s.spec_id)!)} ago`,
          ]),
        )
      ) ctx.print(line);
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
  });
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
      "reserved for degraded mode (answer from a node's cached view); accepted and ignored for now",
    )
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (specId, opts) => done(await runStatus(io, specId, opts)));
}
