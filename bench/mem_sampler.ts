/**
 * Preloaded into one bench node (`deno run --preload=bench/mem_sampler.ts
 * --allow-ffi`) by bench/mem_probe.ts: samples what the process's memory is
 * made of every 100 ms into `/tmp/boi-mem-<pid>.jsonl`, so the probe can say
 * which holder makes the RSS peak (issue 16). Not part of the node.
 *
 * A sample: /proc/self/status (VmRSS, RssAnon, RssFile), Deno.memoryUsage(),
 * V8's heap spaces (size and used), glibc's mallinfo2 (arena bytes in use and
 * free). At each new RSS peak (+4 MiB) also /proc/self/smaps by kind of
 * mapping. Options from `/tmp/boi-mem-probe.json` (the harness clears the
 * node's env): `snapshot_mib`, once RSS passes it, one heap snapshot (V8
 * collects first: the live part) beside the samples; `trim`, a
 * malloc_trim(0) at each new peak, with the RSS after (what glibc holds free).
 * A file `/tmp/boi-mem-<pid>.snap-now` asks for a heap snapshot now.
 * @module
 */
import * as v8 from "node:v8";

const pid = Deno.pid;
const out = await Deno.open(`/tmp/boi-mem-${pid}.jsonl`, {
  create: true,
  write: true,
  truncate: true,
});
const enc = new TextEncoder();
const write = (o: unknown) =>
  out.writeSync(enc.encode(JSON.stringify(o) + "\n"));

const MiB = 1024 * 1024;
const mib = (b: number) => Math.round((b / MiB) * 10) / 10;

const libc = (() => {
  try {
    return Deno.dlopen("libc.so.6", {
      mallinfo2: {
        parameters: [],
        result: { struct: Array(10).fill("usize") },
      },
      malloc_trim: { parameters: ["usize"], result: "i32" },
    });
  } catch {
    return null;
  }
})();

function mallinfo(): Record<string, number> | null {
  if (libc === null) return null;
  const r = libc.symbols.mallinfo2() as Uint8Array;
  const v = new BigUint64Array(r.buffer, r.byteOffset, 10);
  // arena (sbrk'd), hblkhd (mmapped chunks), uordblks (in use), fordblks (free)
  return {
    arena: mib(Number(v[0])),
    mmapped: mib(Number(v[4])),
    in_use: mib(Number(v[7])),
    free: mib(Number(v[8])),
  };
}

function status(): Record<string, number> {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const get = (k: string) => {
    const m = s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : 0;
  };
  return {
    rss: get("VmRSS"),
    anon: get("RssAnon"),
    file: get("RssFile"),
    threads: Number(s.match(/^Threads:\s+(\d+)/m)?.[1] ?? 0),
  };
}

/** RSS by kind of mapping: [heap], file, anon by size class (V8 pages are 256 KiB). */
function smaps(): Record<string, number> {
  const text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  const by: Record<string, number> = {};
  let kind = "";
  for (const line of text.split("\n")) {
    const head = line.match(/^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/);
    if (head) {
      const size = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
      const name = head[3];
      kind = name === ""
        ? `anon_${
          size <= 256
            ? "le256k"
            : size <= 1024
            ? "le1m"
            : size <= 65536
            ? "le64m"
            : "gt64m"
        }`
        : name.startsWith("/")
        ? "file"
        : name;
      continue;
    }
    const m = line.match(/^Rss:\s+(\d+) kB/);
    if (m) by[kind] = (by[kind] ?? 0) + Number(m[1]);
  }
  for (const k of Object.keys(by)) by[k] = Math.round(by[k] / 102.4) / 10;
  return by;
}

function spaces(): Record<string, [number, number]> {
  const o: Record<string, [number, number]> = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size === 0) continue;
    o[s.space_name.replace(/_space$/, "")] = [
      mib(s.physical_space_size),
      mib(s.space_used_size),
    ];
  }
  return o;
}

const opts = (() => {
  try {
    return JSON.parse(Deno.readTextFileSync("/tmp/boi-mem-probe.json")) as {
      snapshot_mib?: number;
      trim?: boolean;
    };
  } catch {
    return {};
  }
})();
const snapAt = opts.snapshot_mib ?? 0;
const trim = opts.trim === true;
let peak = 0;
let snapped = false;
const t0 = performance.now();
const id = setInterval(() => {
  const st = status();
  const u = Deno.memoryUsage();
  const sample: Record<string, unknown> = {
    t: Math.round(performance.now() - t0),
    ...st,
    heap_total: mib(u.heapTotal),
    heap_used: mib(u.heapUsed),
    external: mib(u.external),
    spaces: spaces(),
    malloc: mallinfo(),
  };
  if (st.rss > peak + 8) {
    peak = st.rss;
    sample.smaps = smaps();
    if (trim && libc !== null) {
      libc.symbols.malloc_trim(0n);
      sample.after_trim = status();
    }
  }
  const asked = (() => {
    try {
      Deno.removeSync(`/tmp/boi-mem-${pid}.snap-now`);
      return true;
    } catch {
      return false;
    }
  })();
  if (asked || (snapAt > 0 && !snapped && st.rss >= snapAt)) {
    snapped ||= !asked;
    const before = performance.now();
    sample.snapshot = v8.writeHeapSnapshot(
      `/tmp/boi-mem-${pid}-${
        asked ? "asked" : "peak"
      }-${sample.t}.heapsnapshot`,
    );
    sample.snapshot_ms = Math.round(performance.now() - before);
    sample.after_snapshot = {
      ...status(),
      heap_used: mib(Deno.memoryUsage().heapUsed),
    };
  }
  write(sample);
}, 100);
Deno.unrefTimer(id);
