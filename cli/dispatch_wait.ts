/**
 * `dispatch --wait`: follows a committed spec's tasks until all are terminal,
 * as a live table on a terminal or one line per change otherwise, then a
 * summary.
 */
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { type Envelope, TERMINAL_STATES } from "../node/schema.ts";
import type { ParsedSpec } from "../node/spec.ts";
import { CliError, type Ctx, EXIT } from "./context.ts";
import {
  changeLine,
  countStates,
  formatDuration,
  nodeOf,
  summarizeCounts,
  table,
} from "./format.ts";
import type { Store } from "./store.ts";
import { EnvelopeFeed } from "./watch.ts";

/** Follows the spec's tasks until all are terminal (or gone, or the timeout). */
export async function waitForSpec(
  ctx: Ctx,
  store: Store,
  parsed: ParsedSpec,
  timeoutMs: number | null,
  timeoutText = timeoutMs === null ? "" : formatDuration(timeoutMs),
): Promise<number> {
  const start = ctx.io.now();
  const ids = parsed.record.task_ids;
  const wanted = new Set(ids);
  const latest = new Map<string, Envelope>(
    parsed.envelopes.map((e) => [e.task_id, e]),
  );
  const gone = new Set<string>();
  const live = ctx.io.isTty && !ctx.json;
  const shown = new Map<string, string>(
    parsed.envelopes.map((e) => [e.task_id, progressKey(e)]),
  );
  let drawn = 0;

  const redraw = () => {
    const lines = progressLines(
      parsed.spec_id,
      ids.map((id) => latest.get(id)!),
      gone,
      ctx.io.now() - start,
    );
    // Cut lines to the terminal width so each takes one row to redraw.
    const width = ctx.io.columns();
    const fit = (l: string) =>
      width > 1 && l.length >= width ? `${l.slice(0, width - 2)}…` : l;
    const up = drawn > 0 ? `\x1b[${drawn}F\x1b[J` : "";
    ctx.io.out(up + lines.map((l) => `${fit(l)}\n`).join(""));
    drawn = lines.length;
  };

  const feed = new EnvelopeFeed(
    store,
    `${ctx.keys.dir("dispatch-queue")}${parsed.spec_id}.`,
    (taskId, item) => {
      if (item === null) {
        gone.add(taskId);
        if (!ctx.json && !live) ctx.print(`${taskId} deleted`);
        return;
      }
      gone.delete(taskId);
      latest.set(taskId, item.value);
      const key = progressKey(item.value);
      if (shown.get(taskId) !== key) {
        shown.set(taskId, key);
        if (!ctx.json && !live) ctx.print(changeLine(item.value));
      }
    },
    (taskId) => wanted.has(taskId),
  );

  /** With --json, the one document: the spec and its tasks as last seen. */
  const printDoc = () => {
    if (!ctx.json) return;
    ctx.printJson({
      spec_id: parsed.spec_id,
      task_ids: ids,
      tasks: ids.map((id) => latest.get(id)!),
    });
  };
  const finished = () =>
    ids.every((id) =>
      gone.has(id) || TERMINAL_STATES.has(latest.get(id)!.state)
    );
  try {
    await feed.start();
    if (live) redraw();
    while (!finished()) {
      const left = timeoutMs === null
        ? Infinity
        : start + timeoutMs - ctx.io.now();
      if (left <= 0) {
        if (live) redraw();
        const waiting = ids.filter((id) =>
          !gone.has(id) && !TERMINAL_STATES.has(latest.get(id)!.state)
        );
        printDoc();
        throw new CliError(
          `timed out after ${timeoutText} waiting for: ${waiting.join(", ")}`,
        );
      }
      await feed.changed(Math.min(left, live ? 1000 : 60_000));
      if (live) redraw();
    }
  } catch (err) {
    // Exit 3 says "nothing written, dispatch again": not true any more.
    if (!(err instanceof EtcdUnreachableError)) throw err;
    printDoc();
    throw new CliError(
      `${parsed.spec_id} is dispatched; stopped waiting for it: ${err.message}`,
    );
  } finally {
    feed.close();
  }

  const tasks = ids.map((id) => latest.get(id)!);
  const allDone = ids.every((id) =>
    !gone.has(id) && latest.get(id)!.state === "DONE"
  );
  if (ctx.json) printDoc();
  else {
    for (
      const line of summaryLines(
        parsed.spec_id,
        tasks,
        gone,
        ctx.io.now() - start,
      )
    ) {
      ctx.print(line);
    }
  }
  return allDone ? EXIT.ok : EXIT.failed;
}

/** What makes a task's progress line change. */
function progressKey(e: Envelope): string {
  return `${e.state}|${nodeOf(e) ?? ""}|${e.attempts}|${e.cancel_requested}`;
}

/** Rows of tasks shown in the live table before it switches to a summary. */
const MAX_LIVE_ROWS = 20;

/** The live progress block of `dispatch --wait` on a terminal. */
export function progressLines(
  specId: string,
  tasks: Envelope[],
  gone: ReadonlySet<string>,
  elapsedMs: number,
): string[] {
  const counts = countStates(tasks.filter((t) => !gone.has(t.task_id)));
  const head = `${specId}  ${summarizeCounts(counts)}${
    gone.size > 0 ? `, ${gone.size} deleted` : ""
  }  ${formatDuration(elapsedMs)}`;
  let rows = tasks;
  let more = 0;
  if (tasks.length > MAX_LIVE_ROWS) {
    rows = tasks.filter((t) =>
      t.state === "CLAIMED" || t.state === "RUNNING" || t.state === "FAILED"
    ).slice(0, MAX_LIVE_ROWS);
    more = tasks.length - rows.length;
  }
  const lines = [
    head,
    ...table(
      ["  TASK", "STATE", "NODE", "ATTEMPT", "EXIT"],
      rows.map((t) => [
        `  ${t.task_id.slice(specId.length + 1)}`,
        gone.has(t.task_id) ? "deleted" : t.state,
        nodeOf(t) ?? "-",
        `${t.attempts}/${t.max_attempts}`,
        t.exit_code === null ? "-" : String(t.exit_code),
      ]),
    ),
  ];
  if (more > 0) lines.push(`  … ${more} more`);
  return lines;
}

/** The closing lines of `dispatch --wait`. */
export function summaryLines(
  specId: string,
  tasks: Envelope[],
  gone: ReadonlySet<string>,
  elapsedMs: number,
): string[] {
  const present = tasks.filter((t) => !gone.has(t.task_id));
  const lines = [
    `${specId}: ${summarizeCounts(countStates(present))}${
      gone.size > 0 ? `, ${gone.size} deleted` : ""
    } in ${formatDuration(elapsedMs)}`,
  ];
  for (const t of tasks) {
    if (gone.has(t.task_id)) lines.push(`  ${t.task_id} deleted`);
    else if (t.state !== "DONE") lines.push(`  ${changeLine(t)}`);
  }
  return lines;
}
