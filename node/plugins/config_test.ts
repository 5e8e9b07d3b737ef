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
router: null
`,
  });
  assert.deepEqual(ps.map((p) => p.spec.name), [
    "workspace",
    "pool",
    "audit-log",
  ]);
  assert.deepEqual(ps[1].spec.env, { BOI_POOL_MODE: "noop" });
  assert.equal(ps[1].ready_timeout_ms, 2000);
  assert.equal(ps[2].tier, "audit");
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
  assert.throws(
    bad("pool: [unclosed"),
    /plugins\.yaml:1:16: invalid YAML: unexpected end/,
  );
});

Deno.test("plugins config: an entry names exactly one of argv or socket (attach mode)", () => {
  const ps = parsePluginsConfig({
    path: "p.yaml",
    text: "hooks: { socket: /run/boi/hooks.sock, health_interval_s: 2 }",
  });
  const hooks = ps.find((p) => p.spec.kind === "hooks")!;
  assert.equal(hooks.spec.socket, "/run/boi/hooks.sock");
  assert.deepEqual(hooks.spec.argv, []);
  assert.equal(hooks.health_interval_ms, 2000);
  const bad = (text: string) => () =>
    parsePluginsConfig({ path: "p.yaml", text });
  assert.throws(
    bad("hooks: { socket: /s.sock, argv: [x] }"),
    /^Error: p\.yaml: hooks: needs exactly one of argv .* or socket .*: got \{"socket":"\/s\.sock","argv":\["x"\]\}$/,
  );
  assert.throws(
    bad("hooks: { tier: audit }"),
    /^Error: p\.yaml: hooks: needs exactly one of argv/,
  );
  assert.throws(
    bad("hooks: { socket: rel.sock }"),
    /^Error: p\.yaml: hooks\.socket: must be an absolute path: got "rel\.sock"$/,
  );
  assert.throws(
    bad("hooks: { socket: /s.sock, env: { A: b } }"),
    /^Error: p\.yaml: hooks\.env: applies to a command only/,
  );
});

Deno.test("plugins config: workspace and pool cannot be null; every error line names file, field and value", () => {
  const bad = (text: string) => () =>
    parsePluginsConfig({ path: "p.yaml", text });
  assert.throws(
    bad("pool: null"),
    /^Error: p\.yaml: pool: the node needs a pool plugin \(leave the entry out for the reference one\): got null$/,
  );
  assert.throws(bad("workspace: null"), /p\.yaml: workspace: the node needs/);
  assert.throws(
    bad("pool: { argv: [x], ready_timeout_s: ten }"),
    /^Error: p\.yaml: pool\.ready_timeout_s: .*: got "ten"$/,
  );
  assert.throws(
    bad("pool: { argv: [x], colour: red }"),
    /^Error: p\.yaml: pool\.colour: unknown field$/,
  );
  assert.throws(
    bad("- pool"),
    /^Error: p\.yaml: must be a map of plugin kinds/,
  );
  assert.throws(bad("pool: 7"), /^Error: p\.yaml: pool: .*: got 7$/);
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
