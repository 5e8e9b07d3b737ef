/** Pure text formatting for the CLI's human output. */
import type { Envelope, TaskState } from "../node/schema.ts";
import { TASK_STATES } from "../node/schema.ts";

/** Left-aligned columns separated by two spaces; no trailing blanks. */
export function table(headers: string[], rows: string[][]): string[] {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) =>
    Math.max(...all.map((r) => [...(r[i] ?? "")].length))
  );
  return all.map((r) =>
    r.map((cell, i) =>
      i === r.length - 1
        ? cell
        : cell.padEnd(widths[i] + cell.length - [...cell].length)
    ).join("  ").trimEnd()
  );
}

/** A duration in ms as "850ms", "12.3s", "4m05s", "2h03m" or "3d04h". */
export function formatDuration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) {
    const s = ms / 1000;
    return s < 10 ? `${s.toFixed(1)}s` : `${Math.floor(s)}s`;
  }
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86_400) {
    return `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
  }
  return `${Math.floor(s / 86_400)}d${pad2(Math.floor(s / 3600) % 24)}h`;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** Counts per state, every state present (zero if none), in state order. */
export function countStates(
  envelopes: Iterable<Envelope>,
): Record<TaskState, number> {
  const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<
    TaskState,
    number
  >;
  for (const e of envelopes) counts[e.state]++;
  return counts;
}

/** "2 DONE, 1 FAILED": the non-zero counts only. */
export function summarizeCounts(counts: Record<TaskState, number>): string {
  const parts = TASK_STATES.filter((s) => counts[s] > 0).map((s) =>
    `${counts[s]} ${s}`
  );
  return parts.length > 0 ? parts.join(", ") : "no tasks";
}

/** The node an envelope is about: the claimant while running, `ran_on` after. */
export function nodeOf(e: Envelope): string | null {
  return e.claimant_node_id ?? e.ran_on;
}

/**
 * One plain line for a state change, e.g.
 * `hello-abc123.greet RUNNING on node-a` or `… FAILED on node-a exit 1: boom`.
 */
export function changeLine(e: Envelope): string {
  let line = `${e.task_id} ${e.state}`;
  const node = nodeOf(e);
  if (node !== null && e.state !== "PENDING" && e.state !== "BLOCKED") {
    line += ` on ${node}`;
  }
  if (e.attempts > 1 && (e.state === "CLAIMED" || e.state === "RUNNING")) {
    line += ` (attempt ${e.attempts}/${e.max_attempts})`;
  }
  if (e.exit_code !== null && (e.state === "DONE" || e.state === "FAILED")) {
    line += ` exit ${e.exit_code}`;
  }
  if (
    e.last_error !== null &&
    (e.state === "FAILED" || e.state === "CANCELLED" || e.state === "PENDING")
  ) {
    line += `: ${oneLine(e.last_error)}`;
  }
  return line;
}

/** Collapses whitespace and cuts long text for a table cell or a line. */
export function oneLine(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Table rows of tasks: TASK STATE ATTEMPTS NODE EXIT LAST_ERROR. */
export function taskTable(envelopes: Envelope[]): string[] {
  return table(
    ["TASK", "STATE", "ATTEMPTS", "NODE", "EXIT", "LAST_ERROR"],
    envelopes.map((e) => [
      e.task_id,
      e.state + (e.cancel_requested && e.state !== "CANCELLED" ? "*" : ""),
      `${e.attempts}/${e.max_attempts}`,
      nodeOf(e) ?? "-",
      e.exit_code === null ? "-" : String(e.exit_code),
      e.last_error === null ? "-" : oneLine(e.last_error, 60),
    ]),
  );
}
