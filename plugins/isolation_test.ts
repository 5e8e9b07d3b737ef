/** SPEC §7: plugins never see etcd. With its configured permissions, a plugin that tries is denied by Deno. */
import assert from "node:assert/strict";
import { referencePluginArgv } from "../node/plugins/config.ts";
import { PluginSupervisor } from "../node/plugins/supervisor.ts";
import { startEtcd, waitFor } from "../tests/harness/mod.ts";

Deno.test("a plugin that dials etcd is denied by its Deno permissions", async () => {
  await using etcd = await startEtcd();
  const target = new URL(etcd.endpoint.split(",")[0]).host;
  const dataDir = await Deno.makeTempDir({ dir: "/tmp", prefix: "boi-iso-" });
  const lines: Record<string, unknown>[] = [];
  const sup = new PluginSupervisor({
    plugin: {
      name: "router",
      kind: "router",
      argv: referencePluginArgv("mock.ts"),
      env: { BOI_MOCK_DIAL: target },
    },
    node_id: "node-a",
    data_dir: dataDir,
    ready_timeout_ms: 20_000,
    log: { log: (_level, msg, fields) => lines.push({ msg, ...fields }) },
  });
  try {
    const status = await sup.start();
    assert.equal(status.state, "ready", JSON.stringify(status));
    const seen = await waitFor(
      "the mock's dial outcome in the plugin log",
      () => lines.find((l) => /mock dial/.test(JSON.stringify(l))),
      { timeoutMs: 10_000 },
    );
    const text = JSON.stringify(seen);
    assert.match(text, /mock dial refused/, text);
    assert.match(text, /NotCapable|PermissionDenied/, text);
  } finally {
    await sup.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
