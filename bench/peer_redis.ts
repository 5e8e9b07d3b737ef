/**
 * A private redis-server for the BullMQ peer (bench/bullmq.ts): loopback only,
 * a free port, no persistence, gone with the driver.
 * @module
 */

/** How much of a child's stderr to keep for error messages. */
export const STDERR_TAIL_BYTES = 4096;

/** Finds an executable on PATH, so a missing tool is named up front. */
export async function onPath(name: string, hint: string): Promise<string> {
  const path = Deno.env.get("PATH") ?? "";
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const file = `${dir}/${name}`;
    try {
      const st = await Deno.stat(file);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return file;
    } catch {
      // not in this dir
    }
  }
  throw new Error(
    `bench/bullmq: ${name} must be on PATH (${hint}); PATH is ${
      JSON.stringify(path)
    }`,
  );
}

/** A loopback TCP port nobody listens on right now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Sends PING and reports whether redis answered +PONG. */
async function redisPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null &&
      new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

export async function readTail(file: string): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).slice(-STDERR_TAIL_BYTES);
  } catch {
    return "(no log)";
  }
}

/** Options of {@linkcode startRedis}. */
export interface RedisOptions {
  /**
   * How long to wait for the server to answer PING.
   * @default 10000
   */
  readyTimeoutMs?: number;
}

/**
 * Starts a private redis-server: loopback only, a random free port, no
 * persistence (no RDB, no AOF), its working dir and log in a fresh temp dir.
 * Private so the bench never touches a redis someone else uses, and without
 * persistence so disk writes do not enter BullMQ's numbers (boi's etcd does
 * write to disk: that is part of boi's guarantee, and of BullMQ's defaults
 * being weaker). `stop()` kills it and removes the dir.
 */
export async function startRedis(
  opts: RedisOptions = {},
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const redisServer = await onPath(
    "redis-server",
    "bash scripts/setup_peer.sh installs it",
  );
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const dir = await Deno.makeTempDir({ prefix: "boi-bench-redis-" });
  const logFile = `${dir}/redis.log`;
  // A port picked free can be taken before redis binds it: try a few.
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    // Through a small sh that SIGKILLs redis once our end of its stdin
    // closes, so even a driver killed before its `finally` leaves no redis
    // behind (redis itself ignores stdin). The sh exits with redis' status.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'exec 3<&0; "$@" </dev/null & pid=$!; (cat <&3 >/dev/null; kill -9 $pid 2>/dev/null) & wait $pid',
        "sh",
        redisServer,
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--logfile",
        logFile,
        "--daemonize",
        "no",
        // BullMQ requires it (it is redis' default too): never evict job keys.
        "--maxmemory-policy",
        "noeviction",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
      // Own process group: stop() kills sh, redis and cat together.
      detached: true,
    }).spawn();
    let exited: Deno.CommandStatus | undefined;
    child.status.then((s) => exited = s);
    const stop = async () => {
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await child.stdin.close().catch(() => {});
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    const deadline = Date.now() + readyTimeoutMs;
    while (exited === undefined && Date.now() < deadline) {
      // pid: the sh wrapper; redis-server is its child (for CPU counts).
      if (await redisPing(port)) return { port, pid: child.pid, stop };
      await new Promise((r) => setTimeout(r, 20));
    }
    const log = await readTail(logFile);
    if (exited !== undefined && attempt < 3) {
      await child.stdin.close().catch(() => {});
      continue; // most likely the port was taken meanwhile
    }
    await stop();
    throw new Error(
      exited !== undefined
        ? `bench/bullmq: redis-server on port ${port} must stay up; it exited with code ${exited.code}. Log tail:\n${log}`
        : `bench/bullmq: redis-server on port ${port} must answer PING within ${readyTimeoutMs} ms; it did not. Log tail:\n${log}`,
    );
  }
}
