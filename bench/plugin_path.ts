/**
 * The plugin call path alone: core's clients (GrpcWorkspace, GrpcPool over
 * the Mux stream) against the real workspace_dir and noop pool plugins, no
 * etcd and no node, so a change to the transport shows in CPU per task
 * without the control plane's noise. Each task is Prepare, Spawn, Cleanup;
 * `--spawn-only` makes it one Spawn. Prints CPU ms per task of this process
 * (core's side) and of each plugin, user time separately (the workspace's
 * system time is mkdir/rmdir, this machine's file system).
 *
 * Run: `deno run -A bench/plugin_path.ts [tasks=3000] [concurrency=16] [--spawn-only]`
 * @module
 */
import {
  CORE_CAPABILITIES,
  PluginConnection,
} from "../node/exec/grpc_client.ts";
import { GrpcPool } from "../node/exec/grpc_pool.ts";
import { GrpcWorkspace } from "../node/exec/grpc_workspace.ts";
import type { SpawnRequest } from "../node/exec/contracts.ts";
import { type PluginKind, PROTO_MAJOR, PROTO_MINOR } from "../proto/mod.ts";
import {
  pluginArgv,
  PluginProcess,
  POOL_ENV,
  tempDir,
} from "../plugins/test_util.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const TASKS = Number(args[0] ?? 3000);
const CONCURRENCY = Number(args[1] ?? 16);
const SPAWN_ONLY = Deno.args.includes("--spawn-only");

/** [user, system] CPU ms of `pid` so far. */
function cpu(pid: number | "self"): [number, number] {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]
    .split(" ");
  return [Number(f[11]) * 10, Number(f[12]) * 10]; // USER_HZ 100
}

async function start(
  kind: PluginKind,
  script: string,
  extra: string[],
  env: Record<string, string>,
) {
  const dir = await tempDir("boi-plugin-path-");
  const socket = `${dir}/p.sock`;
  const p = new PluginProcess(
    pluginArgv(script, [
      ...extra,
      `--allow-read=${dir}`,
      `--allow-write=${dir}`,
    ], { socket }),
    {
      BOI_PLUGIN_SOCKET: socket,
      BOI_PLUGIN_ID: `${kind}-1`,
      BOI_PLUGIN_KIND: kind,
      BOI_PLUGIN_DATA_DIR: dir,
      BOI_LOG_LEVEL: "info",
      ...env,
    },
  );
  await p.ready();
  const conn = new PluginConnection(kind, socket);
  await conn.handshake({
    core_version: "bench",
    proto_major: PROTO_MAJOR,
    proto_minor: PROTO_MINOR,
    capabilities: [...CORE_CAPABILITIES],
  });
  return { p, conn, dir, pid: p.child.pid };
}

const ws = await start("workspace", "workspace_dir.ts", [], {});
const pool = await start("pool", "pool_local.ts", ["--allow-run", POOL_ENV], {
  BOI_POOL_MODE: "noop",
});
const workspace = new GrpcWorkspace({ connection: ws.conn });
const pooled = new GrpcPool({ connection: pool.conn });
const specYaml = "name: s\ntasks:\n" +
  Array.from({ length: 20 }, (_, i) => `  - id: t${i}\n    run: [true]\n`)
    .join("");

let next = 0;
async function worker(): Promise<void> {
  while (next < TASKS) {
    const task_id = `s.t${next++}`;
    const spawn = async (workdir: string) => {
      const req: SpawnRequest = {
        task_id,
        claim_token: "1",
        workdir,
        argv: ["true"],
        shell: null,
        prompt: null,
        env: { BOI_TASK_ID: task_id },
        timeout_ms: null,
      };
      for await (const _ of pooled.spawn(req)) { /* started, exit */ }
    };
    if (SPAWN_ONLY) {
      await spawn(ws.dir);
      continue;
    }
    const { workdir } = await workspace.prepare({
      spec_id: "s",
      task_id,
      spec_yaml: specYaml,
      hints: {},
    });
    await spawn(workdir);
    await workspace.cleanup({ spec_id: "s", task_id, workdir });
  }
}

const run = () => {
  next = 0;
  return Promise.all(Array.from({ length: CONCURRENCY }, worker));
};
await run(); // warm-up: first-call code generation, JIT
const c0 = [cpu("self"), cpu(ws.pid), cpu(pool.pid)];
const t0 = performance.now();
await run();
const seconds = (performance.now() - t0) / 1000;
const c1 = [cpu("self"), cpu(ws.pid), cpu(pool.pid)];
const per = (i: number, k: 0 | 1 | null) =>
  +((k === null
    ? c1[i][0] + c1[i][1] - c0[i][0] - c0[i][1]
    : c1[i][k] - c0[i][k]) / TASKS).toFixed(3);
console.log(JSON.stringify({
  tasks: TASKS,
  concurrency: CONCURRENCY,
  spawn_only: SPAWN_ONLY,
  loadavg: Deno.loadavg()[0],
  tasks_per_s: Math.round(TASKS / seconds),
  core_ms: per(0, null),
  workspace_ms: per(1, null),
  workspace_user_ms: per(1, 0),
  pool_ms: per(2, null),
  pool_user_ms: per(2, 0),
}));
for (const x of [ws, pool]) {
  x.conn.close();
  await x.p.closeStdin().catch(() => {});
  await Deno.remove(x.dir, { recursive: true }).catch(() => {});
}
