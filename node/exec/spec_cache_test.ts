/**
 * The spec cache's pure parts: the bounded LRU, core's session (what it sent
 * on one connection, with a scripted plugin as the `call`), and the SDK's
 * cache that restores the YAML. Real plugin processes:
 * grpc_workspace_spec_cache_test.ts.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Lru } from "./lru.ts";
import { SpecCacheSession } from "./spec_cache_client.ts";
import {
  isSpecCacheMiss,
  PREPARE_WIRE,
  type PrepareWire,
  SPEC_CACHE_MISS,
  specDigest,
} from "./spec_cache_wire.ts";
import { PluginCallError } from "./plugin_call_error.ts";
import { SpecCache } from "../../plugins/sdk/spec_cache.ts";
import { PluginError } from "../../plugins/sdk/errors.ts";

Deno.test("Lru: evicts the least recently used past max; get refreshes, peek does not", () => {
  const l = new Lru<string, number>({ max: 2 });
  l.set("a", 1);
  l.set("b", 2);
  assert.equal(l.get("a"), 1); // a is now the most recent
  l.set("c", 3);
  assert.deepEqual(l.keys(), ["a", "c"]);
  assert.equal(l.peek("a"), 1);
  l.set("d", 4); // peek did not refresh a
  assert.deepEqual(l.keys(), ["c", "d"]);
  l.set("c", 30); // a rewrite is a use
  assert.deepEqual(l.keys(), ["d", "c"]);
  assert.throws(() => new Lru({ max: 0 }), /max must be an integer ≥ 1: got 0/);
});

Deno.test("Lru: a weight bound evicts the oldest until under it, keeping the newest even if alone over", () => {
  const l = new Lru<string, string>({
    max: 10,
    maxWeight: 10,
    weight: (v) => v.length,
  });
  l.set("a", "xxxx");
  l.set("b", "xxxx");
  assert.equal(l.weight, 8);
  l.set("c", "xxxx");
  assert.deepEqual(l.keys(), ["b", "c"]);
  l.set("b", "x"); // replaced: its old weight is gone
  assert.equal(l.weight, 5);
  l.set("big", "x".repeat(50));
  assert.deepEqual(l.keys(), ["big"]);
  assert.equal(l.weight, 50);
  l.delete("big");
  assert.equal(l.weight, 0);
});

/** A plugin as the session's `call` sees it: the SDK's cache behind a codec round trip. */
function scriptedPlugin(cache: SpecCache) {
  const seen: { wire: PrepareWire; yaml: string }[] = [];
  let fail: Error | null = null;
  return {
    seen,
    failNext(e: Error) {
      fail = e;
    },
    call: (w: PrepareWire) => {
      const wire = PREPARE_WIRE.decodeRequest(PREPARE_WIRE.encodeRequest(w));
      if (fail) {
        const e = fail;
        fail = null;
        return Promise.reject(e);
      }
      try {
        const req = cache.restore(wire);
        seen.push({ wire, yaml: req.spec_yaml });
      } catch (e) {
        const pe = e as PluginError;
        return Promise.reject(
          new PluginCallError(
            "workspace",
            "Prepare",
            grpc.status[pe.code],
            pe.message,
            "c",
          ),
        );
      }
      return Promise.resolve({ workdir: "/w", env: {} });
    },
  };
}

const req = (spec_id: string, spec_yaml: string, t = "t") => ({
  spec_id,
  task_id: `${spec_id}.${t}`,
  spec_yaml,
  hints: {},
});

Deno.test("SpecCacheSession: full once, then digests; the handler's YAML is always the spec's", async () => {
  const s = new SpecCacheSession(8);
  const p = scriptedPlugin(new SpecCache());
  for (const t of ["1", "2", "3"]) {
    await s.prepare(req("s", "name: s\n", t), p.call);
  }
  assert.deepEqual(
    p.seen.map((x) => [x.wire.spec_yaml_cached, x.wire.spec_yaml, x.yaml]),
    [
      [false, "name: s\n", "name: s\n"],
      [true, "", "name: s\n"],
      [true, "", "name: s\n"],
    ],
  );
  assert.ok(
    p.seen.every((x) => x.wire.spec_digest === specDigest("name: s\n")),
  );
  assert.deepEqual(s.stats, { full: 1, cached: 2, misses: 0 });
});

Deno.test("SpecCacheSession: an empty spec stays an empty spec, cached or not", async () => {
  const s = new SpecCacheSession(8);
  const p = scriptedPlugin(new SpecCache());
  await s.prepare(req("e", "", "1"), p.call);
  await s.prepare(req("e", "", "2"), p.call);
  assert.deepEqual(p.seen.map((x) => [x.wire.spec_yaml_cached, x.yaml]), [
    [false, ""],
    [true, ""],
  ]);
});

Deno.test("SpecCacheSession: other YAML under the same spec id goes in full", async () => {
  const s = new SpecCacheSession(8);
  const p = scriptedPlugin(new SpecCache());
  await s.prepare(req("s", "v1", "1"), p.call);
  await s.prepare(req("s", "v2", "2"), p.call);
  await s.prepare(req("s", "v2", "3"), p.call);
  assert.deepEqual(p.seen.map((x) => [x.wire.spec_yaml_cached, x.yaml]), [
    [false, "v1"],
    [false, "v2"],
    [true, "v2"],
  ]);
});

