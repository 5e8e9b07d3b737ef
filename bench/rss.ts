/** Resident memory of processes, read from /proc (Linux). */

/** VmRSS of `pid` in MiB; null when the process is gone. */
export function rssMiB(pid: number): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Samples the largest RSS of `pids` every `everyMs` until stopped. */
export function rssPeak(pids: number[], everyMs = 200): () => number {
  let peak = 0;
  const sample = () => {
    for (const p of pids) peak = Math.max(peak, rssMiB(p) ?? 0);
  };
  sample();
  const id = setInterval(sample, everyMs);
  return () => {
    clearInterval(id);
    sample();
    return peak;
  };
}
