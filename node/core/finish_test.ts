import assert from "node:assert/strict";
import { cutError, finishEnvelope } from "./finish.ts";
import { testEnvelope } from "../test_envelope.ts";
import { MAX_ERROR_CHARS } from "../schema.ts";
import type { CoreConfig } from "./view.ts";

Deno.test("finishEnvelope: a pool's error is cut to MAX_ERROR_CHARS, saying how long it was", () => {
  // spawner.pl quotes argv[0] when exec fails (E2BIG): 240 KB in the envelope
  // made it outgrow RECORD_MAX_BYTES and drop out of every view.
  const error = `spawn failed: ${"x".repeat(240_000)}: Argument list too long`;
  const env = finishEnvelope(
    { node_id: "node-a", retry_backoff_ms: 1000 } as CoreConfig,
    testEnvelope("s1.a", { state: "RUNNING", attempts: 1, retries_left: 0 }),
    7,
    {
      code: null,
      signal: null,
      error,
      lost: false,
      started_at: 1,
      finished_at: 2,
    } as Parameters<typeof finishEnvelope>[3],
    1,
  );
  assert.equal(env.state, "FAILED");
  assert.equal(env.last_error!.length, MAX_ERROR_CHARS);
  assert.ok(env.last_error!.startsWith("spawn failed: xxx"));
  assert.ok(env.last_error!.endsWith(` … (${error.length} chars, cut)`));
  assert.equal(cutError("short"), "short");
});
