/**
 * For node/exec/mux_big_test.ts: an SDK pool whose Spawn of task `big-<n>`
 * yields one stdout item of n bytes, and whose other Spawns wait 1.5 s
 * before their output: a big item must fail its own call, not the stream.
 */
import { servePlugin } from "../sdk/mod.ts";

await servePlugin({
  kind: "pool",
  name: "big-item-pool",
  version: "0",
  async *spawn(req: { task_id: string }) {
    try {
      yield { started: { pid: 1 } };
      const big = /^big-(\d+)$/.exec(req.task_id);
      if (big) yield { stdout: new Uint8Array(Number(big[1])) };
      else {
        await new Promise((r) => setTimeout(r, 1500));
        yield { stdout: new TextEncoder().encode("slow done\n") };
      }
      yield { exit: { code: 0, signal: null, error: null } };
    } finally {
      // What holds the task (a pool's output buffer) is let go with it.
      console.error(`big-item-pool: ${req.task_id} closed`);
    }
  },
  kill() {},
} as never);
