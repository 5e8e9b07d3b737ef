import assert from "node:assert/strict";
import { Keys } from "../keys.ts";
import type { Envelope } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { applyEvent } from "../core/apply.ts";
import type { KeyChange } from "../core/events.ts";
import { emptyView, type MutableView } from "../core/view.ts";
import {
  cachedView,
  type DegradedNode,
  DISPATCH_REJECTED_METRIC,
  handleDegradedHttp,
} from "./degraded_http.ts";
import { Metrics } from "./metrics.ts";

const keys = new Keys("/boi/");
let rev = 10;

function put(key: string, value: unknown, lease = "0"): KeyChange {
  rev++;
  return {
    key,
    revision: rev,
    kv: {
      value: JSON.stringify(value),
      mod_revision: rev,
      create_revision: rev,
      lease,
    },
  };
}

function envelope(id: string, state: Envelope["state"]): Envelope {
  return testEnvelope(`s1.${id}`, { state });
}

function view(): MutableView {
  const v = emptyView({
    node_id: "node-a",
    workers_max: 4,
    static_caps: { os: "linux", arch: "x86_64" },
    spill_after_ms: 1000,
    spill_step_ms: 100,
    retry_backoff_ms: 1000,
    cancel_grace_ms: 1000,
    claim_failure_window_ms: 300_000,
    claim_failure_limit: 3,
    claim_failure_cooldown_ms: 300_000,
  });
  const changes: KeyChange[] = [];
  for (const id of ["node-a", "node-b"]) {
    changes.push(
      put(keys.node(id), {
        node_id: id,
        addr: `127.0.0.1:${id === "node-a" ? 7001 : 7002}`,
        version: "0.1.0",
        started_at: 0,
        pid: 1,
      }, "5"),
      put(keys.caps(id), {
        static: { os: "linux", arch: "x86_64" },
        dynamic: {
          workers_busy: 1,
          workers_max: 4,
          health: id === "node-b" ? "degraded" : "ok",
          x_gpu: "a100",
        },
      }, "5"),
    );
  }
  changes.push(
    put(keys.spec("s1"), {
      spec_id: "s1",
      yaml: "",
      sha256: "",
      dispatched_by: "t",
      dispatched_at: 5,
      task_ids: ["s1.b", "s1.a", "s1.c"],
    }),
    put(keys.task("s1.a"), envelope("a", "DONE")),
    put(keys.task("s1.b"), envelope("b", "RUNNING")),
    put(keys.task("s1.c"), envelope("c", "PENDING")),
    put(keys.drain("node-b"), { requested_at: 1, by: "t" }),
    put(keys.dispatchPaused(), { paused_at: 1, by: "t" }),
  );
  applyEvent(v, keys, { type: "changes", at: 0, changes });
  return v;
}

function fakeNode(over: Partial<DegradedNode> = {}): DegradedNode {
  return {
    view: view(),
    metrics: new Metrics(),
    deps: { config: { node_id: "node-a" } },
    etcdStatus: () => ({ up: false, down_since: 9_000 }),
    lastEtcdContact: 8_000,
    pendingFlushEntries: () => 2,
    ...over,
  };
}

Deno.test("cachedView: nodes with caps and health, specs with counts, the cache age", () => {
  const v = cachedView(fakeNode(), 12_200);
  assert.equal(v.node_id, "node-a");
  assert.equal(v.etcd_up, false);
  assert.equal(v.etcd_down_since, 9_000);
  assert.equal(v.cache_age_ms, 4_200);
  assert.equal(v.membership_cache_ttl_s, 30);
  assert.equal(v.pending_flush, 2);
  assert.equal(v.dispatch_paused, true);
  assert.deepEqual(v.nodes.map((n) => [n.node_id, n.health, n.draining]), [
    ["node-a", "ok", false],
    ["node-b", "degraded", true],
  ]);
  assert.equal(v.nodes[1].caps.x_gpu, "a100");
  assert.equal(v.nodes[1].caps.health, undefined);
  assert.equal(v.specs.length, 1);
  assert.deepEqual(v.specs[0].counts, {
    BLOCKED: 0,
    PENDING: 1,
    CLAIMED: 0,
    RUNNING: 1,
    DONE: 1,
    FAILED: 0,
    CANCELLED: 0,
  });
  assert.equal(v.tasks, undefined);
  const one = cachedView(fakeNode(), 12_200, "s1");
  assert.deepEqual(one.tasks?.map((t) => t.task_id), ["s1.b", "s1.a", "s1.c"]);
});

Deno.test("a node without etcd status members answers as up and fresh", () => {
  const v = cachedView({
    view: view(),
    metrics: new Metrics(),
    deps: { config: { node_id: "node-a" } },
  }, 5_000);
  assert.equal(v.etcd_up, true);
  assert.equal(v.cache_age_ms, 0);
  assert.equal(v.pending_flush, 0);
});

Deno.test("POST /internal/dispatch-rejected counts; other methods and paths are refused or passed on", async () => {
  const node = fakeNode();
  // BoiNode declares it at startup, so it renders at 0 before any rejection.
  node.metrics.declare(DISPATCH_REJECTED_METRIC, "counter", "rejected");
  const before = node.metrics.render();
  assert.match(before, new RegExp(`^${DISPATCH_REJECTED_METRIC} 0$`, "m"));
  const post = () =>
    handleDegradedHttp(
      new Request("http://x/internal/dispatch-rejected", {
        method: "POST",
        body: "{}",
      }),
      node,
    );
  for (let i = 0; i < 2; i++) {
    const r = post();
    assert.equal(r?.status, 200);
    assert.deepEqual(await r!.json(), { counted: true });
  }
  assert.match(
    node.metrics.render(),
    new RegExp(`^${DISPATCH_REJECTED_METRIC} 2$`, "m"),
  );
  const get = handleDegradedHttp(
    new Request("http://x/internal/dispatch-rejected"),
    node,
  );
  assert.equal(get?.status, 405);
  assert.equal(get?.headers.get("allow"), "POST");
  await get?.body?.cancel();
  const starting = handleDegradedHttp(
    new Request("http://x/internal/dispatch-rejected", { method: "POST" }),
    null,
  );
  assert.equal(starting?.status, 503);
  await starting?.body?.cancel();
  for (
    const path of [
      "/healthz",
      "/metrics",
      "/internal/view/x",
    ]
  ) {
    assert.equal(
      handleDegradedHttp(new Request(`http://x${path}`), node),
      null,
      path,
    );
  }
});

Deno.test("GET /internal/view answers from memory; ?spec= adds the tasks; bad ids are 400", async () => {
  const node = fakeNode();
  const r = handleDegradedHttp(
    new Request("http://x/internal/view"),
    node,
    10_000,
  );
  assert.equal(r?.status, 200);
  const body = await r!.json();
  assert.equal(body.cache_age_ms, 2_000);
  assert.equal(body.nodes.length, 2);
  const one = handleDegradedHttp(
    new Request("http://x/internal/view?spec=s1"),
    node,
    10_000,
  );
  assert.equal((await one!.json()).tasks.length, 3);
  const bad = handleDegradedHttp(
    new Request("http://x/internal/view?spec=..%2Fx"),
    node,
  );
  assert.equal(bad?.status, 400);
  await bad?.body?.cancel();
  const post = handleDegradedHttp(
    new Request("http://x/internal/view", { method: "POST" }),
    node,
  );
  assert.equal(post?.status, 405);
  await post?.body?.cancel();
});
