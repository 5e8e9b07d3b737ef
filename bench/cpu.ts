/**
 * Where the CPU goes during a run, from Linux's own counters (/proc): per
 * process class, in milliseconds of CPU per task, so a table can say why a
 * figure is what it is.
 */

/** USER_HZ: /proc/<pid>/stat times are in these ticks on Linux. */
export const HZ = 100;

/** utime, stime and its reaped children's, in ticks; null once it is gone. */
export type Ticks = [user: number, sys: number, cuser: number, csys: number];

/** `pid`'s CPU ticks from /proc (a process that is gone has its time lost to the measurement). */
export function procTicks(pid: number): Ticks | null {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]
      .split(" ");
    return [Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  } catch {
    return null;
  }
}

/** utime+stime of `pid` in seconds, plus its reaped children's when `children`. */
function cpuSeconds(pid: number, children: boolean): number {
  const t = procTicks(pid);
  if (t === null) return 0;
  return (t[0] + t[1] + (children ? t[2] + t[3] : 0)) / HZ;
}

/** The direct children of `pid` (their own children are the caller's to walk). */
export function childPids(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim()
      .split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Busy (non-idle, non-iowait) CPU seconds of the whole machine so far. */
function machineBusySeconds(): number {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(
    /\s+/,
  ).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / HZ;
}

/** CPU per task by process class. */
export interface CpuPerTask {
  /** The node processes. */
  nodes_ms: number;
  /** Their plugin processes and every process below them, with the task processes those reaped. */
  plugins_ms: number;
  etcd_ms: number;
  /** Everything on the machine (the bench's own driver included). */
  machine_ms: number;
}

/** Starts counting for the given node and etcd processes; call the result with the task count. */
export function cpuMeter(
  nodePids: number[],
  etcdPid: number | null,
): (tasks: number) => CpuPerTask {
  // Every process under the plugins too: the pool's spawner is long-lived,
  // so the tasks it reaps are in its counters, not yet in the pool's.
  const below = (pid: number): number[] =>
    childPids(pid).flatMap((c) => [c, ...below(c)]);
  const plugins = nodePids.flatMap(below);
  const sum = (pids: number[], children: boolean) =>
    pids.reduce((s, p) => s + cpuSeconds(p, children), 0);
  const n0 = sum(nodePids, false);
  const p0 = sum(plugins, true);
  const e0 = etcdPid === null ? 0 : cpuSeconds(etcdPid, false);
  const m0 = machineBusySeconds();
  return (tasks) => {
    const per = (s: number) => (s * 1000) / tasks;
    return {
      nodes_ms: per(sum(nodePids, false) - n0),
      plugins_ms: per(sum(plugins, true) - p0),
      etcd_ms: per(etcdPid === null ? 0 : cpuSeconds(etcdPid, false) - e0),
      machine_ms: per(machineBusySeconds() - m0),
    };
  };
}

/** Starts counting the whole machine's busy CPU; call the result with the task count (ms per task). */
export function machineMeter(): (tasks: number) => number {
  const m0 = machineBusySeconds();
  return (tasks) => ((machineBusySeconds() - m0) * 1000) / tasks;
}

/**
 * Starts counting `pids` and their children as they are now (own time plus
 * reaped children's); call the result with the task count (ms per task).
 * For peers whose processes are not boi's classes (BullMQ workers, redis).
 */
export function pidsMeter(pids: number[]): (tasks: number) => number {
  const all = [...pids, ...pids.flatMap(childPids)];
  const sum = () => all.reduce((s, p) => s + cpuSeconds(p, true), 0);
  const s0 = sum();
  return (tasks) => ((sum() - s0) * 1000) / tasks;
}
