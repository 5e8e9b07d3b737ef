/**
 * Liveness of processes and process groups, for checking that task trees are
 * gone. Deno gates reads of /proc behind --allow-all, so a `sh` child reads it
 * (or runs `ps` where there is no /proc); only `--allow-run` is needed.
 */

/** One row of the process table. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgrp: number;
  /** `R`, `S`, `D`, `T` (stopped), `Z` (zombie), … */
  state: string;
}

const SCRIPT = `
if [ -r /proc/self/stat ]; then
  echo proc
  if [ -n "$1" ]; then cat "/proc/$1/stat" 2>/dev/null; else cat /proc/[0-9]*/stat 2>/dev/null; fi
else
  echo ps
  ps -A -o pid= -o ppid= -o pgid= -o stat=
fi
exit 0
`;

/** Parses one `/proc/<pid>/stat`; the command name may hold spaces and parens. */
function parseStat(line: string): ProcInfo | null {
  const close = line.lastIndexOf(")");
  if (close < 0) return null;
  const rest = line.slice(close + 2).split(" ");
  return {
    pid: Number(line.slice(0, line.indexOf(" "))),
    state: rest[0],
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
  };
}

function parsePs(line: string): ProcInfo | null {
  const f = line.trim().split(/\s+/);
  if (f.length < 4) return null;
  return {
    pid: Number(f[0]),
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    state: f[3][0],
  };
}

/** The process table (or the row of `pid`), zombies included. */
export async function processTable(pid?: number): Promise<ProcInfo[]> {
  const out = await new Deno.Command("sh", {
    args: ["-c", SCRIPT, "sh", pid === undefined ? "" : String(pid)],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  const parse = lines[0] === "proc" ? parseStat : parsePs;
  const rows = lines.slice(1).filter((l) => l.trim() !== "").map(parse)
    .filter((r): r is ProcInfo => r !== null);
  return pid === undefined ? rows : rows.filter((r) => r.pid === pid);
}

/** Running, sleeping or stopped: anything but a zombie (exited, not reaped). */
function live(r: ProcInfo): boolean {
  return r.state !== "Z" && r.state !== "X";
}

/**
 * True while `pid` is a live process. A zombie (exited, not yet reaped) is
 * dead: it runs nothing and holds nothing but its table slot.
 */
export async function processAlive(pid: number): Promise<boolean> {
  return (await processTable(pid)).some(live);
}

/** Pids of the live members of process group `pgid`, ascending. */
export async function processGroupMembers(pgid: number): Promise<number[]> {
  return (await processTable()).filter((r) => r.pgrp === pgid && live(r))
    .map((r) => r.pid).sort((a, b) => a - b);
}

/** True while any live process belongs to process group `pgid` (a task's whole tree). */
export async function processGroupAlive(pgid: number): Promise<boolean> {
  return (await processGroupMembers(pgid)).length > 0;
}

/** Pids of the live descendants of `pid` (children, grandchildren, …), ascending. */
export async function descendants(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const r of await processTable()) {
    if (!live(r)) continue;
    children.set(r.ppid, [...(children.get(r.ppid) ?? []), r.pid]);
  }
  const out: number[] = [];
  const todo = [...(children.get(pid) ?? [])];
  while (todo.length > 0) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out.sort((a, b) => a - b);
}
