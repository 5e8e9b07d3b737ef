/**
 * Plugin conformance checks (SPEC §7, `boi plugin test <command...>`): start
 * any plugin command under the real supervisor and check its lifecycle
 * (BOI_READY, Handshake, Health, exit on stdin EOF and on SIGTERM) and every
 * RPC of its kind, including Pool's double-Spawn idempotency.
 * @module
 */
import { type PluginKind, PROTO_MAJOR } from "../proto/mod.ts";
import { CODECS } from "../node/exec/grpc_codec.ts";
import type { PluginConnection } from "../node/exec/grpc_client.ts";
import type {
  RouteCandidate,
  SpawnRequest,
  WorkerEvent,
} from "../node/plugins/contracts.ts";
import {
  DEFAULT_INHERIT_ENV,
  PluginSupervisor,
  type SupervisorLog,
} from "../node/plugins/supervisor.ts";

/** One check's verdict. */
export interface ConformanceCheck {
  name: string;
  ok: boolean;
  /** What was seen, or why it failed. */
  detail: string;
}

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

class Checks {
  readonly list: ConformanceCheck[] = [];
  constructor(private readonly timeoutMs: number) {}

  add(name: string, ok: boolean, detail: string): boolean {
    this.list.push({ name, ok, detail });
    return ok;
  }

