/**
 * One plugin process (SPEC §7): spawned with a cleared environment and a pipe
 * on stdin (the lifeline), announced by the line `BOI_READY` on stdout, and
 * ended by SIGTERM, a grace, then SIGKILL of its process group.
 * @module
 */
import type { PluginKind } from "../../proto/mod.ts";
import {
  DEFAULT_INHERIT_ENV,
  type PluginSpec,
  type StopResult,
  type SupervisorLog,
} from "./supervisor_types.ts";

/**
 * What the supervisor talks to: a process it spawned, or a socket someone
 * else serves (attach mode). Its promises never reject.
 */
export interface PluginEndpoint {
  /** Incarnation number. */
  readonly n: number;
  /** Pid of the process; null when attached. */
  readonly pid: number | null;
  /** Resolves with null once the plugin serves (BOI_READY), or with why it cannot. */
  readonly ready: Promise<string | null>;
  /** Resolves with how the process ended, e.g. `code 1`; attached: never. */
  readonly ended: Promise<string>;
  readonly hasEnded: boolean;
  /** Ends it: SIGTERM (or stdin EOF only), grace, SIGKILL; at once with `kill`. */
  terminate(options: TerminateOptions): Promise<StopResult>;
  /** Extra words for a ready timeout, e.g. what was waited for. */
  readonly readyDetail?: string;
  /** Checked before each health probe: why it is gone though no exit was seen. */
  gone?(): Promise<string | null>;
  /** Whether a failed probe means it is gone rather than sick. */
  lost?(error: Error): boolean;
}

/** How to end an endpoint. */
export interface TerminateOptions {
  /** SIGKILL at once. @default false */
  kill?: boolean;
  /** `stdin`: only close stdin (the EOF check). @default "sigterm" */
  via?: "sigterm" | "stdin";
  grace_ms: number;
}

/** What a spawn needs to know. */
export interface SpawnOptions {
  spec: PluginSpec;
  kind: PluginKind;
  n: number;
  node_id: string;
  socket: string;
  plugin_data_dir: string;
  /** `BOI_PLUGIN_ID`. */
  plugin_id: string;
  inherit_env?: readonly string[];
  log: SupervisorLog;
}

/** A spawned plugin process; see {@linkcode spawnPlugin}. */
export class PluginProcess implements PluginEndpoint {
  readonly ready: Promise<string | null>;
  readonly ended: Promise<string>;
  #hasEnded = false;
  readonly #exited: Promise<Deno.CommandStatus>;
  readonly #drained: Promise<unknown>;
  readonly #fields: Record<string, unknown>;

