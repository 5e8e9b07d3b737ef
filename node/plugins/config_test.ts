/** The plugins file: defaults, overrides, refusals — and the default commands really start. */
import assert from "node:assert/strict";
import { defaultPlugins, parsePluginsConfig } from "./config.ts";
import { PluginSupervisor } from "./supervisor.ts";
import { tempDir } from "../../plugins/test_util.ts";

Deno.test("plugins config: no file → the reference workspace and pool", () => {
  const ps = parsePluginsConfig(null);
  assert.deepEqual(ps.map((p) => [p.spec.name, p.spec.kind]), [
    ["workspace", "workspace"],
    ["pool", "pool"],
  ]);
  assert.equal(ps[0].ready_timeout_ms, 10_000);
  assert.ok(ps[1].spec.argv.includes("--allow-net=unix:{socket}"));
  assert.ok(ps[1].spec.argv.at(-1)!.endsWith("/plugins/pool_local.ts"));
});

Deno.test("plugins config: overrides, extra kinds, explicit none", () => {
  const ps = parsePluginsConfig({
    path: "plugins.yaml",
    text: `
pool:
  argv: [deno, run, plugins/pool_local.ts]
  env: { BOI_POOL_MODE: noop }
  ready_timeout_s: 2
hooks:
  name: audit-log
  argv: [deno, run, plugins/hooks_jsonl.ts]
  tier: audit
workspace: null
`,
  });
  assert.deepEqual(ps.map((p) => p.spec.name), ["pool", "audit-log"]);
  assert.deepEqual(ps[0].spec.env, { BOI_POOL_MODE: "noop" });
  assert.equal(ps[0].ready_timeout_ms, 2000);
  assert.equal(ps[1].tier, "audit");
});

Deno.test("plugins config: one-line errors name the file and field", () => {
  const bad = (text: string) => () =>
    parsePluginsConfig({ path: "plugins.yaml", text });
  assert.throws(bad("scheduler: { argv: [x] }"), /^Error: plugins\.yaml: /);
  assert.throws(bad("pool: { argv: [] }"), /plugins\.yaml: pool\.argv: /);
  assert.throws(
    bad("hooks: { name: pool, argv: [x] }"),
    /hooks\.name: pool is used twice/,
  );
  assert.throws(bad("pool: [unclosed"), /plugins\.yaml: invalid YAML/);
});

Deno.test("plugins config: the default commands start under the supervisor", async () => {
  const dir = await tempDir("boi-cfg-");
  try {
    for (const p of defaultPlugins()) {
      const sup = new PluginSupervisor({
        plugin: p.spec,
        node_id: "n1",
        data_dir: dir,
        ready_timeout_ms: 5000,
        log: { log() {} },
      });
      const st = await sup.start();
      await sup.stop();
      assert.equal(st.state, "ready", `${p.spec.name}: ${st.reason}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
