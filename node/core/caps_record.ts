/**
 * The node's own caps record (SPEC §2 `/boi/caps/{node_id}`) as a function of
 * its view: static caps, busy/max, health and, while an operator drains it,
 * `drain_state`. Pure, so the simulator publishes exactly what a node would.
 */
import type { CapsRecord } from "../schema.ts";
import { localBusy, selfHealth } from "./filter.ts";
import type { NodeView } from "./view.ts";

/** `pendingFlush`: results still parked in the pending-flush file (they keep a drain open). */
export function capsRecord(
  view: NodeView,
  at: number,
  pendingFlush: number,
): CapsRecord {
  const busy = localBusy(view);
  const drainRequest = view.draining.get(view.config.node_id);
  return {
    static: { ...view.config.static_caps },
    dynamic: {
      workers_busy: busy,
      workers_max: view.config.workers_max,
      health: selfHealth(view, at),
      pending_flush: pendingFlush,
      ...(drainRequest !== undefined
        ? {
          // Drained: no process, no result still being written or parked.
          drain_state:
            view.workers.size === 0 && busy === 0 && pendingFlush === 0
              ? "drained"
              : "draining",
          // Which request this answers: a drain asked again right after an
          // undrain changes the record, so the CLI sees it taken.
          drain_request: drainRequest,
        }
        : {}),
    },
  };
}
