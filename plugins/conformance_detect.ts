/**
 * Which kind a plugin command serves, for `boi plugin test <command...>`
 * without `--kind` (SPEC §7 names the command with only the plugin's command
 * line). The command is started once with `BOI_PLUGIN_KIND` empty; after
 * `BOI_READY` each kind's `Handshake` is tried on its socket, and the one
 * service that answers is the kind. A plugin that needs `BOI_PLUGIN_KIND`
 * to know what to serve (the mock) exits first: the caller then asks for
 * `--kind`.
 * @module
 */
import { PLUGIN_KINDS, type PluginKind, PROTO_MAJOR } from "../proto/mod.ts";
import { PROTO_MINOR } from "../proto/mod.ts";
import { PluginConnection } from "../node/exec/grpc_client.ts";
import { PluginCallError } from "../node/exec/plugin_call_error.ts";
import {
  PluginProcess,
  removeStaleSocket,
  timer,
} from "../node/plugins/plugin_process.ts";
import { conformanceInheritEnv } from "./conformance.ts";

/** gRPC's status for a service the server does not have. */
const UNIMPLEMENTED = 12;

/** The caller's variables a plugin under test sees (as in runConformance). */
function inherited(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of conformanceInheritEnv()) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** The kind found, or why none was. */
export type DetectedKind =
  | { kind: PluginKind }
  | { kind: null; reason: string };

/** Options of {@linkcode detectPluginKind}. */
export interface DetectOptions {
  /** @default 10000 */
  ready_timeout_ms?: number;
  /** The plugin's environment (cleared otherwise, as under the supervisor). @default {} */
  env?: Record<string, string>;
  /** @default the caller's */
  cwd?: string;
}

/**
 * Starts `argv` once and finds the kind whose Handshake it answers; never
 * throws for a misbehaving command (the reason says what it did).
 */
export async function detectPluginKind(
  argv: string[],
  options: DetectOptions = {},
): Promise<DetectedKind> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "boi-kind-" });
  const socket = `${dir}/detect.sock`;
  const fill = (s: string) =>
    s.replaceAll("{socket}", socket).replaceAll("{data_dir}", dir)
      .replaceAll("{node_id}", "conformance").replaceAll("{name}", "detect")
      .replaceAll("{kind}", "");
  let ep: PluginProcess;
  const lastLog: string[] = [];
  try {
    const child = new Deno.Command(fill(argv[0]), {
      args: argv.slice(1).map(fill),
      cwd: options.cwd,
      env: {
        NO_COLOR: "1",
        ...inherited(),
        ...options.env,
        BOI_PLUGIN_ID: "detect-conformance-0",
        BOI_PLUGIN_SOCKET: socket,
        BOI_PLUGIN_KIND: "",
        BOI_PLUGIN_DATA_DIR: dir,
      },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
    ep = new PluginProcess(0, child, socket, {
      log(_level, msg, fields) {
        // The last lines it logged say why, should it exit while probed.
        const detail = fields?.line ?? fields?.err ?? fields?.error ??
          fields?.reason;
        lastLog.push(detail === undefined ? msg : `${msg}: ${detail}`);
        if (lastLog.length > 12) lastLog.shift();
      },
    }, {});
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return { kind: null, reason: `cannot start it: ${(e as Error).message}` };
  }
  try {
    const limit = options.ready_timeout_ms ?? 10_000;
    const t = timer(limit);
    const r = await Promise.race([
      ep.ready.then((why) => ({ why })),
      ep.ended.then((how) => ({ how })),
      t.promise,
    ]);
    t.clear();
    if (r === "timer") {
      return { kind: null, reason: `no BOI_READY within ${limit} ms` };
    }
    if ("how" in r) {
      return {
        kind: null,
        reason:
          `it exited before BOI_READY (${r.how}) when started with BOI_PLUGIN_KIND empty`,
      };
    }
    if (r.why !== null) return { kind: null, reason: r.why };
    const exited = async () =>
      `; it exited meanwhile (${await ep.ended}${
        lastLog.length ? `; its last log: ${lastLog.join(" | ")}` : ""
      })`;
    const answered: PluginKind[] = [];
    const refused: string[] = [];
    for (const kind of PLUGIN_KINDS) {
      if (ep.hasEnded) break; // no use waiting 10 s per kind on a dead one
      const why = await probe(kind, socket);
      if (why === null) answered.push(kind);
      else refused.push(`${kind}: ${why}`);
    }
    if (answered.length === 1) return { kind: answered[0] };
    return {
      kind: null,
      reason: answered.length === 0
        ? `no kind's Handshake answered (${refused.join("; ")})${
          ep.hasEnded ? await exited() : ""
        }`
        : `it answers Handshake as ${answered.join(" and ")}`,
    };
  } finally {
    await ep.terminate({ grace_ms: 2000 }).catch(() => {});
    await removeStaleSocket(socket).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Null when `kind`'s Handshake answers, else why not. Each probe is its own
 * channel; one that is not this kind's service answers UNIMPLEMENTED at once.
 * Any other failure (a connection that failed fast on a loaded machine: a
 * call without wait-for-ready fails on the first refused connect) is tried
 * once more after waiting for the connection.
 */
async function probe(kind: PluginKind, socket: string): Promise<string | null> {
  let why = "";
  for (let attempt = 1; attempt <= 2; attempt++) {
    const conn = new PluginConnection(kind, socket);
    try {
      await conn.waitForReady(5000);
      await conn.handshake({
        core_version: "conformance",
        proto_major: PROTO_MAJOR,
        proto_minor: PROTO_MINOR,
        capabilities: [],
      }, { timeout_ms: 5000, corr_id: `detect.${kind}` });
      return null;
    } catch (e) {
      why = (e as Error).message.split("\n")[0];
      if (e instanceof PluginCallError && e.code === UNIMPLEMENTED) return why;
    } finally {
      conn.close();
    }
  }
  return why;
}
