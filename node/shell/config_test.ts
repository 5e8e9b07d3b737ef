import assert from "node:assert/strict";
import { detectArch, detectOs, loadConfig } from "./config.ts";

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

Deno.test("config: BOI_HTTP_HOSTS is a list of names, or *", () => {
  assert.deepEqual(loadConfig({}, null, "h").http_hosts, []);
  assert.deepEqual(
    loadConfig({ BOI_HTTP_HOSTS: " boi.example.com , build-1 " }, null, "h")
      .http_hosts,
    ["boi.example.com", "build-1"],
  );
  assert.deepEqual(
    loadConfig({ BOI_HTTP_HOSTS: "*" }, null, "h").http_hosts,
    ["*"],
  );
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
    [
      { BOI_HTTP_HOSTS: "boi.example.com,http://x" },
      /^BOI_HTTP_HOSTS must be a comma-separated list of host names, like "boi\.example\.com,build-1", or "\*": got "http:\/\/x"$/,
    ],
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
    /boi\.yaml:2:1: invalid YAML: deficient indentation/,
  );
});

Deno.test("config: join and etcd TLS settings (issue 13)", () => {
  const d = loadConfig({}, null, "h");
  assert.equal(d.join_host, "127.0.0.1");
  assert.equal(d.join_port, 7400);
  assert.equal(d.join_token, null);
  assert.equal(d.bootstrap_url, null);
  assert.equal(d.etcd_tls, null);
  const c = loadConfig(
    {
      BOI_JOIN_TOKEN: "a.b.c",
      BOI_BOOTSTRAP_URL: "https://localhost:7400",
      BOI_JOIN_ADDR: "0.0.0.0:7500",
      BOI_ETCD_CA: "/c/ca.crt",
      BOI_ETCD_CERT: "/c/client.crt",
      BOI_ETCD_KEY: "/c/client.key",
    },
    null,
    "h",
  );
  assert.equal(c.join_token, "a.b.c");
  assert.equal(c.bootstrap_url, "https://localhost:7400");
  assert.deepEqual([c.join_host, c.join_port], ["0.0.0.0", 7500]);
  assert.deepEqual(c.etcd_tls, {
    ca: "/c/ca.crt",
    cert: "/c/client.crt",
    key: "/c/client.key",
  });
  assert.throws(
    () => loadConfig({ BOI_ETCD_CA: "/c/ca.crt" }, null, "h"),
    /BOI_ETCD_CA, BOI_ETCD_CERT and BOI_ETCD_KEY must be given together/,
  );
  assert.throws(
    () => loadConfig({ BOI_JOIN_ADDR: "7400" }, null, "h"),
    /^Error: BOI_JOIN_ADDR must be host:port like "127.0.0.1:7400": got "7400"$/,
  );
  assert.throws(
    () => loadConfig({ BOI_CAPS: "cluster_admin=true" }, null, "h"),
    /cluster_admin is never self-declared/,
  );
});

Deno.test("config: provisioning settings (SPEC §10), defaults and one-line errors", () => {
  const d = loadConfig({}, null, "h");
  assert.equal(d.provision_deadline_ms, 60_000);
  assert.equal(d.provision_cooldown_ms, 300_000);
  assert.equal(d.provision_failure_limit, 3);
  assert.equal(d.provision_req_ttl_s, 300);
  const c = loadConfig(
    {
      BOI_PROVISION_DEADLINE_MS: "1500",
      BOI_PROVISION_COOLDOWN_MS: "12000",
      BOI_PROVISION_FAILURE_LIMIT: "2",
      BOI_PROVISION_REQ_TTL_S: "4",
    },
    null,
    "h",
  );
  assert.equal(c.provision_deadline_ms, 1500);
  assert.equal(c.provision_cooldown_ms, 12_000);
  assert.equal(c.provision_failure_limit, 2);
  assert.equal(c.provision_req_ttl_s, 4);
  assert.throws(
    () => loadConfig({ BOI_PROVISION_REQ_TTL_S: "1" }, null, "h"),
    /^Error: BOI_PROVISION_REQ_TTL_S must be at least 2: got "1"$/,
  );
});

Deno.test("config: SPEC §2 os and arch are detected: BOI_CAPS naming other values is refused, not silently overridden; region given twice must agree", async (t) => {
  const os = detectOs(), arch = detectArch();
  const otherOs = os === "linux" ? "darwin" : "linux";
  const otherArch = arch === "x86_64" ? "arm64" : "x86_64";
  await t.step("a different os or arch", () => {
    for (
      const [caps, re] of [
        [
          `os=${otherOs}`,
          new RegExp(`^BOI_CAPS: os is detected .*${os}.*: got "${otherOs}"$`),
        ],
        [
          `arch=${otherArch}`,
          new RegExp(
            `^BOI_CAPS: arch is detected .*${arch}.*: got "${otherArch}"$`,
          ),
        ],
      ] as const
    ) {
      assert.throws(
        () => loadConfig({ BOI_CAPS: caps }, null, "h"),
        (e: Error) => {
          assert.match(e.message, re);
          return true;
        },
      );
    }
  });
  await t.step("the detected values are accepted", () => {
    const c = loadConfig({ BOI_CAPS: `os=${os},arch=${arch}` }, null, "h");
    assert.equal(c.static_caps.os, os);
    assert.equal(c.static_caps.arch, arch);
  });
  await t.step("region in BOI_CAPS and BOI_REGION", () => {
    assert.throws(
      () => loadConfig({ BOI_CAPS: "region=a", BOI_REGION: "b" }, null, "h"),
      { message: 'BOI_CAPS: region is also set by BOI_REGION ("b"): got "a"' },
    );
    const same = loadConfig(
      { BOI_CAPS: "region=a", BOI_REGION: "a" },
      null,
      "h",
    );
    assert.equal(same.static_caps.region, "a");
    assert.equal(
      loadConfig({ BOI_CAPS: "region=a" }, null, "h").static_caps.region,
      "a",
    );
  });
});
