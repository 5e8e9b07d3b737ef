import { loaderFreeEnv } from "./child_env.ts";

/** How many connections the node's HTTP front door takes, from its open-file limit. */
/**
 * The connection limit for an open-file limit: each relayed connection costs
 * three descriptors (client, relay, inner server), and the node keeps at
 * least five eighths of its descriptors for etcd, plugins, workers and logs.
 */
export function connectionLimit(nofile: number): number {
  return Math.max(8, Math.min(512, Math.floor(nofile / 8)));
}

/**
 * The soft open-file limit (`ulimit -n`); Deno reads /proc/self/limits only
 * with --allow-all, and the permission lock runs `prlimit`, not a shell.
 */
export async function openFileLimit(): Promise<number> {
  try {
    const out = await new Deno.Command("prlimit", {
      args: ["--nofile", "--output=SOFT", "--noheadings"],
      clearEnv: true,
      env: loaderFreeEnv().env,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (text === "unlimited") return 1 << 20;
    const n = Number(text);
    return Number.isInteger(n) && n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}
