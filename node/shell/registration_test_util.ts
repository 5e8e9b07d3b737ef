/** A {@linkcode Registration} for tests against a real etcd: what a test does not set is a quiet default. */
import assert from "node:assert/strict";
import { Keys } from "../keys.ts";
import { EtcdHealth } from "./etcd_health.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { Registration, type RegistrationDeps } from "./registration.ts";

/** Registers `node_id` on `client` with a 10 s lease; a fatal refusal fails the test. */
export function testRegistration(
  deps:
    & Pick<RegistrationDeps, "client" | "node_id" | "caps">
    & Partial<RegistrationDeps>,
): Registration {
  const log = new Logger({}, "error");
  return new Registration({
    keys: new Keys("/boi/"),
    lease_ttl_s: 10,
    addr: "127.0.0.1:1",
    startedAt: Date.now(),
    log,
    health: new EtcdHealth(log, new Metrics(), 1000, () => {}),
    push: () => {},
    onRegistered: () => {},
    stopping: () => false,
    fatal: (err) => assert.fail(`fatal: ${err.message}`),
    ...deps,
  });
}
