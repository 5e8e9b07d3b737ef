import assert from "node:assert/strict";
import { loadConfig } from "./shell/config.ts";
import { defaultPlugins } from "./plugins/config.ts";
import { lockFlags, nodeLock } from "./permissions.ts";

const which = (n: string) => `/usr/bin/${n}`;
const resolve = (h: string) => h === "etcd1" ? ["10.0.0.5", "fd00::5"] : [];

Deno.test("permission lock: embedded etcd, own dirs, listeners and the reference plugins", () => {
  const config = loadConfig({ BOI_NODE_ID: "n1" }, null, "h");
  const l = nodeLock({
    config,
    plugins: defaultPlugins(),
    cwd: "/srv/boi",
    configFiles: ["boi.yaml"],
    which,
    endpoints: null,
    bootstrap: null,
    resolve,
  });
  assert.deepEqual(l.read.slice(0, 3), [
    "/srv/boi/.boi/n1",
    "/srv/boi/boi.yaml",
    "/srv/boi/.boi/etcd",
  ]);
  assert.deepEqual(l.write, ["/srv/boi/.boi/n1", "/srv/boi/.boi/etcd"]);
  assert.ok(l.net.includes("127.0.0.1:2379"), l.net.join());
  assert.ok(l.net.includes("127.0.0.1:7001"));
  assert.ok(l.net.includes("127.0.0.1:7400"));
  assert.ok(l.net.includes("unix:/srv/boi/.boi/n1/plugins/pool.sock"));
  assert.deepEqual(l.run, [
    "/usr/bin/etcd",
    Deno.execPath(),
    "/usr/bin/prlimit",
  ]);
  assert.ok(!l.net.some((n) => !n.includes(":")), "no host-wide entry");
});

Deno.test("permission lock: named etcd, TLS files, a pending join and peers", () => {
  const config = loadConfig(
    {
      BOI_NODE_ID: "n2",
      BOI_DATA_DIR: "/var/lib/boi",
      BOI_ETCD_CA: "/etc/boi/ca.crt",
      BOI_ETCD_CERT: "/etc/boi/n2.crt",
      BOI_ETCD_KEY: "/etc/boi/n2.key",
      BOI_PEERS: "10.0.0.7:7001,10.0.0.8,10.0.0.9:80",
      BOI_HTTP_ADDR: "0.0.0.0:7001",
    },
    null,
    "h",
  );
  const l = nodeLock({
    config,
    plugins: [],
    cwd: "/",
    configFiles: [],
    which,
    endpoints: ["https://etcd1:2379"],
    bootstrap: "https://admin.example:7400",
    resolve,
  });
  for (const f of ["/etc/boi/ca.crt", "/etc/boi/n2.crt", "/etc/boi/n2.key"]) {
    assert.ok(l.read.includes(f), f);
  }
  assert.deepEqual(l.write, ["/var/lib/boi"]);
  // A name: the bare name (for the lookup) and each address on the port.
  for (
    const n of [
      "etcd1",
      "10.0.0.5:2379",
      "[fd00::5]:2379",
      "admin.example:7400",
      "0.0.0.0:7001",
      "10.0.0.7:7001",
      "10.0.0.8",
      "10.0.0.9:80",
    ]
  ) assert.ok(l.net.includes(n), `${n} in ${l.net.join()}`);
  assert.ok(!l.net.includes("127.0.0.1:2379"));
  assert.ok(!l.net.includes("admin.example"), "fetch needs host:port only");
  assert.ok(!l.net.includes("10.0.0.9"), "port 80 is kept, not widened");
  assert.deepEqual(l.run, ["/usr/bin/prlimit"]);
  const flags = lockFlags(l);
  assert.equal(flags.length, 4);
  assert.ok(flags[0].startsWith("--allow-read=/var/lib/boi,"));
});

Deno.test("permission lock: a path with a comma is refused, not split", () => {
  assert.throws(
    () => lockFlags({ read: ["/a,b"], write: [], net: [], run: [] }),
    /"\/a,b" holds a comma/,
  );
});

Deno.test("permission lock: BOI_PEERS must be host:port or host", () => {
  assert.throws(
    () => loadConfig({ BOI_PEERS: "10.0.0.7:7001,http://x" }, null, "h"),
    /^Error: BOI_PEERS must be a comma-separated list of host:port or host.*: got "http:\/\/x"$/,
  );
});
