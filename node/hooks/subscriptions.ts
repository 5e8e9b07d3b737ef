/**
 * Which event kinds a hooks plugin receives: its config's `subscribe` list
 * of kinds and globs (`task.*`, `*`). An event no pattern matches is never
 * sent and never enters the audit WAL.
 * @module
 */
import { EVENT_KINDS } from "./event_schemas.ts";

/** A compiled subscription list. */
export interface Subscriptions {
  readonly patterns: readonly string[];
  matches(kind: string): boolean;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split("*").map((p) =>
    p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
  )
    .join(".*");
  return new RegExp(`^${body}$`);
}

/**
 * Checks and compiles `patterns` (null: every kind). Throws a one-line error
 * for a pattern that names no SPEC §8 kind, e.g. a typo like `task.complete`.
 */
export function compileSubscriptions(
  patterns: readonly string[] | null,
  where = "hooks.subscribe",
): Subscriptions {
  const list = patterns ?? ["*"];
  const res = list.map((p, i) => {
    const re = globToRegExp(p);
    if (!EVENT_KINDS.some((k) => re.test(k))) {
      throw new Error(
        `${where}[${i}] must be an event kind or a glob matching one (e.g. "task.*"): got ${
          JSON.stringify(p)
        }`,
      );
    }
    return re;
  });
  return {
    patterns: list,
    matches: (kind) => res.some((re) => re.test(kind)),
  };
}
