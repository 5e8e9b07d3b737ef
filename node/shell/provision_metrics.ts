/** Provisioning gauges (SPEC §10), read from the view at scrape time: every node sees the cluster's. */
import type { NodeView } from "../core/mod.ts";
import type { Metrics } from "./metrics.ts";
import { now as clock } from "./clock.ts";

/** Declares `boi_provision_requests_open` and `boi_provision_cooldowns`. */
export function declareProvisionMetrics(m: Metrics, view: NodeView): void {
  m.declare(
    "boi_provision_requests_open",
    "gauge",
    "provisioning requests waiting for a node to join (cluster-wide)",
  );
  m.declare(
    "boi_provision_cooldowns",
    "gauge",
    "requires whose provisioning is in cooldown after repeated failures (cluster-wide)",
  );
  m.collect(() => {
    let open = 0;
    for (const r of view.provision.reqs.values()) {
      if (r.value.fulfilled_by === undefined) open++;
    }
    const now = clock();
    let cooling = 0;
    for (const f of view.provision.failures.values()) {
      if (f.value.cooldown_until > now) cooling++;
    }
    m.set("boi_provision_requests_open", open);
    m.set("boi_provision_cooldowns", cooling);
  });
}
