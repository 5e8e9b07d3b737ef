/**
 * The mock plugin: serves whichever kind `BOI_PLUGIN_KIND` names, with faults
 * chosen by env, for tests (SPEC §7, §14). Without faults it behaves like the
 * reference plugins (pool and workspace reuse their logic).
 *
 * Faults:
 * - `BOI_MOCK_CRASH_AFTER=N` — answer N calls (Handshake and Health count),
 *   then exit 1 when the next one arrives.
 * - `BOI_MOCK_HANG=1` — never answer any call but Handshake;
 *   `BOI_MOCK_HANG=Handshake,Health` — never answer those.
 * - `BOI_MOCK_SLOW_ACK_MS=ms` — delay every call but Handshake and Health.
 * - `BOI_MOCK_NO_READY=1` — serve, but never print `BOI_READY`.
 * - `BOI_MOCK_DIAL=host:port` — try a TCP connection at start and log whether
 *   Deno allowed it (it must not: plugins never reach etcd).
 * - `BOI_MOCK_PROTO_MAJOR=2`, `BOI_MOCK_PROTO_MINOR=n` — handshake with that
 *   version; `BOI_MOCK_PROTO_MINOR=0` makes it a 1.0 plugin: no `mux`
 *   capability and no Mux RPC, so core calls it with plain RPCs.
 * - `BOI_MOCK_UNHEALTHY=1` — Health answers `ok: false`.
 * - `BOI_MOCK_IGNORE_STDIN=1`, `BOI_MOCK_IGNORE_SIGTERM=1` — do not exit on those.
 * - `BOI_MOCK_PROVISION_NEVER_JOINS=1` — Allocate says yes and starts nothing.
 * - `BOI_MOCK_PROVISION_LOSE_ANSWERS=N` — the first N Allocate calls allocate,
 *   then never answer (the caller gives up): a lost answer.
 *
 * Other settings: `BOI_MOCK_RECORD=<file>` appends `{ts, rpc, corr_id}` per
 * call; `BOI_MOCK_ROUTE_PREFER=node-b,node-c` is the router's preference for
 * every task (none by default); `BOI_MOCK_PROVISION_ARGV=<JSON array>` is the command Allocate starts
 * (with `BOI_JOIN_TOKEN`, `BOI_BOOTSTRAP_URL`, `BOI_CAPS` from the hint);
 * `BOI_POOL_MODE=noop` as for pool_local.
 *
 * Run: `deno run -P=plugin --allow-net=unix:<socket> plugins/mock.ts`; as a
 * pool (or a provisioner that starts nodes) add `--allow-run` and
 * `--allow-env=BOI_*,GRPC_*,PATH,HOME,LANG,LC_ALL,TMPDIR,TZ,USER,SHELL`.
 * @module
 */
import { isPluginKind, type PluginKind, PROTO_MINOR } from "../proto/mod.ts";
import type {
  CallContext,
  PluginHandlers,
  PluginLogger,
  PluginServer,
  Provisioner,
  ServePluginOptions,
} from "./sdk/mod.ts";
import { pluginEnv, pluginLogger, servePlugin } from "./sdk/mod.ts";
import { dirWorkspaceHandlers } from "./workspace_dir.ts";
import { localPoolPlugin, poolModeFromEnv } from "./pool_local.ts";

/** The faults and settings read from `BOI_MOCK_*`. */
export interface MockFaults {
  crash_after: number | null;
  hang: Set<string>;
  slow_ack_ms: number;
  no_ready: boolean;
  proto_major: number | null;
  proto_minor: number | null;
  unhealthy: boolean;
  ignore_stdin: boolean;
  ignore_sigterm: boolean;
  provision_never_joins: boolean;
  provision_argv: string[] | null;
  provision_lose_answers: number;
  record: string | null;
  /** The router's `preferred_node_ids` for every task. */
  route_prefer: string[];
}

const KIND_RPCS: Record<PluginKind, string[]> = {
  workspace: ["Prepare", "Cleanup"],
  pool: ["Spawn", "Kill"],
  router: ["Route"],
  provisioner: ["Allocate", "Deallocate"],
  hooks: ["OnEvent"],
};

