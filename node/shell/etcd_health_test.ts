/**
 * The outage rule (SPEC §6, operations.md "When etcd is down"): an idle
 * node's only calls are its keepalives, one round every TTL/3 lasting up to
 * TTL/3 (lease.ts), so a round that fails (all its tries on the dead member
 * of three, or one answer slower than its deadline under load) is told up to
 * 2/3 TTL after the last success. That is not an outage; a TTL without any
 * success is. Regression: with half a TTL as the grace, member_loss_test saw
 * /healthz 503 at 7 of 78 checks on a loaded CI machine.
 */
import assert from "node:assert/strict";
import { EtcdHealth, outageGraceMs } from "./etcd_health.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";

Deno.test("etcd health: one failed keepalive round is not an outage, a lease TTL without a success is", () => {
  // The node's clock follows the monotonic clock forward (clock.ts).
  const real = performance.now.bind(performance);
  let shift = 0;
  performance.now = () => real() + shift;
  try {
    const ttlS = 2;
    const roundMs = (ttlS * 1000) / 3;
    const h = new EtcdHealth(
      new Logger({}, "error"),
      new Metrics(),
      outageGraceMs(ttlS),
      () => {},
    );
    const err = new Error("14 UNAVAILABLE: No connection established");
    h.mark(true); // a keepalive got through
    // The next round starts a round later and fails at its end, 150 ms late
    // on a loaded machine.
    shift += 2 * roundMs + 150;
    h.mark(false, err);
    assert.equal(h.up, true, "one failed keepalive round made an outage");
    // The round after fails too: nothing for more than a TTL.
    shift += roundMs;
    h.mark(false, err);
    assert.equal(h.up, false);
    assert.ok(h.downSince !== null);
    h.mark(true);
    assert.equal(h.up, true);
  } finally {
    performance.now = real;
  }
});

Deno.test("etcd health: the grace is a lease TTL, at least 1 s", () => {
  assert.equal(outageGraceMs(2), 2000);
  assert.equal(outageGraceMs(10), 10_000);
  assert.equal(outageGraceMs(0.5), 1000);
});
