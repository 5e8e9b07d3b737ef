/**
 * The node's per-key-change path alone, without etcd or plugins (issue 16):
 * one node's view is fed the watch stream of N tasks that the cluster runs —
 * the dispatch (envelopes in chunks of 127, the spec record last), then per
 * task its claim (claim put + CLAIMED envelope), RUNNING, and finish (DONE
 * envelope + claim delete), each transaction one watch event — through the
 * reducer and the handlers exactly as the shell drives them
 * (`applyEvent`, `handle`, `applyEffects`). Every task is owned (by HRW) by
 * another node, which claims it: what a node pays for each task of the
 * cluster that is not its own, most of them on 9 nodes. Prints µs of this
 * process's CPU per change and per task, per member count.
 *
 * Run: `deno run -A bench/core_changes.ts [--tasks 3000] [--rounds 9] [--members 3,9] [--hooks] [--profile] [--against DIR]`
 * (`--profile`: V8's sampling profiler over the timed rounds, through
 * node:inspector; prints the functions by self time, then by total time.
 * `--against DIR`: also the core of another checkout, e.g. a worktree of
 * main, loaded into this process; its rounds alternate with this tree's, so
 * both see the same machine load.)
 * @module
 */
import { Keys } from "../node/keys.ts";
import type { Envelope } from "../node/schema.ts";
import { testEnvelope } from "../node/test_envelope.ts";
import type { KeyChange, NodeEvent } from "../node/core/events.ts";
import { hrwWinner } from "../node/core/hrw.ts";
import type { MutableView } from "../node/core/view.ts";
import process from "node:process";
import { Profiler } from "./core_profile.ts";

const keys = new Keys("/boi/");

/** The parts of one checkout's core the bench drives. */
interface Core {
  label: string;
  applyEvent: typeof import("../node/core/apply.ts").applyEvent;
  applyEffects: typeof import("../node/core/apply.ts").applyEffects;
  handle: typeof import("../node/core/handlers.ts").handle;
  emptyView: typeof import("../node/core/view.ts").emptyView;
  hrwForget: typeof import("../node/core/hrw.ts").hrwForget;
}

async function loadCore(label: string, root: URL): Promise<Core> {
  const at = (p: string) => new URL(p, root).href;
  const apply = await import(at("node/core/apply.ts"));
  const handlers = await import(at("node/core/handlers.ts"));
  const view = await import(at("node/core/view.ts"));
  const hrw = await import(at("node/core/hrw.ts"));
  return {
    label,
    applyEvent: apply.applyEvent,
    applyEffects: apply.applyEffects,
    handle: handlers.handle,
    emptyView: view.emptyView,
    hrwForget: hrw.hrwForget,
  };
}

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const TASKS = Number(arg("tasks", "3000"));
const ROUNDS = Number(arg("rounds", "9"));
const MEMBERS = arg("members", "3,9").split(",").map(Number);
/** As if a hooks plugin took the watched task events. */
const HOOKS = Deno.args.includes("--hooks");
/** Tasks in flight at once: claims, RUNNING writes and finishes interleave in waves. */
const WAVE = 64;
/** Self plus `n - 1` others; self is a member and ranks like any other. */
const nodeIds = (n: number) =>
  Array.from({ length: n }, (_, i) => `node-${String(i).padStart(2, "0")}`);

let rev = 1000;
function put(key: string, value: unknown, lease = "0", create?: number) {
  rev++;
  return {
    key,
    revision: rev,
    kv: {
      value: typeof value === "string" ? value : JSON.stringify(value),
      mod_revision: rev,
      create_revision: create ?? rev,
      lease,
    },
  } satisfies KeyChange;
}
function del(key: string): KeyChange {
  return { key, revision: ++rev, kv: null };
}

/** A registered member view, as node.ts holds it after start-up. */
function memberView(core: Core, self: string, nodes: string[]): MutableView {
  const v = core.emptyView({
    node_id: self,
    workers_max: 128,
    static_caps: { os: "linux", arch: "x86_64" },
    spill_after_ms: 1000,
    spill_step_ms: 100,
    retry_backoff_ms: 1000,
    cancel_grace_ms: 1000,
    claim_failure_window_ms: 300_000,
    claim_failure_limit: 3,
    claim_failure_cooldown_ms: 300_000,
    // As bench/cluster.ts's nodes: no hooks plugin, logs at info.
    watched_task_events: HOOKS,
  });
  run(core, v, {
    type: "lease_granted",
    at: 0,
    lease_id: "7",
    valid_until: 1e15,
  });
  const changes: KeyChange[] = [];
  for (const n of nodes) {
    changes.push(put(keys.node(n), {
      node_id: n,
      addr: "x:1",
      version: "0",
      started_at: 0,
      pid: 1,
    }, n === self ? "7" : `9${n}`));
    changes.push(put(keys.caps(n), {
      static: { os: "linux", arch: "x86_64" },
      dynamic: { workers_busy: 0, workers_max: 128, health: "ok" },
    }));
  }
  run(core, v, { type: "changes", at: 0, changes });
  return v;
}

function run(core: Core, v: MutableView, ev: NodeEvent): void {
  const warnings = core.applyEvent(v, keys, ev);
  // Every record of the stream is valid: a warning means a broken bench.
  if (warnings.length > 0) throw new Error(`${core.label}: ${warnings[0]}`);
  core.applyEffects(v, core.handle(v, keys, ev), ev.at);
}

