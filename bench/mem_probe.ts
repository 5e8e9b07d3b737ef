/**
 * What a node's RSS is made of during the control-plane row (issue 16): the
 * row's run (3 nodes, noop pool, 5,000 tasks; `--tasks N`), with node 1
 * sampled from inside by bench/mem_sampler.ts. Prints the sample at node 1's
 * RSS peak and a timeline (one line per second). Not part of the bench table.
 *
 * Run: `deno run -A bench/mem_probe.ts [--tasks N] [--snapshot-mib M] [--trim]
 * [--alloc] [--snapshots] [--flag=<deno flag for node 1>]...`; `--alloc` adds V8's
 * sampling heap profile of node 1 over the run (by allocating function);
 * `--snapshots` a heap snapshot of node 1 idle and one after the run.
 * @module
 */
import { startCluster } from "./cluster.ts";
import { CP_WORKERS, SCALE_TTL_S } from "./sizes.ts";
import { throughput } from "./throughput.ts";
import { startAllocProfile } from "./mem_alloc_profile.ts";

const args = Deno.args;
const val = (k: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : undefined;
};
const tasks = Number(val("--tasks") ?? 5000);
const alloc = args.includes("--alloc");
const snaps = args.includes("--snapshots");
const PORT = 9339;
const flags = args.filter((a) => a.startsWith("--flag=")).map((a) =>
  a.slice("--flag=".length)
);
await Deno.writeTextFile(
  "/tmp/boi-mem-probe.json",
  JSON.stringify({
    snapshot_mib: Number(val("--snapshot-mib") ?? 0),
    trim: args.includes("--trim"),
  }),
);
const sampler = new URL("./mem_sampler.ts", import.meta.url).pathname;
const load0 = Deno.loadavg();
let pid = 0;
let result;
let profile: string[] = [];
{
  await using c = await startCluster({
    nodes: 3,
    pool: "noop",
    workersMax: CP_WORKERS,
    leaseTtlS: SCALE_TTL_S,
    denoFlags: (i) =>
      i === 0
        ? [
          `--preload=${sampler}`,
          "-A",
          ...(alloc ? [`--inspect=127.0.0.1:${PORT}`] : []),
          ...flags,
        ]
        : [],
  });
  pid = c.nodes[0].pid;
  await new Promise((r) => setTimeout(r, 2500));
  const snap = () => Deno.writeTextFile(`/tmp/boi-mem-${pid}.snap-now`, "");
  if (snaps) {
    await snap(); // idle
    await new Promise((r) => setTimeout(r, 3000));
  }
  const stopAlloc = alloc ? await startAllocProfile(PORT) : null;
  result = await throughput(c, { tasks, name: "probe" });
  if (stopAlloc) profile = await stopAlloc();
  if (snaps) {
    await snap(); // every task terminal, still in the view
    await new Promise((r) => setTimeout(r, 5000));
  }
  await new Promise((r) => setTimeout(r, 1000));
}
type Sample = Record<string, unknown> & { t: number; rss: number };
const samples = (await Deno.readTextFile(`/tmp/boi-mem-${pid}.jsonl`)).trim()
  .split("\n").map((l) => JSON.parse(l) as Sample);
const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
const lastSmaps = samples.filter((s) => s.smaps !== undefined).at(-1);
const line = (s: Sample) => {
  const sp = s.spaces as Record<string, [number, number]>;
  const m = s.malloc as Record<string, number> | null;
  return `t=${
    (s.t / 1000).toFixed(1)
  }s rss=${s.rss} anon=${s.anon} file=${s.file} heap=${s.heap_total}/${s.heap_used} ext=${s.external} ` +
    Object.entries(sp).map(([k, [a, b]]) => `${k}=${a}/${b}`).join(" ") +
    (m ? ` malloc in_use=${m.in_use} free=${m.free} mmapped=${m.mmapped}` : "");
};
console.log(
  JSON.stringify({
    loadavg_before: load0,
    loadavg_after: Deno.loadavg(),
    tasks_per_s: result.tasks_per_s,
    cpu: result.cpu,
    node_rss_peak_mib: result.node_rss_peak_mib,
  }),
);
console.log("peak:", line(peak));
console.log("smaps at the last new peak:", JSON.stringify(lastSmaps?.smaps));
for (const s of samples) {
  if (s.after_trim) {
    console.log("trim:", s.rss, "->", JSON.stringify(s.after_trim));
  }
}
for (const s of samples) {
  if (s.snapshot) {
    console.log(
      "snapshot:",
      s.snapshot,
      s.snapshot_ms,
      "ms",
      JSON.stringify(s.after_snapshot),
    );
  }
}
let next = 0;
for (const s of samples) {
  if (s.t >= next || s === peak) {
    console.log(line(s));
    next = s.t + 1000;
  }
}
for (const l of profile) console.log(l);
