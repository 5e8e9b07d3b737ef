/**
 * What an unschedulable task's `last_error` says (SPEC §5.6, §10): plain
 * "no capable node", or what provisioning is doing about it. Any node that
 * monitors the task writes it, from the provisioning records in its view.
 */
import { createHash } from "node:crypto";
import type { Requires } from "../schema.ts";
import type { ProvisionView } from "./provision_types.ts";
import { NO_CAPABLE_NODE } from "./txns.ts";

/** One spelling per requires (keys sorted): requests are per distinct requires. */
export function canonicalHint(requires: Requires): string {
  return JSON.stringify(
    Object.keys(requires).sort().map((k) => [k, requires[k]]),
  );
}

// A pure function of its input, memoized: the monitor's notes hash the
// requires of every unschedulable task on every sweep.
const memo = new Map<string, string>();
const MEMO_MAX = 10_000;

/** SHA-256 hex of the canonical hint: names `/boi/provision-failures/{hint_hash}`. */
export function hintHash(requires: Requires): string {
  const key = canonicalHint(requires);
  let hash = memo.get(key);
  if (hash === undefined) {
    if (memo.size >= MEMO_MAX) memo.clear();
    hash = createHash("sha256").update(key).digest("hex");
    memo.set(key, hash);
  }
  return hash;
}

/** `{"k":"v",…}` with sorted keys, as notes and logs show a hint. */
export function showHint(requires: Requires): string {
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(requires).sort()) sorted[k] = requires[k];
  return JSON.stringify(sorted);
}

/** True for every note {@linkcode unschedulableNote} writes: a claim clears it. */
export function isUnschedulableNote(text: string | null): boolean {
  return text === NO_CAPABLE_NODE ||
    (text !== null && text.startsWith("provisioning "));
}

/** The note for a PENDING task no live node can run, given the provisioning records. */
export function unschedulableNote(
  p: ProvisionView,
  requires: Requires,
  at: number,
): string {
  if (p.reqs.size === 0 && p.failures.size === 0 && p.unreadable.size === 0) {
    return NO_CAPABLE_NODE;
  }
  const hash = hintHash(requires);
  for (const r of p.reqs.values()) {
    if (r.value.hint_hash === hash && r.value.fulfilled_by === undefined) {
      return `provisioning node for ${
        showHint(requires)
      } (req ${r.value.req_id})`;
    }
  }
  if (p.unreadable.has(hash)) {
    return `provisioning blocked: the failure record of ${
      showHint(requires)
    } is unreadable (fail closed)`;
  }
  const f = p.failures.get(hash)?.value;
  if (f && f.cooldown_until > at) {
    return `provisioning in cooldown until ${
      new Date(f.cooldown_until).toISOString()
    } after ${f.count} failures (${f.last_reason ?? "unknown"})`;
  }
  return NO_CAPABLE_NODE;
}
