/**
 * For replay_log_test.ts: what a LocalPool still holds (heap + external
 * memory, after collections) once a task that wrote 64 MiB has ended.
 * Prints `{output, grew}`; needs `--v8-flags=--expose-gc`.
 */
import { LocalPool } from "../local_pool.ts";
import { spawnRequest } from "../test_spawn_request.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
// Array buffers are freed by finalizers: a few collections with turns between.
async function held(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 10));
  }
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

await using pool = new LocalPool();
async function run(): Promise<number> {
  let bytes = 0;
  for await (
    const ev of pool.spawn(spawnRequest({
      task_id: `big-${crypto.randomUUID()}`,
      argv: ["head", "-c", "67108864", "/dev/zero"],
    }))
  ) {
    if ("stdout" in ev) bytes += ev.stdout.length;
  }
  return bytes;
}
await run(); // warm: the runtime's own first growth is not the pool's
const before = await held();
const output = await run();
console.log(JSON.stringify({ output, grew: (await held()) - before }));
