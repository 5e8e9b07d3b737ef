/**
 * What one wake-up of a sleeping Deno process costs in CPU on this machine,
 * apart from any work it then does: a timer after 1, 5 and 20 ms of sleep,
 * and a 200-byte round trip over a Unix socket to a peer process, back to
 * back and with 5 ms of sleep between. Every process hop of a task (node →
 * workspace, pool, spawner, etcd and back) is one such wake-up when the
 * cluster is not saturated; see docs/architecture.md, "End to end".
 *
 *   deno run -A bench/wake_cost.ts
 * @module
 */
import process from "node:process";

/** CPU microseconds of this process per iteration of `step`. */
async function cpuPer(n: number, step: () => Promise<void>): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await step();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const PEER = `
const l = Deno.listen({ transport: "unix", path: Deno.args[0] });
await Deno.stdout.write(new Uint8Array([10]));
const c = await l.accept();
const b = new Uint8Array(65536), one = new Uint8Array(1);
while ((await c.read(b)) !== null) await c.write(one);
`;

const dir = await Deno.makeTempDir({ prefix: "boi-wake-" });
try {
  for (const ms of [1, 5, 20]) {
    const us = await cpuPer(ms === 20 ? 250 : 500, () => sleep(ms));
    console.log(`timer after ${ms} ms asleep: ${us.toFixed(0)} µs CPU`);
  }
  const path = `${dir}/s.sock`;
  await Deno.writeTextFile(`${dir}/peer.ts`, PEER);
  const peer = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${dir}/peer.ts`, path],
    stdout: "piped",
  }).spawn();
  const ready = peer.stdout.getReader();
  await ready.read();
  const conn = await Deno.connect({ transport: "unix", path });
  const out = new Uint8Array(200), back = new Uint8Array(64);
  const trip = async () => {
    await conn.write(out);
    await conn.read(back);
  };
  await cpuPer(200, trip); // warm-up
  const hot = await cpuPer(1000, trip);
  const cold = await cpuPer(400, async () => {
    await sleep(5);
    await trip();
  });
  console.log(
    `socket round trip: ${hot.toFixed(0)} µs CPU back to back, ` +
      `${cold.toFixed(0)} µs after 5 ms asleep (this side only)`,
  );
  conn.close();
  ready.releaseLock();
  await peer.stdout.cancel();
  peer.kill();
  await peer.status;
} finally {
  await Deno.remove(dir, { recursive: true });
}
