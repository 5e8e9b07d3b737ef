/**
 * The provisioning part of `cluster status` (SPEC §10): open and recently
 * fulfilled requests, and the requires in cooldown after failed attempts.
 */
import { ProvisionFailures, ProvisionRequest } from "../node/schema.ts";
import { showHint } from "../node/core/provision_note.ts";
import type { Keys } from "../node/keys.ts";
import { formatDuration } from "./format.ts";
import type { Store } from "./store.ts";

/** `cluster status --json`'s `provisioning`. */
export interface ProvisionStatus {
  requests: ProvisionRequest[];
  /** Failure records whose cooldown has not ended. */
  cooldowns: (ProvisionFailures & { hint_hash: string })[];
}

/** Reads the requests and the failure records still cooling down at `now`. */
export async function readProvisionStatus(
  store: Store,
  keys: Keys,
  now: number,
): Promise<ProvisionStatus> {
  const reqs = await store.list(keys.dir("provision-req"), ProvisionRequest);
  const dir = keys.dir("provision-failures");
  const fails = await store.list(dir, ProvisionFailures);
  return {
    requests: reqs.items.map((r) => r.value).sort((a, b) =>
      a.requested_at - b.requested_at
    ),
    cooldowns: fails.items.filter((f) => f.value.cooldown_until > now).map((
      f,
    ) => ({ ...f.value, hint_hash: f.key.slice(dir.length) })),
  };
}

/** One line per request and per cooldown; nothing when there are none. */
export function provisionLines(p: ProvisionStatus, now: number): string[] {
  const lines = p.requests.map((r) =>
    `provisioning: req ${r.req_id} for ${
      showHint(r.hint)
    } by ${r.requested_by}${
      r.allocation_id ? `, allocation ${r.allocation_id}` : ""
    } (${
      r.fulfilled_by !== undefined
        ? `fulfilled by ${r.fulfilled_by}`
        : `open, deadline in ${formatDuration(r.deadline_at - now)}`
    })`
  );
  for (const c of p.cooldowns) {
    lines.push(
      `provisioning cooldown: ${
        c.hint ? showHint(c.hint) : c.hint_hash
      } until ${new Date(c.cooldown_until).toISOString()} (${
        formatDuration(c.cooldown_until - now)
      } left) after ${c.count} failures: ${c.last_reason ?? "unknown"}`,
    );
  }
  return lines;
}
