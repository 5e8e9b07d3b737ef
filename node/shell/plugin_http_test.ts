import assert from "node:assert/strict";
import { handleHttp as route } from "./http.ts";
import type { ObservedNode } from "./observability.ts";
import type { PluginStatus } from "../plugins/supervisor.ts";

/** The admin gate lets everything through here (admin_gate_test.ts tests it). */
const handleHttp = (r: Request, n: () => ObservedNode | null) =>
  route(r, n, undefined, { check: () => null });

function status(over: Partial<PluginStatus> = {}): PluginStatus {
  return {
    name: "pool",
    kind: "pool",
    state: "ready",
    reason: null,
    incarnation: 2,
    pid: 4242,
    crashes: [],
    plugin_name: "pool_local",
    plugin_version: "1.0.0",
    proto_major: 1,
    proto_minor: 0,
    capabilities: ["reattach"],
    warnings: [],
    since: 0,
    ...over,
  } as PluginStatus;
}

function fakeNode(restarted: string[], st: PluginStatus = status()) {
  return {
    deps: {
      config: { node_id: "node-a", data_dir: "/tmp/x" },
      plugins: {
        supervisors: new Map([["pool", {}], ["workspace", {}]]),
        restart(name: string) {
          restarted.push(name);
          return Promise.resolve(st);
        },
      },
    },
  } as unknown as ObservedNode;
}

const req = (path: string, method = "POST") =>
  new Request(`http://127.0.0.1:1${path}`, { method });

Deno.test("POST /internal/plugins/{name}/restart restarts and answers the new status", async () => {
  const seen: string[] = [];
  const res = await handleHttp(
    req("/internal/plugins/pool/restart"),
    () => fakeNode(seen),
  );
  assert.equal(res.status, 200);
  assert.deepEqual(seen, ["pool"]);
  assert.deepEqual(await res.json(), {
    node_id: "node-a",
    name: "pool",
    kind: "pool",
    state: "ready",
    detail_state: "ready",
    reason: null,
    incarnation: 2,
    pid: 4242,
    proto_minor: 0,
    capabilities: ["reattach"],
    attached: false,
    lost_tasks: [],
  });
});

Deno.test("plugin restart endpoint: refused maps to unstable with its reason", async () => {
  const res = await handleHttp(
    req("/internal/plugins/pool/restart"),
    () =>
      fakeNode(
        [],
        status({ state: "refused", reason: "proto_version_mismatch: x" }),
      ),
  );
  const body = await res.json();
  assert.equal(body.state, "unstable");
  assert.equal(body.detail_state, "refused");
  assert.equal(body.reason, "proto_version_mismatch: x");
});

Deno.test("plugin restart endpoint: unknown plugin 404, GET 405, bad name 400, no node 503, other action 404", async () => {
  const seen: string[] = [];
  const n = () => fakeNode(seen);
  const r404 = await handleHttp(req("/internal/plugins/hooks/restart"), n);
  assert.equal(r404.status, 404);
  assert.match((await r404.json()).error, /no plugin named "hooks" on node/);
  const r405 = await handleHttp(
    req("/internal/plugins/pool/restart", "GET"),
    n,
  );
  assert.equal(r405.status, 405);
  await r405.body?.cancel();
  const r400 = await handleHttp(req("/internal/plugins/Pool!/restart"), n);
  assert.equal(r400.status, 400);
  await r400.body?.cancel();
  const r503 = await handleHttp(
    req("/internal/plugins/pool/restart"),
    () => null,
  );
  assert.equal(r503.status, 503);
  await r503.body?.cancel();
  const other = await handleHttp(req("/internal/plugins/pool/stop"), n);
  assert.equal(other.status, 404);
  await other.body?.cancel();
  assert.deepEqual(seen, []);
});
