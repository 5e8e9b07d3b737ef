/**
 * The tail request as it arrives: the task id checked on the raw request
 * target (before any percent-decoding; anything outside the id grammar is
 * 400), and the `since_bytes` / `max_bytes` / `follow` parameters.
 */
import { TASK_ID_PATTERN } from "../schema.ts";

export interface TailRequest {
  task_id: string;
  since_bytes: number;
  max_bytes: number | null;
  follow: boolean;
}

/** Header a forwarded request carries, so it is never forwarded again. */
/** Why a raw id is refused, in words a client can act on. */
export function checkTaskId(raw: string): string | null {
  if (TASK_ID_PATTERN.test(raw)) return null;
  const shown = JSON.stringify(raw.length > 80 ? `${raw.slice(0, 80)}…` : raw);
  const why = raw === ""
    ? "missing"
    : raw.includes("/")
    ? "contains '/'"
    : raw.includes("\\")
    ? "contains '\\'"
    : raw.includes("\0")
    ? "contains NUL"
    : raw.includes("%")
    ? "is percent-encoded (ids never need it)"
    : raw.includes("..")
    ? "contains '..'"
    : raw.length > 127
    ? "is too long"
    : `must match ${TASK_ID_PATTERN.source}`;
  return `bad task id ${shown}: ${why}`;
}

const COUNT = /^\d{1,15}$/;

/** Parses the raw id (undecoded) and the raw query; returns an error line for a 400. */
export function parseTailRequest(
  rawId: string,
  rawQuery: string,
): TailRequest | { error: string } {
  const bad = checkTaskId(rawId);
  if (bad !== null) return { error: bad };
  const q = new URLSearchParams(rawQuery);
  const one = (name: string): string | null | { error: string } => {
    const all = q.getAll(name);
    if (all.length > 1) return { error: `${name} given ${all.length} times` };
    return all[0] ?? null;
  };
  const since = one("since_bytes");
  const max = one("max_bytes");
  const follow = one("follow");
  for (const v of [since, max, follow]) {
    if (v !== null && typeof v === "object") return v;
  }
  for (const [name, v] of [["since_bytes", since], ["max_bytes", max]]) {
    if (v !== null && !COUNT.test(v as string)) {
      return {
        error: `${name} must be a byte count (0 or more): got ${
          JSON.stringify(String(v).slice(0, 40))
        }`,
      };
    }
  }
  if (
    follow !== null &&
    !["", "0", "1", "true", "false"].includes(follow as string)
  ) {
    return {
      error: `follow must be 1 or 0: got ${
        JSON.stringify(String(follow).slice(0, 40))
      }`,
    };
  }
  return {
    task_id: rawId,
    since_bytes: since === null ? 0 : Number(since),
    max_bytes: max === null ? null : Number(max),
    follow: follow === "1" || follow === "true" || follow === "",
  };
}
