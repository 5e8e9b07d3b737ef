import assert from "node:assert/strict";
import {
  EVENT_KINDS,
  EVENT_PAYLOAD_CHECKS,
  EVENT_PAYLOADS,
} from "./event_schemas.ts";

Deno.test("event payload checks: every kind has a fast check, and it refuses what zod refuses", () => {
  const claimed = {
    task_id: "s.t",
    spec_id: "s",
    node_id: "n1",
    attempt: 1,
    fence: 42,
  };
  assert.ok(EVENT_PAYLOADS["task.claimed"].safeParse(claimed).success);
  assert.equal(EVENT_PAYLOAD_CHECKS["task.claimed"]?.(claimed), true);
  const bad = [
    {},
    { ...claimed, attempt: 0 },
    { ...claimed, fence: 1.5 },
    { ...claimed, task_id: 7 },
    null,
  ];
  for (const kind of EVENT_KINDS) {
    const check = EVENT_PAYLOAD_CHECKS[kind];
    assert.ok(check, `${kind}: no fast check (zod would run for every event)`);
    for (const v of bad) {
      if (!EVENT_PAYLOADS[kind].safeParse(v).success) {
        assert.equal(check(v), false, `${kind}: accepts ${JSON.stringify(v)}`);
      }
    }
  }
});