/** The watch events of one spec of `n` tasks, in the order etcd delivers them. */
function stream(specId: string, n: number, nodes: string[]): NodeEvent[] {
  const evs: NodeEvent[] = [];
  let at = 1;
  const ids: string[] = [];
  for (let i = 0; ids.length < n; i++) {
    const id = `${specId}.t${i}`;
    if (hrwWinner(id, nodes) !== nodes[0]) ids.push(id);
  }
  const envs = new Map<string, Envelope>();
  const created = new Map<string, number>();
  const mod = new Map<string, number>();
  const putEnv = (e: Envelope) => {
    envs.set(e.task_id, e);
    const c = put(keys.task(e.task_id), e, "0", created.get(e.task_id));
    created.set(e.task_id, c.kv.create_revision);
    mod.set(e.task_id, c.kv.mod_revision);
    return c;
  };
  for (let i = 0; i < n; i += 127) {
    const changes = ids.slice(i, i + 127).map((id) =>
      putEnv(testEnvelope(id, { dispatched_at: at }))
    );
    if (i + 127 >= n) {
      changes.push(put(keys.spec(specId), {
        spec_id: specId,
        yaml: "",
        sha256: "x",
        dispatched_by: "bench",
        dispatched_at: at,
        task_ids: ids,
      }));
    }
    evs.push({ type: "changes", at, changes });
  }
  for (let w = 0; w < n; w += WAVE) {
    const wave = ids.slice(w, w + WAVE);
    const fence = new Map<string, number>();
    at += 1;
    for (const id of wave) {
      const owner = hrwWinner(id, nodes)!;
      const lease = `9${owner}`;
      const e = envs.get(id)!;
      const claim = put(keys.claim(id), {
        node_id: owner,
        lease_id: lease,
        claimed_at: at,
        attempt: 1,
      }, lease);
      fence.set(id, claim.kv.create_revision);
      rev--; // one transaction, one revision
      const env = putEnv({
        ...e,
        state: "CLAIMED",
        state_version: e.state_version + 1,
        claimant_node_id: owner,
        claim_lease_id: lease,
        attempts: 1,
      });
      evs.push({ type: "changes", at, changes: [claim, env] });
    }
    at += 1;
    for (const id of wave) {
      const e = envs.get(id)!;
      evs.push({
        type: "changes",
        at,
        changes: [putEnv({
          ...e,
          state: "RUNNING",
          state_version: e.state_version + 1,
          fence: fence.get(id)!,
          started_at: at,
        })],
      });
    }
    at += 1;
    for (const id of wave) {
      const e = envs.get(id)!;
      const done = putEnv({
        ...e,
        state: "DONE",
        state_version: e.state_version + 1,
        exit_code: 0,
        finished_at: at,
        ran_on: e.claimant_node_id,
      });
      rev--;
      evs.push({ type: "changes", at, changes: [done, del(keys.claim(id))] });
    }
  }
  return evs;
}

/** This process's CPU time in ms (user + system, every thread: GC's too). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** One round: a fresh view and a fresh spec, its stream built (and its HRW scores forgotten) up front. */
function round(core: Core, c: number, m: number, r: number) {
  const nodes = nodeIds(m);
  const v = memberView(core, nodes[0], nodes);
  const evs = stream(`b${m}r${r}c${c}`, TASKS, nodes);
  for (const ev of evs) {
    if (ev.type !== "changes") continue;
    for (const c of ev.changes) {
      const p = keys.parse(c.key);
      if (p?.collection === "dispatch-queue") core.hrwForget(p.id);
    }
  }
  const changes = evs.reduce(
    (s, e) => s + (e.type === "changes" ? e.changes.length : 0),
    0,
  );
  return { v, evs, changes };
}

const cores = [await loadCore("this", new URL("../", import.meta.url))];
const against = arg("against", "");
if (against !== "") {
  const root = new URL(`file://${Deno.realPathSync(against)}/`);
  cores.unshift(await loadCore(against, root));
}
const rows: Record<string, unknown>[] = [];
const profiler = new Profiler(Deno.args.includes("--profile"));
for (const m of MEMBERS) {
  const samples = cores.map(() => [] as number[]);
  const walls = cores.map(() => [] as number[]);
  let changes = 0;
  for (let r = 0; r < ROUNDS + 1; r++) {
    for (const [i, core] of cores.entries()) {
      const { v, evs, changes: n } = round(core, i, m, r);
      changes = n;
      await profiler.start();
      const t0 = cpuMs();
      const w0 = performance.now();
      for (const ev of evs) run(core, v, ev);
      const wall = performance.now() - w0;
      const cpu = cpuMs() - t0;
      await profiler.stop();
      if (v.open.size !== 0) throw new Error(`${v.open.size} tasks left open`);
      // Round 0 warms the JIT.
      if (r > 0) {
        samples[i].push(cpu);
        walls[i].push(wall);
      }
    }
  }
  for (const [i, core] of cores.entries()) {
    // The median of this process's CPU (GC and compiler threads included);
    // the fastest wall clock as a cross-check blind to other threads.
    const cpu = [...samples[i]].sort((a, b) => a - b);
    const med = cpu[Math.floor(cpu.length / 2)];
    const wall = Math.min(...walls[i]);
    rows.push({
      core: core.label,
      members: m,
      tasks: TASKS,
      changes,
      us_per_change: +(med * 1000 / changes).toFixed(2),
      us_per_task: +(med * 1000 / TASKS).toFixed(1),
      wall_us_per_change_min: +(wall * 1000 / changes).toFixed(2),
      cpu_ms_per_round: samples[i].map((s) => +s.toFixed(0)),
    });
  }
}
console.log(JSON.stringify(rows, null, 1));
const report = profiler.report();
if (report) console.log(report);
