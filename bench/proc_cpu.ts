/**
 * Where a run's CPU goes, per process role rather than per class: each node,
 * each of its plugins by kind, the pool's spawner with the tasks it reaped,
 * and etcd's RPCs per task by method. bench/cpu.ts's classes say how much;
 * this says which process, so a change to one of them can be judged alone.
 * @module
 */

import { childPids, HZ, procTicks as ticks } from "./cpu.ts";

/** CPU of one process role, summed over the nodes, in ms per task. */
export interface RoleCpu {
  /** Processes of this role counted (one per node, usually). */
  processes: number;
  user_ms: number;
  sys_ms: number;
  /**
   * Of the children it reaped during the run (the spawner's: the tasks,
   * with what perl's forked child did before its exec).
   */
  children_user_ms: number;
  children_sys_ms: number;
}

/**
 * A process's role from its command line: the script a `deno run` runs
 * (plugins/pool_local.ts → `pool_local`), `spawner` for the pool's perl.
 */
function role(pid: number): string {
  let argv: string[];
  try {
    argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  } catch {
    return "gone";
  }
  const script = argv.find((a) => /\.(ts|pl)$/.test(a));
  if (script === undefined) return argv[0].replace(/.*\//, "") || "?";
  const name = script.replace(/.*\//, "").replace(/\.(ts|pl)$/, "");
  return name === "main" ? "node" : name;
}

/**
 * Starts counting every process under `nodePids` (as they are now) and
 * `etcdPid`, by role; call the result with the task count.
 */
export function roleMeter(
  nodePids: number[],
  etcdPid: number | null,
): (tasks: number) => Record<string, RoleCpu> {
  const below = (pid: number): number[] =>
    childPids(pid).flatMap((c) => [c, ...below(c)]);
  const pids = [
    ...nodePids.flatMap((p) => [p, ...below(p)]),
    ...(etcdPid === null ? [] : [etcdPid]),
  ];
  const start = new Map(pids.map((p) => [p, ticks(p)]));
  const roles = new Map(
    pids.map((p) => [p, p === etcdPid ? "etcd" : role(p)]),
  );
  return (tasks) => {
    const out: Record<string, RoleCpu> = {};
    const ms = (t: number) => (t * 1000) / HZ / tasks;
    for (const p of pids) {
      const a = start.get(p), b = ticks(p);
      if (!a || !b) continue;
      const r = out[roles.get(p)!] ??= {
        processes: 0,
        user_ms: 0,
        sys_ms: 0,
        children_user_ms: 0,
        children_sys_ms: 0,
      };
      r.processes++;
      r.user_ms += ms(b[0] - a[0]);
      r.sys_ms += ms(b[1] - a[1]);
      r.children_user_ms += ms(b[2] - a[2]);
      r.children_sys_ms += ms(b[3] - a[3]);
    }
    return out;
  };
}

/**
 * etcd's handled gRPC calls so far, by method (`grpc_server_handled_total`);
 * none when its metrics cannot be read (a TLS endpoint, say).
 */
async function etcdCalls(endpoint: string): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  let text = "";
  try {
    text = await (await fetch(`${endpoint}/metrics`)).text();
  } catch {
    return calls;
  }
  for (const line of text.split("\n")) {
    const m = line.match(
      /^grpc_server_handled_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\S+)$/,
    );
    if (m) calls.set(m[1], (calls.get(m[1]) ?? 0) + Number(m[2]));
  }
  return calls;
}

/**
 * Starts counting etcd's RPCs (plain-HTTP `endpoint`); call the result with
 * the task count for the calls per task by method (Txn requests are what
 * group commit batches: fewer than the transactions decided).
 */
export async function etcdCallMeter(
  endpoint: string,
): Promise<(tasks: number) => Promise<Record<string, number>>> {
  const c0 = await etcdCalls(endpoint);
  return async (tasks) => {
    const out: Record<string, number> = {};
    for (const [method, n] of await etcdCalls(endpoint)) {
      const d = n - (c0.get(method) ?? 0);
      if (d > 0) out[method] = d / tasks;
    }
    return out;
  };
}
