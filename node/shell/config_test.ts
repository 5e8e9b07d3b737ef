import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";

Deno.test("config: defaults of SPEC §13", () => {
  const c = loadConfig({}, null, "Build-Host.example.com");
  assert.equal(c.node_id, "build-host");
  assert.equal(c.etcd_endpoints, null);
  assert.equal(c.http_host, "127.0.0.1");
  assert.equal(c.http_port, 7001);
  assert.equal(c.data_dir, ".boi/build-host");
  assert.equal(c.lease_ttl_s, 10);
  assert.equal(c.workers_max, 4);
  assert.equal(c.key_prefix, "/boi/");
  assert.ok(["linux", "darwin", "windows"].includes(c.static_caps.os));
  assert.ok(["x86_64", "arm64"].includes(c.static_caps.arch));
});

Deno.test("config: environment over boi.yaml", () => {
  const c = loadConfig(
    {
      BOI_NODE_ID: "node-a",
      BOI_CAPS: "x-test-gpu=yes",
      BOI_ETCD_ENDPOINTS: "127.0.0.1:2379",
    },
    {
      path: "boi.yaml",
      text: "node_id: node-z\nworkers_max: 7\nregion: eu-1\n",
    },
    "h",
  );
  assert.equal(c.node_id, "node-a");
  assert.equal(c.workers_max, 7);
  assert.deepEqual(c.etcd_endpoints, ["http://127.0.0.1:2379"]);
  assert.equal(c.static_caps["x-test-gpu"], "yes");
  assert.equal(c.static_caps.region, "eu-1");
});

Deno.test("config: bad values are one-line errors naming the variable and the value", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ BOI_LEASE_TTL_S: "1" }, /^BOI_LEASE_TTL_S .*: got "1"$/],
    [{ BOI_WORKERS_MAX: "many" }, /^BOI_WORKERS_MAX .*: got "many"$/],
    [{ BOI_NODE_ID: "Node A" }, /^BOI_NODE_ID .*: got "Node A"$/],
    [{ BOI_HTTP_ADDR: "7001" }, /^BOI_HTTP_ADDR must be host:port/],
    [{ BOI_ETCD_ENDPOINTS: "http://x" }, /must name a port/],
    [{ BOI_CAPS: "gpu=1" }, /BOI_CAPS/],
    [{ BOI_CAPS: "cluster_admin=true" }, /cluster_admin/],
    [{ BOI_LOG_LEVEL: "loud" }, /^BOI_LOG_LEVEL /],
    [{ BOI_KEY_PREFIX: "noslash" }, /^BOI_KEY_PREFIX must start and end/],
    [{ BOI_KEY_PREFIX: "/boi" }, /^BOI_KEY_PREFIX .*: got "\/boi"$/],
    [{ BOI_REGION: "é".repeat(129) }, /^BOI_REGION must be at most 256 bytes/],
    [{ BOI_WORKERS_MAX: "0" }, /^BOI_WORKERS_MAX must be at least 1: got "0"$/],
    [{ BOI_WORKERS_MAX: "2.5" }, /^BOI_WORKERS_MAX must be a whole number/],
    [{ BOI_WORKERS_MAX: "1025" }, /^BOI_WORKERS_MAX must be at most 1024/],
    [{ BOI_NODE_ID: "" }, /^BOI_NODE_ID must not be empty/],
  ];
  for (const [env, re] of cases) {
    assert.throws(() => loadConfig(env, null, "h"), (e: Error) => {
      assert.match(e.message, re, JSON.stringify(env));
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
  }
  assert.equal(
    loadConfig({ BOI_WORKERS_MAX: "1024" }, null, "h").workers_max,
    1024,
  );
  assert.equal(
    loadConfig({ BOI_REGION: "r".repeat(256) }, null, "h").static_caps.region,
    "r".repeat(256),
  );
  assert.throws(
    () => loadConfig({}, { path: "boi.yaml", text: "workers_max: 0\n" }, "h"),
    /boi.yaml: workers_max must be at least 1: got 0$/,
  );
  assert.throws(
    () => loadConfig({}, { path: "boi.yaml", text: "nodeid: x\n" }, "h"),
    /boi.yaml: .*nodeid/,
  );
  assert.throws(
    () => loadConfig({}, { path: "boi.yaml", text: "a: [\n" }, "h"),
    /boi.yaml: invalid YAML/,
  );
});
