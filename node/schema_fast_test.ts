/**
 * The fast check never accepts what zod would reject or change: for every
 * record schema, valid samples and many mutations of them, "fast accepts"
 * implies "zod accepts and returns an equal value". And it does accept the
 * real records, or it would save nothing.
 */
import assert from "node:assert/strict";
import type { z } from "zod";
import * as schema from "./schema.ts";
import { fastCheck } from "./schema_fast.ts";
import { testEnvelope } from "./test_envelope.ts";

const samples: [string, z.ZodType, unknown[]][] = [
  ["Envelope", schema.Envelope, [
    testEnvelope("s.a"),
    testEnvelope("s-1.b_2", {
      state: "DONE",
      run: ["sh", "-c", "x"],
      requires: { gpu: "1" },
      env: { A: "é" },
      depends_on: ["s-1.a"],
      claimant_node_id: "n1",
      claim_lease_id: "9223372036854775807",
      fence: 12,
      exit_code: -1,
      timeout_ms: 1000,
      not_before: 5,
    }),
    testEnvelope("s.c", { run: null, prompt: "do it" }),
  ]],
  ["Claim", schema.Claim, [{
    node_id: "n1",
    lease_id: "1",
    claimed_at: 3,
    attempt: 1,
  }]],
  ["NodeRecord", schema.NodeRecord, [{
    node_id: "n1",
    addr: "127.0.0.1:1",
    version: "1",
    started_at: 1,
    pid: 2,
  }]],
  ["CapsRecord", schema.CapsRecord, [
    {
      static: { os: "linux" },
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
    },
    {
      static: {},
      dynamic: {
        workers_busy: 1,
        workers_max: 4,
        health: "degraded",
        extra: { kept: true },
      },
    },
  ]],
  ["SpecRecord", schema.SpecRecord, [{
    spec_id: "s",
    yaml: "tasks: []",
    sha256: "x",
    dispatched_by: "cli",
    dispatched_at: 1,
    task_ids: ["s.a"],
  }, {
    spec_id: "s",
    yaml: "",
    sha256: "x",
    dispatched_by: "cli",
    dispatched_at: 1,
    task_ids: [],
    env: { A: "1" },
  }]],
];

const ODD: unknown[] = [
  null,
  undefined,
  "",
  "x",
  "A B",
  "s.a",
  0,
  -1,
  1.5,
  2 ** 53,
  Infinity,
  true,
  false,
  [],
  [""],
  ["x", 1],
  {},
  { a: 1 },
  { a: "1" },
  "PENDING",
  "ok",
];

/** Each sample with one field removed, replaced by an odd value, or one extra key. */
function* mutations(v: unknown): Generator<unknown> {
  yield v;
  for (const o of ODD) yield o;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return;
  const rec = v as Record<string, unknown>;
  yield { ...rec, extra: 1 };
  const body = JSON.stringify(rec).slice(1);
  yield JSON.parse(`{"__proto__": {"x": 1}${body === "}" ? "" : ","}${body}`);
  for (const k of Object.keys(rec)) {
    const { [k]: _, ...rest } = rec;
    yield rest;
    for (const o of ODD) yield { ...rec, [k]: o };
    for (const inner of mutations(rec[k])) {
      if (inner !== rec[k]) yield { ...rec, [k]: inner };
    }
  }
}

for (const [name, s, valid] of samples) {
  Deno.test(`fast check: ${name}: accepts only what zod accepts unchanged`, () => {
    const fast = fastCheck(s);
    assert.ok(fast, `${name}: the fast check must cover this schema`);
    let accepted = 0;
    let n = 0;
    for (const v of valid) {
      assert.ok(fast(v), `${name}: a valid record: ${JSON.stringify(v)}`);
      for (const m of mutations(v)) {
        n++;
        if (!fast(m)) continue;
        accepted++;
        const z = s.safeParse(m);
        assert.ok(z.success, `${name}: fast accepted ${JSON.stringify(m)}`);
        assert.deepEqual(
          z.data,
          m,
          `${name}: zod changed ${JSON.stringify(m)}`,
        );
      }
    }
    assert.ok(n > accepted, `${name}: the mutations must include rejections`);
  });
}

Deno.test("fast check: constructs it does not know fall back to zod (null)", async () => {
  const { z } = await import("zod");
  assert.equal(fastCheck(z.object({ a: z.string().email() })), null);
  assert.equal(fastCheck(z.object({ a: z.number().default(1) })), null);
  assert.equal(
    fastCheck(z.object({ a: z.string() }).catchall(z.string())),
    null,
  );
  assert.equal(fastCheck(z.record(z.enum(["a", "b"]), z.string())), null);
  assert.equal(fastCheck(z.string().transform((s) => s.length)), null);
});
