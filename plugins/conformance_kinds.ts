/**
 * The conformance checks of each plugin kind's RPCs (plugins/conformance.ts
 * runs them once per transport), and the small check runner they report to.
 * @module
 */
import type { PluginKind } from "../proto/mod.ts";
import { CODECS } from "../node/exec/grpc_codec.ts";
import type { PluginConnection } from "../node/exec/grpc_client.ts";
import { specCacheChecks } from "./conformance_spec_cache.ts";
import type {
  RouteCandidate,
  SpawnRequest,
  WorkerEvent,
} from "../node/plugins/contracts.ts";

/** One check's verdict. */
export interface ConformanceCheck {
  name: string;
  ok: boolean;
  /** What was seen, or why it failed. */
  detail: string;
}

/** Collects verdicts; each check runs with a deadline. */
export class Checks {
  readonly list: ConformanceCheck[] = [];
  /** Appended to every name (which transport a round runs over). */
  suffix = "";
  constructor(private readonly timeoutMs: number) {}

  add(name: string, ok: boolean, detail: string): boolean {
    this.list.push({ name: name + this.suffix, ok, detail });
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

/** Fails the running check with `msg` unless `cond` holds. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/** `tag` makes a round's ids its own (a replayed Spawn key would re-attach). */
export type KindChecks = (
  conn: PluginConnection,
  checks: Checks,
  dataDir: string,
  tag: string,
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

/** Every RPC of each kind. */
export const KIND_CHECKS: Record<PluginKind, KindChecks> = {
  async workspace(conn, checks, _dataDir, tag) {
    const ids = { spec_id: "conformance", task_id: `conformance.t1${tag}` };
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
    await specCacheChecks(conn, checks, tag);
  },

  async pool(conn, checks, dataDir, tag) {
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
        task_id: req.task_id + tag,
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
      await conn.unary(CODECS.pool.kill, {
        ...key,
        task_id: key.task_id + tag,
        grace_ms: 0,
      });
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