Deno.test("SpecCacheSession: a miss (plugin restarted) resends in full once and the call succeeds", async () => {
  const s = new SpecCacheSession(8);
  const first = scriptedPlugin(new SpecCache());
  await s.prepare(req("s", "y", "1"), first.call);
  const restarted = scriptedPlugin(new SpecCache()); // an empty cache
  const res = await s.prepare(req("s", "y", "2"), restarted.call);
  assert.deepEqual(res, { workdir: "/w", env: {} });
  assert.deepEqual(
    restarted.seen.map((x) => [x.wire.spec_yaml_cached, x.yaml]),
    [
      [false, "y"],
    ],
  );
  assert.deepEqual(s.stats, { full: 2, cached: 1, misses: 1 });
});

Deno.test("SpecCacheSession: a failed full send is forgotten; other errors reach the caller untouched", async () => {
  const s = new SpecCacheSession(8);
  const p = scriptedPlugin(new SpecCache());
  const boom = new PluginCallError("workspace", "Prepare", 14, "gone", "c");
  p.failNext(boom);
  await assert.rejects(
    s.prepare(req("s", "y", "1"), p.call),
    (e) => e === boom,
  );
  await s.prepare(req("s", "y", "2"), p.call);
  assert.equal(p.seen[0].wire.spec_yaml_cached, false); // sent in full again
  // A non-miss error of a cached call is not retried.
  const bad = new PluginCallError("workspace", "Prepare", 9, "disk full", "c");
  p.failNext(bad);
  await assert.rejects(s.prepare(req("s", "y", "3"), p.call), (e) => e === bad);
  assert.equal(s.stats.misses, 0);
});

Deno.test("SpecCacheSession: past max_specs the least recently prepared spec goes in full again", async () => {
  const s = new SpecCacheSession(2);
  const p = scriptedPlugin(new SpecCache());
  for (const id of ["a", "b", "c", "a"]) await s.prepare(req(id, id), p.call);
  assert.deepEqual(p.seen.map((x) => x.wire.spec_yaml_cached), [
    false,
    false,
    false,
    false,
  ]);
});

Deno.test("SpecCache (SDK): a digest it does not hold is the retryable miss, never a guess", () => {
  const c = new SpecCache({ specs: 1 });
  const w = (
    spec_id: string,
    yaml: string,
    cached: boolean,
    digest = specDigest(yaml),
  ): PrepareWire => ({
    ...req(spec_id, cached ? "" : yaml),
    spec_digest: digest,
    spec_yaml_cached: cached,
  });
  assert.throws(() => c.restore(w("s", "y", true)), (e: unknown) => {
    assert.ok(e instanceof PluginError);
    assert.equal(e.code, "FAILED_PRECONDITION");
    assert.ok(e.message.startsWith(SPEC_CACHE_MISS));
    return true;
  });
  assert.equal(c.restore(w("s", "y", false)).spec_yaml, "y");
  assert.equal(c.restore(w("s", "y", true)).spec_yaml, "y");
  // The same spec id under another digest: a miss, not the held YAML.
  assert.throws(() => c.restore(w("s", "z", true)), /another digest held/);
  // Evicted by the bound of 1.
  c.restore(w("t", "t", false));
  assert.deepEqual(c.specs(), ["t"]);
  assert.throws(() => c.restore(w("s", "y", true)), /evicted/);
  // A 1.0 core's request (no digest) is passed on and not held.
  const plain = c.restore({
    ...req("u", "u"),
    spec_digest: "",
    spec_yaml_cached: false,
  });
  assert.equal(plain.spec_yaml, "u");
  assert.deepEqual(c.specs(), ["t"]);
  assert.ok(!("spec_digest" in plain) && !("spec_yaml_cached" in plain));
});

Deno.test("PREPARE_WIRE: refuses a cached Prepare without a digest; isSpecCacheMiss needs code and marker", () => {
  const cached = PREPARE_WIRE.encodeRequest({
    spec_id: "s",
    task_id: "s.t",
    spec_yaml: "",
    hints: {},
    spec_digest: "",
    spec_yaml_cached: true,
  });
  assert.throws(
    () => PREPARE_WIRE.decodeRequest(cached),
    /PrepareRequest\.spec_yaml_cached: set without a spec_digest/,
  );
  // spec_digest (field 5, length-delimited) says 16 bytes and carries 1.
  assert.throws(
    () => PREPARE_WIRE.decodeRequest(Uint8Array.of(0x2a, 16, 0x61)),
    /PrepareRequest\.spec_digest: 16 bytes declared, 1 left/,
  );
  const miss = (code: number, details: string) =>
    isSpecCacheMiss(
      new PluginCallError("workspace", "Prepare", code, details, "c"),
    );
  assert.ok(miss(9, `${SPEC_CACHE_MISS}: spec s`));
  assert.ok(!miss(9, "disk full"));
  assert.ok(!miss(13, `${SPEC_CACHE_MISS}: spec s`));
});
