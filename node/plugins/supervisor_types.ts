/**
 * The supervisor's vocabulary: plugin states, the status it reports, what to
 * run and the options of a supervisor (SPEC §7).
 * @module
 */
import type { PluginKind } from "../../proto/mod.ts";

/**
 * Where a plugin is in its life:
 * - `starting` — spawned, waiting for `BOI_READY` and the handshake;
 * - `ready` — serving and healthy;
 * - `start_failed` — no `BOI_READY` in time, exited early, or the handshake
 *   failed; counted as a crash and retried;
 * - `crashed` — exited unexpectedly; restarted after `restart_delay_ms`;
 * - `unhealthy` — `health_failures` probes failed in a row; killed and restarted;
 * - `refused` — speaks another protocol major; not restarted until `restart()`;
 * - `unstable` — the crash budget is spent; not restarted until `restart()`
 *   or the window passes;
 * - `stopping`, `stopped` — by `stop()`.
 */
export type PluginState =
  | "starting"
  | "ready"
  | "start_failed"
  | "crashed"
  | "unhealthy"
  | "refused"
  | "unstable"
  | "stopping"
  | "stopped";

/** Everything the node may want to publish about a plugin. */
export interface PluginStatus {
  /** Configured name, e.g. `pool`. */
  name: string;
  kind: PluginKind;
  state: PluginState;
  /**
   * Why the plugin is in this state, e.g. `ready_timeout`,
   * `proto_version_mismatch: plugin 2.0, core 1.0`, `exited: code 1`.
   */
  reason: string | null;
  /** Incarnation number of the current (or last) process. */
  incarnation: number;
  /** Pid of the current process, null when none runs. */
  pid: number | null;
  /** Crash times (ms since epoch) inside the window, oldest first. */
  crashes: number[];
  /** From the last successful handshake. */
  plugin_name: string | null;
  plugin_version: string | null;
  proto_major: number | null;
  proto_minor: number | null;
  capabilities: string[];
  /** e.g. a newer protocol minor than core's. */
  warnings: string[];
  /** When the state was entered (ms since epoch). */
  since: number;
}

/** Log sink; node/shell/log.ts's Logger fits. */
export interface SupervisorLog {
  log(
    level: "debug" | "info" | "warn" | "error",
    msg: string,
    fields?: Record<string, unknown>,
  ): void;
}

/** Unix socket paths are limited to 107 bytes on Linux (108 with the NUL). */
export const MAX_SOCKET_PATH = 107;

/** Which plugin to run. */
export interface PluginSpec {
  /** Unique per node; names the socket and data dir, e.g. `pool`. */
  name: string;
  kind: PluginKind;
  /**
   * The command. `{socket}`, `{data_dir}` (the plugin's own), `{node_id}`,
   * `{name}` and `{kind}` are replaced, so narrow permissions can name the
   * socket: `--allow-net=unix:{socket}`. Empty when attached.
   */
  argv: string[];
  /**
   * Attach mode: the absolute path of a socket a plugin started by someone
   * else serves (a sidecar). No spawn, no stdin lifeline; handshake, health
   * and reconnect as for a spawned plugin, under the same crash budget.
   * @default none: core spawns `argv`
   */
  socket?: string;
  /** Extra environment (same placeholders). */
  env?: Record<string, string>;
  /** Working directory. @default the node's */
  cwd?: string;
}

/** Options of {@linkcode PluginSupervisor}. */
export interface PluginSupervisorOptions {
  plugin: PluginSpec;
  node_id: string;
  /** The node's data dir: the socket is `<data_dir>/plugins/<name>.sock` (unless attached). */
  data_dir: string;
  /** Sent in the handshake. @default "dev" */
  core_version?: string;
  /** @default 10000 */
  ready_timeout_ms?: number;
  /** @default 5000 */
  handshake_timeout_ms?: number;
  /** @default 10000 */
  health_interval_ms?: number;
  /** Deadline of one probe. @default 5000 (at most `health_interval_ms`) */
  health_timeout_ms?: number;
  /** Failed probes in a row that make it unhealthy. @default 3 */
  health_failures?: number;
  /** Crashes tolerated inside the window; one more makes it unstable. @default 3 */
  crash_budget?: number;
  /** @default 300000 (5 minutes) */
  crash_window_ms?: number;
  /** Pause between a crash and the restart. @default 1000 */
  restart_delay_ms?: number;
  /** SIGTERM (and stdin closed), then SIGKILL after this long. @default 5000 */
  shutdown_grace_ms?: number;
  /** Crash list to start from, e.g. read from etcd. @default [] */
  crashes?: number[];
  /** Number of the first incarnation. @default 1 */
  incarnation?: number;
  /**
   * Environment variables passed through from the node; everything else
   * (etcd endpoints, tokens) stays out.
   * @default PATH, HOME, USER, LANG, LC_ALL, TZ, TMPDIR, DENO_DIR, XDG_CACHE_HOME, NO_COLOR, BOI_LOG_LEVEL
   */
  inherit_env?: string[];
  /** Called with the whole list whenever a crash is added or the list is reset. */
  onCrash?: (crashes: number[]) => void | Promise<void>;
  /** Called on every state change. */
  onState?: (status: PluginStatus) => void | Promise<void>;
  /** @default JSON lines on stderr */
  log?: SupervisorLog;
}

/** Thrown by {@linkcode PluginSupervisor.connection} when the plugin cannot take calls. */
export class PluginUnavailableError extends Error {
  constructor(readonly plugin: string, readonly state: PluginState) {
    super(`plugin ${plugin} is ${state}`);
    this.name = "PluginUnavailableError";
  }
}

/** How a stop went: `forced` if SIGKILL was needed. */
export interface StopResult {
  forced: boolean;
  code: number | null;
  signal: string | null;
}

/** Variables a plugin inherits from the node unless `inherit_env` says otherwise. */
export const DEFAULT_INHERIT_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "NO_COLOR",
  "BOI_LOG_LEVEL",
];
