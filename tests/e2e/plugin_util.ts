/** Helpers of the plugin end-to-end tests: plugin commands, BOI_PLUGINS files, plugin records. */
import assert from "node:assert/strict";
import { stringifyYaml } from "../../node/yaml.ts";
import {
  type HasClient,
  makeTempDir,
  type NodeProc,
  notYet,
  REPO_ROOT,
  waitFor,
} from "../harness/mod.ts";
import { Keys } from "../../node/keys.ts";
import { PluginRecord } from "../../node/plugins/plugin_record.ts";

export { PluginRecord };

export const POOL_FLAGS = [
  "--allow-run",
  "--allow-env=BOI_*,GRPC_*,PATH,HOME,LANG,LC_ALL,TMPDIR,TZ,USER,SHELL",
];

/** The command of a plugin script under plugins/ (mock or reference). */
export function pluginArgv(script: string, extra: string[] = []): string[] {
  return [
    Deno.execPath(),
    "run",
    "-q",
    "-P=plugin",
    "--allow-net=unix:{socket}",
    ...extra,
    `${REPO_ROOT}/plugins/${script}`,
  ];
}

/** Writes a BOI_PLUGINS file; returns its path. */
export async function pluginsFile(
  doc: Record<string, unknown>,
): Promise<string> {
  const dir = await makeTempDir("boi-plugins-");
  const path = `${dir}/plugins.yaml`;
  await Deno.writeTextFile(path, stringifyYaml(doc));
  return path;
}

export async function readPlugin(
  etcd: HasClient,
  nodeId: string,
  name: string,
): Promise<PluginRecord | null> {
  const res = await etcd.client().get(new Keys().plugin(nodeId, name))
    .string();
  return res === null ? null : PluginRecord.parse(JSON.parse(res));
}

export async function waitPlugin(
  etcd: HasClient,
  nodeId: string,
  name: string,
  ok: (r: PluginRecord) => boolean,
  timeoutMs = 15_000,
): Promise<PluginRecord> {
  return await waitFor(`plugin record ${nodeId}/${name}`, async () => {
    const r = await readPlugin(etcd, nodeId, name);
    return r !== null && ok(r) ? r : notYet(r);
  }, { timeoutMs, intervalMs: 50 });
}

/** The newest `plugin spawned` log line of `name`: pid and incarnation. */
export function spawned(
  n: NodeProc,
  name: string,
): { pid: number; incarnation: number } | null {
  const l = n.logs().filter((l) =>
    l.msg === "plugin spawned" && l.plugin === name
  ).at(-1);
  return l ? { pid: Number(l.pid), incarnation: Number(l.incarnation) } : null;
}

/** Waits for the `plugin ready` line of an incarnation after `after`; returns its pid. */
export async function readyIncarnation(
  n: NodeProc,
  name: string,
  after: number,
): Promise<number> {
  await n.waitForLog(
    (l) =>
      l.msg === "plugin ready" && l.plugin === name &&
      Number(l.incarnation) > after,
    15_000,
  );
  const s = spawned(n, name)!;
  assert.ok(s.incarnation > after);
  return s.pid;
}
