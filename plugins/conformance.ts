/**
 * Plugin conformance checks (SPEC §7, `boi plugin test <command...>`): start
 * any plugin command under the real supervisor and check its lifecycle
 * (BOI_READY, Handshake, Health, exit on stdin EOF and on SIGTERM) and every
 * RPC of its kind, including Pool's double-Spawn idempotency — over every
 * transport the plugin speaks: the Mux stream when it announces `mux`
 * (proto minor 1), and always the plain RPCs.
 * @module
 */
import { type PluginKind, PROTO_MAJOR } from "../proto/mod.ts";
import {
  assert,
  Checks,
  type ConformanceCheck,
  KIND_CHECKS,
} from "./conformance_kinds.ts";
import {
  DEFAULT_INHERIT_ENV,
  PluginSupervisor,
  type SupervisorLog,
} from "../node/plugins/supervisor.ts";

export type { ConformanceCheck };

/** All checks; `ok` when every one passed. */
export interface ConformanceResult {
  ok: boolean;
  checks: ConformanceCheck[];
}

/** Options of {@linkcode runConformance}. */
export interface ConformanceOptions {
  /** @default 10000 */
  ready_timeout_ms?: number;
  /** Deadline of each check. @default 10000 */
  check_timeout_ms?: number;
  /** How long the plugin may take to exit on stdin EOF or SIGTERM. @default 5000 */
  shutdown_grace_ms?: number;
  /** Extra environment for the plugin. @default {} */
  env?: Record<string, string>;
  /**
   * Data dir for the run (socket, plugin data); removed afterwards when made here.
   * @default a fresh directory under /tmp (where the `plugin` permission set may write)
   */
  data_dir?: string;
  /** Working directory of the plugin command. @default the caller's */
  cwd?: string;
  /** Receives the supervisor's and the plugin's log lines. @default discarded */
  log?: SupervisorLog;
}

/** Node secrets a plugin under test must not inherit. */
const SECRET_ENV = new Set([
  "BOI_ETCD_ENDPOINTS",
  "BOI_JOIN_TOKEN",
  "BOI_BOOTSTRAP_URL",
  "BOI_KEY_PREFIX",
]);

/** What a plugin under test inherits: the supervisor's defaults and the caller's `BOI_*`, minus node secrets. */
export function conformanceInheritEnv(): string[] {
  return [
    ...DEFAULT_INHERIT_ENV,
    ...Object.keys(Deno.env.toObject()).filter((k) =>
      k.startsWith("BOI_") && !SECRET_ENV.has(k)
    ),
  ];
}

/**
 * Runs the conformance checks against the plugin started by `argv` as `kind`.
 * Never throws for a misbehaving plugin: every problem is a failed check.
 */
export async function runConformance(
  argv: string[],
  kind: PluginKind,
  options: ConformanceOptions = {},
): Promise<ConformanceResult> {
  const ownDir = options.data_dir === undefined;
  const dataDir = options.data_dir ??
    await Deno.makeTempDir({ dir: "/tmp", prefix: "boi-conf-" });
  const checks = new Checks(options.check_timeout_ms ?? 10_000);
  const sup = new PluginSupervisor({
    plugin: { name: kind, kind, argv, env: options.env, cwd: options.cwd },
    node_id: "conformance",
    data_dir: dataDir,
    core_version: "conformance",
    ready_timeout_ms: options.ready_timeout_ms ?? 10_000,
    // Checks probe health themselves; a crash must fail them, not be hidden by a restart.
    health_interval_ms: 3_600_000,
    crash_budget: 0,
    shutdown_grace_ms: options.shutdown_grace_ms ?? 5000,
    inherit_env: conformanceInheritEnv(),
    log: options.log ?? { log() {} },
  });
  try {
    await lifecycleAndCalls(sup, kind, checks, dataDir);
  } finally {
    await sup.stop().catch(() => {});
    if (ownDir) {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  }
  return { ok: checks.list.every((c) => c.ok), checks: checks.list };
}

async function lifecycleAndCalls(
  sup: PluginSupervisor,
  kind: PluginKind,
  checks: Checks,
  dataDir: string,
): Promise<void> {
  const started = Date.now();
  const st = await sup.start();
  const readyOk = st.state === "ready" || st.state === "refused";
  checks.add(
    "lifecycle: prints BOI_READY",
    readyOk,
    readyOk
      ? `after ${Date.now() - started} ms`
      : `${st.state}: ${st.reason ?? ""}`.trim(),
  );
  if (!readyOk) return;
  const hsOk = st.state === "ready" && st.proto_major === PROTO_MAJOR &&
    !!st.plugin_name && !!st.plugin_version;
  checks.add(
    "lifecycle: handshake",
    hsOk,
    st.state === "refused"
      ? st.reason ?? "refused"
      : `${st.plugin_name || "(no name)"} ${
        st.plugin_version || "(no version)"
      }, proto ${st.proto_major}.${st.proto_minor}, capabilities [${
        st.capabilities.join(", ")
      }]`,
  );
  if (!hsOk) return;
  const conn = await sup.connection();
  // First over what core negotiated; a plugin speaking `mux` must still
  // answer plain RPCs (a 1.0 core calls it so), so it gets a second round.
  const rounds = conn.transport === "mux" ? ["mux", "unary"] : ["unary"];
  for (const transport of rounds) {
    if (transport === "unary" && conn.transport === "mux") {
      conn.useUnary();
      checks.suffix = " (plain RPCs)";
    }
    await checks.run("lifecycle: health", async () => {
      const h = await conn.health();
      assert(h.ok, `Health answered ok: false (${h.detail})`);
      return `${h.detail} (transport ${conn.transport})`;
    });
    await KIND_CHECKS[kind](conn, checks, dataDir, checks.suffix ? "-u" : "");
  }
  checks.suffix = "";

  // Still alive after all that? A dead plugin fails the probe at once.
  await checks.run("lifecycle: no crash during the checks", async () => {
    const before = sup.status;
    assert(before.state === "ready", `${before.state}: ${before.reason}`);
    const h = await conn.health();
    const s = sup.status;
    assert(h.ok && s.state === "ready", `${s.state}: ${s.reason}`);
    assert(s.incarnation === st.incarnation, `restarted: ${s.reason}`);
    return `incarnation ${s.incarnation} still serving`;
  });

  const byStdin = await sup.stop({ via: "stdin" });
  checks.add(
    "lifecycle: exits when stdin closes",
    byStdin !== null && !byStdin.forced && byStdin.code === 0,
    byStdin === null
      ? "was not running"
      : byStdin.forced
      ? "still running after the grace period: SIGKILLed"
      : `exited with ${byStdin.signal ?? `code ${byStdin.code}`}`,
  );

  const again = await sup.restart();
  if (again.state !== "ready") {
    checks.add(
      "lifecycle: exits on SIGTERM",
      false,
      `could not start it again: ${again.state} ${again.reason ?? ""}`,
    );
    return;
  }
  const byTerm = await sup.stop({ via: "sigterm" });
  checks.add(
    "lifecycle: exits on SIGTERM",
    byTerm !== null && !byTerm.forced && byTerm.code === 0,
    byTerm === null
      ? "was not running"
      : byTerm.forced
      ? "still running after the grace period: SIGKILLed"
      : `exited with ${byTerm.signal ?? `code ${byTerm.code}`}`,
  );
}
