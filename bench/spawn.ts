/**
 * Spawn micro-benchmark: how many `true` processes per second each way of
 * starting a worker in its own process group manages, one at a time (`seq`)
 * and four at a time (`x4`, like a node with workers_max 4).
 *
 * Ways measured (stdout/stderr piped and drained, like the pool does):
 * - `deno_detached`: `Deno.Command(..., { detached: true })`. Deno then sets
 *   up the child with a pre-exec `setsid()`, which makes Rust's std fall back
 *   from posix_spawn (clone(CLONE_VM|CLONE_VFORK)) to a full fork of the
 *   Deno process: the cost grows with the parent's memory map.
 * - `deno_plain`: `Deno.Command` without `detached` (posix_spawn; no own
 *   group: the baseline, not a candidate).
 * - `setsid_wrapper`: plain `Deno.Command("/usr/bin/setsid", ["--", "true"])`.
 *   The child of a posix_spawn is not a process-group leader, so util-linux
 *   setsid calls setsid() and execs without forking: pid == sid == pgid.
 * - `node_detached`: `node:child_process` spawn with `detached: true` under
 *   Deno. It goes through the same op as `Deno.Command` (strace shows the
 *   same fork + setsid), measured to confirm.
 * - `local_pool`: the reference pool itself (node/exec/local_pool.ts),
 *   Spawn of argv ["true"] until its exit event: through its perl spawner
 *   (fork, setsid(), exec), one exec per task.
 *
 * `ballast_mb` grows this process's heap first: fork cost scales with the
 * parent's mapped memory, and the pool plugin is bigger than this bench.
 *
 * Run: `deno run -A bench/spawn.ts [--n 200] [--ballast-mb 0]`
 * @module
 */
import { spawn as nodeSpawn } from "node:child_process";
import { LocalPool } from "../node/exec/local_pool.ts";

/** Options of {@linkcode spawnRates}. */
export interface SpawnRatesOptions {
  /** Spawns per measurement (each way, each of seq and x4). */
  n: number;
  /** Rounds over all ways; the median rate is reported. @default 3 */
  rounds?: number;
  /** Concurrency of the concurrent measurement. @default 4 */
  concurrency?: number;
  /** MiB of live heap to hold while measuring. @default 0 */
  ballast_mb?: number;
  /** Only these ways (names as in the result, without ` seq`/` x4`). */
  ways?: string[];
}

type SpawnOnce = () => Promise<void>;

const SETSID = "/usr/bin/setsid";

async function drain(s: ReadableStream<Uint8Array>): Promise<void> {
  for await (const _ of s) { /* discard */ }
}

function denoCommand(cmd: string, args: string[], detached: boolean) {
  return async () => {
    const child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached,
    }).spawn();
    await Promise.all([drain(child.stdout), drain(child.stderr)]);
    const st = await child.status;
    if (st.code !== 0) throw new Error(`${cmd} exited ${st.code}`);
  };
}

function nodeChild(detached: boolean): SpawnOnce {
  return () =>
    new Promise<void>((resolve, reject) => {
      const c = nodeSpawn("true", [], {
        detached,
        stdio: ["ignore", "pipe", "pipe"],
      });
      c.stdout!.resume();
      c.stderr!.resume();
      c.on("error", reject);
      c.on("close", (code) => {
        if (code === 0) resolve();
        else reject(new Error(`true exited ${code}`));
      });
    });
}

let seq = 0;
function localPool(pool: LocalPool): SpawnOnce {
  return async () => {
    const id = `bench-${++seq}`;
    for await (
      const ev of pool.spawn({
        task_id: id,
        claim_token: "t",
        workdir: "/tmp",
        argv: ["true"],
        shell: null,
        prompt: null,
        env: {},
        timeout_ms: null,
      })
    ) {
      if ("exit" in ev && ev.exit.code !== 0) {
        throw new Error(`pool: ${JSON.stringify(ev.exit)}`);
      }
    }
  };
}

function ways(pool: LocalPool): Record<string, SpawnOnce> {
  const w: Record<string, SpawnOnce> = {
    deno_detached: denoCommand("true", [], true),
    deno_plain: denoCommand("true", [], false),
    node_detached: nodeChild(true),
    local_pool: localPool(pool),
  };
  try {
    Deno.statSync(SETSID);
    w.setsid_wrapper = denoCommand(SETSID, ["--", "true"], false);
  } catch {
    console.error(`bench/spawn: no ${SETSID}, setsid_wrapper not measured`);
  }
  return w;
}

/** Spawns per second of `once`, `n` in all, `concurrency` at a time. */
async function rate(
  once: SpawnOnce,
  n: number,
  concurrency: number,
): Promise<number> {
  let left = n;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left--;
        await once();
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Spawns of `true` per second, by way and mode (`<way> seq`, `<way> x4`);
 * rounds interleave the ways so a load change hits them all alike.
 */
export async function spawnRates(
  opts: SpawnRatesOptions,
): Promise<Record<string, { per_s: number }>> {
  const rounds = opts.rounds ?? 3;
  const conc = opts.concurrency ?? 4;
  // Touch every page so the ballast is really mapped (and copied by fork).
  const ballast = new Uint8Array((opts.ballast_mb ?? 0) * 1024 * 1024);
  for (let i = 0; i < ballast.length; i += 4096) ballast[i] = 1;
  await using pool = new LocalPool();
  const all = ways(pool);
  const chosen = Object.entries(all).filter(([k]) =>
    !opts.ways || opts.ways.includes(k)
  );
  const samples: Record<string, number[]> = {};
  for (const [, once] of chosen) {
    for (let i = 0; i < 3; i++) await once(); // warm-up
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, once] of chosen) {
      (samples[`${name} seq`] ??= []).push(await rate(once, opts.n, 1));
      (samples[`${name} x${conc}`] ??= []).push(
        await rate(once, opts.n, conc),
      );
    }
  }
  if (ballast.length > 0 && ballast[0] !== 1) throw new Error("unreachable");
  const out: Record<string, { per_s: number }> = {};
  for (const [k, xs] of Object.entries(samples)) {
    out[k] = { per_s: Math.round(median(xs) * 10) / 10 };
  }
  return out;
}

if (import.meta.main) {
  const arg = (name: string, dflt: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
  };
  const n = arg("--n", 200);
  const ballast_mb = arg("--ballast-mb", 0);
  const rounds = arg("--rounds", 3);
  const res = await spawnRates({ n, ballast_mb, rounds });
  console.log(
    `spawns of \`true\` per second (n=${n}, median of ${rounds} rounds, ` +
      `ballast ${ballast_mb} MiB, ${navigator.hardwareConcurrency} cpus)`,
  );
  for (const [k, v] of Object.entries(res)) {
    console.log(`${k.padEnd(24)} ${v.per_s.toFixed(1).padStart(8)}`);
  }
}