/** Parses the `BOI_MOCK_*` variables; throws on a malformed one. */
export function mockFaults(
  kind: PluginKind,
  env: (k: string) => string | undefined,
): MockFaults {
  const int = (k: string): number | null => {
    const v = env(k);
    if (v === undefined || v === "") return null;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(
        `${k} must be a non-negative integer: got ${JSON.stringify(v)}`,
      );
    }
    return n;
  };
  const flag = (k: string) => env(k) === "1" || env(k) === "true";
  const hangRaw = env("BOI_MOCK_HANG") ?? "";
  const hang = hangRaw === "" || hangRaw === "0"
    ? new Set<string>()
    : hangRaw === "1" || hangRaw === "true"
    ? new Set(["Health", ...KIND_RPCS[kind]])
    : new Set(hangRaw.split(",").map((s) => s.trim()));
  const rpcs = ["Handshake", "Health", ...KIND_RPCS[kind]];
  for (const r of hang) {
    if (!rpcs.includes(r)) {
      throw new Error(
        `BOI_MOCK_HANG must be 1 or a list of ${rpcs.join(", ")}: got ${
          JSON.stringify(r)
        }`,
      );
    }
  }
  const argvRaw = env("BOI_MOCK_PROVISION_ARGV");
  let provision_argv: string[] | null = null;
  if (argvRaw) {
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(argvRaw);
    } catch {
      // reported below with the rule
    }
    if (
      !Array.isArray(parsed) || parsed.length === 0 ||
      parsed.some((a) => typeof a !== "string")
    ) {
      throw new Error(
        `BOI_MOCK_PROVISION_ARGV must be a JSON array of strings like ["deno","task","node"]: got ${
          JSON.stringify(argvRaw)
        }`,
      );
    }
    provision_argv = parsed;
  }
  return {
    crash_after: int("BOI_MOCK_CRASH_AFTER"),
    hang,
    slow_ack_ms: int("BOI_MOCK_SLOW_ACK_MS") ?? 0,
    no_ready: flag("BOI_MOCK_NO_READY"),
    proto_major: int("BOI_MOCK_PROTO_MAJOR"),
    proto_minor: int("BOI_MOCK_PROTO_MINOR"),
    unhealthy: flag("BOI_MOCK_UNHEALTHY"),
    ignore_stdin: flag("BOI_MOCK_IGNORE_STDIN"),
    ignore_sigterm: flag("BOI_MOCK_IGNORE_SIGTERM"),
    provision_never_joins: flag("BOI_MOCK_PROVISION_NEVER_JOINS"),
    provision_argv,
    provision_lose_answers: int("BOI_MOCK_PROVISION_LOSE_ANSWERS") ?? 0,
    record: env("BOI_MOCK_RECORD") || null,
    route_prefer: (env("BOI_MOCK_ROUTE_PREFER") ?? "").split(",")
      .filter((id) => id !== ""),
  };
}

/** A provisioner that starts `argv` per allocation (or nothing, if it never joins). */
function mockProvisioner(
  faults: MockFaults,
  log: PluginLogger,
): PluginHandlers<Provisioner> & { stopAll(): Promise<void> } {
  const allocations = new Map<string, Deno.ChildProcess | null>();
  let lost = 0;
  const stop = async (child: Deno.ChildProcess | null) => {
    if (child === null) return;
    try {
      Deno.kill(-child.pid, "SIGTERM");
    } catch {
      // gone
    }
    await child.status;
  };
  return {
    allocate(req, ctx) {
      const id = `mock-${req.request_id}`;
      if (allocations.has(id)) return { allocation_id: id }; // a retried Allocate
      let child: Deno.ChildProcess | null = null;
      if (faults.provision_never_joins) {
        ctx.log.warn("says yes, never joins (BOI_MOCK_PROVISION_NEVER_JOINS)");
      } else if (faults.provision_argv !== null) {
        const [cmd, ...args] = faults.provision_argv;
        child = new Deno.Command(cmd, {
          args,
          env: {
            BOI_JOIN_TOKEN: req.join_token,
            BOI_BOOTSTRAP_URL: req.bootstrap_url,
            BOI_CAPS: Object.entries(req.hint).map(([k, v]) => `${k}=${v}`)
              .join(","),
          },
          stdin: "null",
          detached: true,
        }).spawn();
        ctx.log.info("allocated", { allocation_id: id, pid: child.pid });
      }
      allocations.set(id, child);
      if (lost < faults.provision_lose_answers) {
        lost++;
        ctx.log.warn(
          "allocated; the answer is lost (BOI_MOCK_PROVISION_LOSE_ANSWERS)",
          {
            allocation_id: id,
          },
        );
        return new Promise<never>((_, reject) =>
          ctx.signal.addEventListener(
            "abort",
            () => reject(new Error("answer lost")),
            { once: true },
          )
        );
      }
      return { allocation_id: id };
    },
    async deallocate(req) {
      const child = allocations.get(req.allocation_id);
      allocations.delete(req.allocation_id);
      await stop(child ?? null);
    },
    async stopAll() {
      const all = [...allocations.values()];
      allocations.clear();
      if (all.some((c) => c !== null)) log.info("stopping allocated nodes");
      await Promise.all(all.map(stop));
    },
  };
}

