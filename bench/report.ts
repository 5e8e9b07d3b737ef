/** The bench's table: Markdown, for the terminal and the README alike. */

/** One line of the table. */
export interface Row {
  what: string;
  boi: string;
  /** The peer or the limit it is compared with. */
  other: string;
  target: string;
  /** null: no target. */
  met: boolean | null;
  note?: string;
}

/** Markdown table plus the machine and run it came from. */
export function table(rows: Row[], run: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any
  const m = run.machine as any;
  const lines = [
    `Run ${run.date} (${run.mode}, ${
      Math.round(run.seconds as number)
    } s) on ${m.summary}.`,
    "",
    "| measure | boi | compared with | target | met |",
    "|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.what} | ${r.boi} | ${r.other} | ${r.target} | ${
        r.met === null
          ? ""
          : `${r.met ? "yes" : "**no**"}${r.note ? ` (${r.note})` : ""}`
      } |`
    ),
  ];
  return lines.join("\n") + "\n";
}
