import assert from "node:assert/strict";
import { localProvisioner } from "./provisioner_local.ts";
import { type CallContext, PluginError, PluginLogger } from "./sdk/mod.ts";

const log = new PluginLogger({}, "error");
const ctx: CallContext = {
  corr_id: "t",
  rpc: "Allocate",
  log,
  signal: new AbortController().signal,
};

/** A stand-in "node": writes its environment to <data dir>/env.json, then waits to be stopped. */
const FAKE_NODE = [
  Deno.execPath(),
  "eval",
  `Deno.writeTextFileSync(Deno.env.get("BOI_DATA_DIR") + "/env.json", JSON.stringify(Deno.env.toObject()));
   setInterval(() => {}, 1000);`,
];

const req = {
  request_id: "abc123def456-1",
  hint: {
    os: Deno.build.os,
    "x-test-pool": "mac",
    region: "eu-1",
  },
  join_token: "a.b.c",
  bootstrap_url: "https://127.0.0.1:7400",
  deadline_ms: 60_000,
};

Deno.test("Allocate starts a node with the hint as caps, the token, its own data dir and port; Deallocate stops it and removes the dir", async () => {
  const root = await Deno.makeTempDir({ prefix: "boi-prov-local-" });
  const prov = localProvisioner({
    argv: FAKE_NODE,
    node_env: { BOI_KEY_PREFIX: "/t/" },
    root,
    log,
  });
  try {
    const { allocation_id } = await prov.allocate(req, ctx);
    assert.equal(allocation_id, "local-abc123def456-1");
    assert.deepEqual(
      await prov.allocate(req, ctx),
      { allocation_id },
      "a retried Allocate is the same allocation",
    );
    const dir = `${root}/p-abc123def456-1`;
    let env: Record<string, string> | null = null;
    for (let i = 0; i < 200 && env === null; i++) {
      try {
        env = JSON.parse(await Deno.readTextFile(`${dir}/env.json`));
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.ok(env, "the node started");
    assert.equal(env.BOI_CAPS, "x-test-pool=mac");
    assert.equal(env.BOI_REGION, "eu-1");
    assert.equal(env.BOI_JOIN_TOKEN, "a.b.c");
    assert.equal(env.BOI_BOOTSTRAP_URL, "https://127.0.0.1:7400");
    assert.equal(env.BOI_NODE_ID, "p-abc123def456-1");
    assert.equal(env.BOI_DATA_DIR, dir);
    assert.equal(env.BOI_HTTP_ADDR, "127.0.0.1:0");
    assert.equal(env.BOI_KEY_PREFIX, "/t/");
    assert.deepEqual(
      Object.keys(env).filter((k) => k.startsWith("BOI_ETCD")),
      [],
      "no etcd settings",
    );
    await prov.deallocate({ allocation_id }, ctx);
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
    await prov.deallocate({ allocation_id }, ctx); // unknown now: nothing to do
  } finally {
    await prov.stopAll();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a hint this machine cannot meet is refused; etcd settings for the nodes are refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "boi-prov-local-" });
  try {
    const prov = localProvisioner({ argv: FAKE_NODE, root, log });
    const other = Deno.build.os === "linux" ? "darwin" : "linux";
    await assert.rejects(
      async () => await prov.allocate({ ...req, hint: { os: other } }, ctx),
      (e: unknown) =>
        e instanceof PluginError && e.code === "FAILED_PRECONDITION" &&
        e.message ===
          `this machine has os=${Deno.build.os}; the hint asks for os=${other}`,
    );
    assert.throws(
      () =>
        localProvisioner({
          root,
          log,
          node_env: { BOI_ETCD_ENDPOINTS: "http://127.0.0.1:2379" },
        }),
      /BOI_PROVISION_NODE_ENV: BOI_ETCD_ENDPOINTS is not for config/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