  /** Runs `fn` with a deadline; its return value is the detail, a throw the failure. */
  async run(name: string, fn: () => Promise<string>): Promise<boolean> {
    let id: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      id = setTimeout(
        () => reject(new Error(`no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return this.add(name, true, await Promise.race([fn(), late]));
    } catch (e) {
      return this.add(name, false, (e as Error).message);
    } finally {
      clearTimeout(id);
    }
  }
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
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
    inherit_env: [
      ...DEFAULT_INHERIT_ENV,
      ...Object.keys(Deno.env.toObject()).filter((k) =>
        k.startsWith("BOI_") && !SECRET_ENV.has(k)
      ),
    ],
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
  await checks.run("lifecycle: health", async () => {
    const h = await conn.health();
    assert(h.ok, `Health answered ok: false (${h.detail})`);
    return h.detail;
  });

  await KIND_CHECKS[kind](conn, checks, dataDir);

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

type KindChecks = (
  conn: PluginConnection,
  checks: Checks,
  dataDir: string,
) => Promise<void>;

const decoder = new TextDecoder();

/** Collects a Spawn stream; `onStarted` fires at the `started` event. */
async function collect(
  stream: AsyncIterable<WorkerEvent>,
  onStarted?: () => void,
): Promise<WorkerEvent[]> {
  const events: WorkerEvent[] = [];
  for await (const ev of stream) {
    events.push(ev);
    if ("started" in ev) onStarted?.();
  }
  return events;
}

function summary(events: WorkerEvent[]) {
  const started = events.filter((e) => "started" in e) as {
    started: { pid: number };
  }[];
  const exits = events.filter((e) => "exit" in e) as {
    exit: { code: number | null; signal: string | null; error: string | null };
  }[];
  const stdout = events.map((e) =>
    "stdout" in e ? decoder.decode(e.stdout) : ""
  )
    .join("");
  const last = events.at(-1);
  return {
    pids: started.map((s) => s.started.pid),
    exits: exits.map((e) => e.exit),
    stdout,
    endsWithExit: last !== undefined && "exit" in last,
  };
}

const KIND_CHECKS: Record<PluginKind, KindChecks> = {
  async workspace(conn, checks) {
    const ids = { spec_id: "conformance", task_id: "conformance.t1" };
    let workdir = "";
    const prepared = await checks.run("workspace: Prepare", async () => {
      const r = await conn.unary(CODECS.workspace.prepare, {
        ...ids,
        spec_yaml: "name: conformance\n",
        hints: {},
      });
      workdir = r.workdir;
      assert(workdir.startsWith("/"), `workdir not absolute: "${workdir}"`);
      assert(
        (await Deno.stat(workdir)).isDirectory,
        `${workdir} is not a directory`,
      );
      await Deno.writeTextFile(`${workdir}/leftover`, "x");
      return workdir;
    });
    if (!prepared) return;
    await checks.run(
      "workspace: Prepare again gives a fresh directory",
      async () => {
        const r = await conn.unary(CODECS.workspace.prepare, {
          ...ids,
          spec_yaml: "",
          hints: {},
        });
        workdir = r.workdir;
        const left = await Deno.stat(`${workdir}/leftover`).then(
          () => true,
          () => false,
        );
        assert(!left, `the previous attempt's files are still in ${workdir}`);
        return workdir;
      },
    );
    await checks.run("workspace: Cleanup", async () => {
      await conn.unary(CODECS.workspace.cleanup, { ...ids, workdir });
      const still = await Deno.stat(workdir).then(() => true, () => false);
      assert(!still, `${workdir} still exists after Cleanup`);
      return `${workdir} removed`;
    });
  },

  async pool(conn, checks, dataDir) {
    const workdir = `${dataDir}/conformance-work`;
    await Deno.mkdir(workdir, { recursive: true });
    const spawn = (
      req: Partial<SpawnRequest> & { task_id: string; claim_token: string },
    ) =>
      conn.stream(CODECS.pool.spawn, {
        workdir,
        argv: null,
        shell: null,
        prompt: null,
        env: {},
        timeout_ms: null,
        ...req,
      });

    await checks.run(
      "pool: double Spawn runs one worker, both streams see its output",
      async () => {
        const key = { task_id: "conformance.double", claim_token: "1" };
        const script = 'echo "worker $$"; sleep 0.5; echo done';
        const first = Promise.withResolvers<void>();
        const a = collect(
          spawn({ ...key, argv: ["sh", "-c", script] }),
          () => first.resolve(),
        );
        await Promise.race([first.promise, a]);
        const b = collect(spawn({ ...key, argv: ["sh", "-c", script] }));
        // Both may fail (a plugin crashing on the second Spawn cuts both
        // streams): while `a` is awaited, `b`'s failure must not go unhandled.
        for (const p of [a, b]) p.catch(() => {});
        const [sa, sb] = [summary(await a), summary(await b)];
        for (const [n, s] of [["first", sa], ["second", sb]] as const) {
          assert(
            s.pids.length === 1,
            `${n} stream: ${s.pids.length} started events`,
          );
          assert(
            s.exits.length === 1 && s.endsWithExit,
            `${n} stream: does not end with one exit`,
          );
          assert(
            s.exits[0].code === 0,
            `${n} stream: exit ${JSON.stringify(s.exits[0])}`,
          );
        }
        assert(
          sa.pids[0] === sb.pids[0],
          `two workers: pids ${sa.pids[0]} and ${sb.pids[0]}`,
        );
        const want = `worker ${sa.pids[0]}\ndone\n`;
        assert(
          sa.stdout === want,
          `first stream stdout ${JSON.stringify(sa.stdout)}`,
        );
        assert(
          sb.stdout === want,
          `second stream stdout ${
            JSON.stringify(sb.stdout)
          } (the replay must include output from before it attached)`,
        );
        return `one worker (pid ${
          sa.pids[0]
        }), both streams saw all its output`;
      },
    );

    await checks.run("pool: exit code, env and workdir", async () => {
      const s = summary(
        await collect(spawn({
          task_id: "conformance.exit",
          claim_token: "1",
          shell: 'printf "%s|%s" "$BOI_CONFORMANCE" "$(pwd)"; exit 3',
          env: { BOI_CONFORMANCE: "yes" },
        })),
      );
      assert(s.exits[0]?.code === 3, `exit ${JSON.stringify(s.exits[0])}`);
      const real = await Deno.realPath(workdir);
      assert(
        s.stdout === `yes|${real}` || s.stdout === `yes|${workdir}`,
        `stdout ${JSON.stringify(s.stdout)}, wanted "yes|${workdir}"`,
      );
      return "code 3, env and cwd passed";
    });

    await checks.run("pool: Kill ends the worker", async () => {
      const key = { task_id: "conformance.kill", claim_token: "1" };
      const first = Promise.withResolvers<void>();
      const events = collect(
        spawn({ ...key, argv: ["sleep", "30"] }),
        () => first.resolve(),
      );
      await Promise.race([first.promise, events]);
      const t0 = Date.now();
      await conn.unary(CODECS.pool.kill, { ...key, grace_ms: 0 });
      const s = summary(await events);
      const exit = s.exits[0];
      assert(exit && exit.code !== 0, `exit ${JSON.stringify(exit)}`);
      return `ended ${Date.now() - t0} ms after Kill (${
        exit.signal ?? `code ${exit.code}`
      })`;
    });

    await checks.run("pool: timeout is enforced", async () => {
      const t0 = Date.now();
      const s = summary(
        await collect(spawn({
          task_id: "conformance.timeout",
          claim_token: "1",
          argv: ["sleep", "30"],
          timeout_ms: 300,
        })),
      );
      const exit = s.exits[0];
      assert(exit && exit.code !== 0, `exit ${JSON.stringify(exit)}`);
      assert(exit.error, "exit carries no error for the timeout");
      return `ended after ${Date.now() - t0} ms: ${exit.error}`;
    });
  },

  async router(conn, checks) {
    await checks.run("router: Route", async () => {
      const candidates: RouteCandidate[] = [
        { node_id: "conf-a", caps: { os: "linux", gpu: "1" } },
        { node_id: "conf-b", caps: { os: "linux" } },
      ];
      const r = await conn.unary(CODECS.router.route, {
        task_id: "conformance.route",
        requires: { os: "linux" },
        candidates,
      });
      const ids = new Set(candidates.map((c) => c.node_id));
      const strangers = r.preferred_node_ids.filter((id) => !ids.has(id));
      assert(
        strangers.length === 0,
        `prefers nodes that are not candidates: ${strangers.join(", ")}`,
      );
      return `requires ${JSON.stringify(r.requires)}, preferred [${
        r.preferred_node_ids.join(", ")
      }]`;
    });
  },

  async provisioner(conn, checks) {
    let id = "";
    const ok = await checks.run("provisioner: Allocate", async () => {
      const r = await conn.unary(CODECS.provisioner.allocate, {
        request_id: "conformance-1",
        hint: { os: "linux" },
        join_token: "conformance-token",
        bootstrap_url: "https://localhost:1/v1/join",
        deadline_ms: 1000,
      });
      id = r.allocation_id;
      assert(id !== "", "empty allocation_id");
      return id;
    });
    if (!ok) return;
    await checks.run("provisioner: Deallocate", async () => {
      await conn.unary(CODECS.provisioner.deallocate, { allocation_id: id });
      return `${id} released`;
    });
  },

  async hooks(conn, checks) {
    const ev = (seq: number) => ({
      seq,
      emitter_node_id: "conformance",
      kind: "task.completed",
      ts: 1_700_000_000_000 + seq,
      payload_json: JSON.stringify({ task_id: "conformance.t1" }),
      dedup_key: `conformance-${seq}`,
      tier: "audit" as const,
    });
    await checks.run("hooks: OnEvent acks each seq", async () => {
      for (const seq of [1, 2, 3]) {
        const r = await conn.unary(CODECS.hooks.onEvent, ev(seq));
        assert(r.acked_seq === seq, `seq ${seq} acked as ${r.acked_seq}`);
      }
      return "seq 1, 2, 3 acked";
    });
    await checks.run("hooks: a replayed event is acked again", async () => {
      const r = await conn.unary(CODECS.hooks.onEvent, ev(2));
      assert(r.acked_seq === 2, `replayed seq 2 acked as ${r.acked_seq}`);
      return "seq 2 acked twice";
    });
  },
};