  constructor(
    readonly n: number,
    readonly child: Deno.ChildProcess,
    readonly socket: string,
    readonly log: SupervisorLog,
    fields: Record<string, unknown>,
  ) {
    this.#fields = fields;
    this.#exited = child.status.then((s) => {
      this.#hasEnded = true;
      return s;
    });
    this.ended = this.#exited.then(describeExit);
    const ready = Promise.withResolvers<string | null>();
    this.ready = ready.promise;
    let announced = false;
    this.#drained = Promise.all([
      forEachLine(child.stdout, (line) => {
        if (!announced && line === "BOI_READY") {
          announced = true;
          ready.resolve(null);
        } else {
          log.log("debug", "plugin stdout", { ...fields, line });
        }
      }),
      forEachLine(child.stderr, (line) => relayPluginLog(log, line, fields)),
    ]);
  }

  get pid(): number {
    return this.child.pid;
  }

  get hasEnded(): boolean {
    return this.#hasEnded;
  }

  async terminate(options: TerminateOptions): Promise<StopResult> {
    let forced = false;
    if (!this.#hasEnded) {
      await this.child.stdin.close().catch(() => {});
      if (options.kill) {
        killOne(this.pid);
        forced = true;
      } else {
        if ((options.via ?? "sigterm") === "sigterm") {
          try {
            Deno.kill(this.pid, "SIGTERM");
          } catch {
            // already gone
          }
        }
        const t = timer(options.grace_ms);
        const r = await Promise.race([this.#exited, t.promise]);
        t.clear();
        if (r === "timer") {
          this.log.log(
            "warn",
            "plugin ignored shutdown: SIGKILL",
            this.#fields,
          );
          killOne(this.pid);
          forced = true;
        }
      }
    } else {
      await this.child.stdin.close().catch(() => {});
    }
    const s = await this.#exited;
    // Helpers it left in its group go with it, after a moment to end on
    // their own: the pool's spawner, seeing its stdin close, kills the
    // tasks' groups (each its own session, out of reach of this group's
    // SIGKILL) and removes its state file. Killed at once, it left them
    // running until a next incarnation reaped them, if one ever came.
    await settleGroup(this.pid, GROUP_SETTLE_MS);
    await this.#drained;
    await removeStaleSocket(this.socket);
    return { forced, code: s.signal ? null : s.code, signal: s.signal };
  }
}

/** Fills the placeholders of a command or env value. */
function filler(o: SpawnOptions): (s: string) => string {
  return (s) =>
    s.replaceAll("{socket}", o.socket)
      .replaceAll("{data_dir}", o.plugin_data_dir)
      .replaceAll("{node_id}", o.node_id)
      .replaceAll("{name}", o.spec.name)
      .replaceAll("{kind}", o.kind);
}

/**
 * Starts one incarnation: cleared env plus the BOI_PLUGIN_* variables, stdin
 * piped (closed when the node dies, so the plugin exits), its own process group.
 */
export function spawnPlugin(o: SpawnOptions): PluginProcess {
  const fill = filler(o);
  // No colours in logs we parse (Deno's own warnings included).
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of o.inherit_env ?? DEFAULT_INHERIT_ENV) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  for (const [k, v] of Object.entries(o.spec.env ?? {})) env[k] = fill(v);
  Object.assign(env, {
    BOI_PLUGIN_ID: o.plugin_id,
    BOI_PLUGIN_SOCKET: o.socket,
    BOI_PLUGIN_KIND: o.kind,
    BOI_PLUGIN_DATA_DIR: o.plugin_data_dir,
  });
  const argv = (o.spec.argv ?? []).map(fill);
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: o.spec.cwd,
    env,
    clearEnv: true,
    stdin: "piped", // the lifeline: closed when we die, the plugin exits
    stdout: "piped",
    stderr: "piped",
    // Its own process group: terminal signals do not reach it, and a kill
    // of the group takes its helpers too.
    detached: true,
  }).spawn();
  const fields = { plugin: o.spec.name, incarnation: o.n };
  o.log.log("info", "plugin spawned", { ...fields, pid: child.pid });
  return new PluginProcess(o.n, child, o.socket, o.log, fields);
}

/** Re-emits a plugin's stderr line: its JSON fields kept, non-JSON as `line`. */
function relayPluginLog(
  log: SupervisorLog,
  line: string,
  fields: Record<string, unknown>,
): void {
  if (line.trim() === "") return;
  try {
    const o = JSON.parse(line);
    if (o && typeof o === "object" && !Array.isArray(o)) {
      const { level, msg, ts: _ts, ...rest } = o as Record<string, unknown>;
      const lv = level === "debug" || level === "warn" || level === "error"
        ? level
        : "info";
      log.log(lv, String(msg ?? "plugin log"), { ...rest, ...fields });
      return;
    }
  } catch {
    // not JSON
  }
  log.log("info", "plugin stderr", { ...fields, line });
}

/** A cancellable timer that resolves `"timer"`. */
export function timer(
  ms: number,
): { promise: Promise<"timer">; clear(): void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<"timer">((resolve) => {
    id = setTimeout(() => resolve("timer"), Math.max(0, ms));
  });
  return { promise, clear: () => clearTimeout(id) };
}

function describeExit(s: Deno.CommandStatus): string {
  return s.signal ? `signal ${s.signal}` : `code ${s.code}`;
}

/** How long helpers left in a plugin's group get to end on their own. */
const GROUP_SETTLE_MS = 1000;

/** SIGKILLs the plugin process alone (its helpers get to clean up: settleGroup). */
function killOne(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // ESRCH: already gone
  }
}

/** Waits up to `ms` for the group to empty, then SIGKILLs what is left. */
async function settleGroup(pgid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      Deno.kill(-pgid, "SIGCONT"); // a probe: harmless, and wakes a frozen helper
    } catch {
      return; // ESRCH: nobody left in the group
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  killGroup(pgid, "SIGKILL");
}

function killGroup(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(-pid, sig);
  } catch {
    // ESRCH: the group is gone
  }
}

/** Removes a socket file left behind; anything else at that path is left alone. */
export async function removeStaleSocket(path: string): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (info.isSocket) await Deno.remove(path);
  } catch {
    // absent
  }
}

/** Calls `fn` per line of `stream` (trailing CR dropped) until it ends. */
async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  fn: (line: string) => void,
): Promise<void> {
  let buf = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        fn(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    }
  } catch {
    // the pipe broke: the process is gone
  }
  if (buf !== "") fn(buf.replace(/\r$/, ""));
}
