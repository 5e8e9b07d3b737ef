import assert from "node:assert/strict";
import { provisionLines } from "./cluster_provision.ts";

Deno.test("cluster status: one line per provisioning request and per cooldown", () => {
  const now = Date.UTC(2026, 0, 1);
  const hint = { "x-test-pool": "mac", os: "linux" };
  const lines = provisionLines({
    requests: [
      {
        req_id: "aaaa-1",
        hint,
        hint_hash: "h",
        requested_at: now - 5000,
        requested_by: "node-a",
        allocation_id: "local-aaaa-1",
        deadline_at: now + 41_000,
      },
      {
        req_id: "bbbb-2",
        hint: { "x-test-gpu": "a100" },
        hint_hash: "g",
        requested_at: now - 9000,
        requested_by: "node-a",
        deadline_at: now + 1000,
        fulfilled_by: "p-bbbb-2",
      },
    ],
    cooldowns: [{
      hint_hash: "c",
      count: 3,
      cooldown_until: now + 252_000,
      hint: { "x-test-pool": "arm" },
      last_reason: "no node joined within 60000 ms",
    }],
  }, now);
  assert.deepEqual(lines, [
    'provisioning: req aaaa-1 for {"os":"linux","x-test-pool":"mac"} by node-a, allocation local-aaaa-1 (open, deadline in 41s)',
    'provisioning: req bbbb-2 for {"x-test-gpu":"a100"} by node-a (fulfilled by p-bbbb-2)',
    'provisioning cooldown: {"x-test-pool":"arm"} until 2026-01-01T00:04:12.000Z (4m12s left) after 3 failures: no node joined within 60000 ms',
  ]);
  assert.deepEqual(provisionLines({ requests: [], cooldowns: [] }, now), []);
});