/** Serves the mock as `kind` with `faults`. */
export async function serveMock(
  kind: PluginKind,
  faults: MockFaults,
): Promise<PluginServer> {
  const log = pluginLogger("mock");
  const dataDir = pluginEnv().data_dir;
  let calls = 0;
  let onEventTurn: Promise<unknown> = Promise.resolve();
  const base = {
    name: "mock",
    version: "1.0.0",
    capabilities: ["mock"],
    announce_ready: !faults.no_ready,
    exit_on_stdin_close: !faults.ignore_stdin,
    exit_on_sigterm: !faults.ignore_sigterm,
    proto: {
      major: faults.proto_major ?? 1,
      minor: faults.proto_minor ?? PROTO_MINOR,
    },
    health: () =>
      faults.unhealthy
        ? { ok: false, detail: "BOI_MOCK_UNHEALTHY" }
        : { ok: true, detail: "ok" },
    async intercept(rpc: string, ctx: CallContext) {
      calls++;
      if (faults.record !== null) {
        Deno.writeTextFileSync(
          faults.record,
          JSON.stringify({ ts: Date.now(), rpc, corr_id: ctx.corr_id }) + "\n",
          { append: true },
        );
      }
      if (faults.crash_after !== null && calls > faults.crash_after) {
        ctx.log.error("crashing (BOI_MOCK_CRASH_AFTER)", { calls });
        Deno.exit(1);
      }
      if (faults.hang.has(rpc)) {
        // Never answers; gives up only when the caller does (or on shutdown).
        ctx.log.warn("hanging (BOI_MOCK_HANG)");
        await new Promise<never>((_, reject) =>
          ctx.signal.addEventListener(
            "abort",
            () => reject(new Error("hang ended by the caller")),
            { once: true },
          )
        );
      }
      if (faults.slow_ack_ms > 0 && rpc !== "Handshake" && rpc !== "Health") {
        const wait = () =>
          new Promise((r) => setTimeout(r, faults.slow_ack_ms));
        // A slow sink acks one event at a time, however many core keeps in flight.
        if (rpc === "OnEvent") await (onEventTurn = onEventTurn.then(wait));
        else await wait();
      }
    },
  };
  let options: ServePluginOptions;
  switch (kind) {
    case "workspace":
      options = {
        kind,
        ...base,
        ...dirWorkspaceHandlers(`${dataDir}/mock-work`),
      };
      break;
    case "pool": {
      const pool = localPoolPlugin({ mode: poolModeFromEnv(), log });
      options = {
        kind,
        ...base,
        capabilities: [...base.capabilities, ...pool.capabilities],
        onShutdown: pool.onShutdown,
        ...pool.handlers,
      };
      break;
    }
    case "router":
      options = {
        kind,
        ...base,
        route: (req) => ({
          requires: req.requires,
          preferred_node_ids: faults.route_prefer,
        }),
      };
      break;
    case "provisioner": {
      const prov = mockProvisioner(faults, log);
      options = {
        kind,
        ...base,
        onShutdown: prov.stopAll,
        allocate: prov.allocate,
        deallocate: prov.deallocate,
      };
      break;
    }
    case "hooks":
      options = {
        kind,
        ...base,
        onEvent: (ev) => ({ acked_seq: ev.seq }),
      };
      break;
  }
  return await servePlugin(options);
}

if (import.meta.main) {
  const kind = Deno.env.get("BOI_PLUGIN_KIND") ?? "";
  if (!isPluginKind(kind)) {
    console.error(
      `mock: BOI_PLUGIN_KIND must be one of workspace, pool, router, provisioner, hooks: got ${
        JSON.stringify(kind)
      }`,
    );
    Deno.exit(2);
  }
  const dial = Deno.env.get("BOI_MOCK_DIAL");
  if (dial) await tryDial(dial);
  let faults: MockFaults;
  try {
    faults = mockFaults(kind, (k) => Deno.env.get(k));
  } catch (e) {
    console.error(`mock: ${(e as Error).message}`);
    Deno.exit(2);
  }
  await serveMock(kind, faults);
}

/**
 * `BOI_MOCK_DIAL=host:port`: try to open a TCP connection at start and log
 * the outcome — shows that a plugin's permissions keep it away from etcd.
 */
async function tryDial(target: string): Promise<void> {
  const [hostname, port] = target.split(":");
  try {
    const conn = await Deno.connect({ hostname, port: Number(port) });
    conn.close();
    console.error(
      JSON.stringify({ level: "warn", msg: "mock dial connected", target }),
    );
  } catch (e) {
    console.error(JSON.stringify({
      level: "info",
      msg: "mock dial refused",
      target,
      error: (e as Error).name,
    }));
  }
}
