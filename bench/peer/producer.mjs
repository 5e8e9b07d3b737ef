// Adds the benchmark's jobs to a BullMQ queue with addBulk, as a BullMQ user
// enqueueing a batch would, then exits. Run with node (BullMQ is meant for it).
//
//   node producer.mjs --port 6390 --queue bench --jobs 2000 --cmd '["true"]' [--chunk 1000]
//
// stdout, one JSON line once every job is added:
//   {"ev":"added","jobs":n,"t0":ms,"t1":ms}
// t0 is taken after the connection is ready, just before the first addBulk, so
// it is the start of the driver's end-to-end clock.
import process from "node:process";
import { parseArgs } from "node:util";
import { Queue } from "bullmq";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    queue: { type: "string", default: "bench" },
    jobs: { type: "string" },
    cmd: { type: "string", default: '["true"]' },
    chunk: { type: "string", default: "1000" },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  throw new Error(`producer.mjs: --port must be a TCP port, got ${args.port}`);
}
const jobs = Number(args.jobs);
if (!Number.isInteger(jobs) || jobs < 1) {
  throw new Error(
    `producer.mjs: --jobs must be an integer >= 1, got ${args.jobs}`,
  );
}
// Bounds one addBulk call (a single redis MULTI) for large runs.
const chunk = Number(args.chunk);
if (!Number.isInteger(chunk) || chunk < 1) {
  throw new Error(
    `producer.mjs: --chunk must be an integer >= 1, got ${args.chunk}`,
  );
}
const cmd = JSON.parse(args.cmd);
if (!Array.isArray(cmd) || cmd.length === 0) {
  throw new Error(
    `producer.mjs: --cmd must be a JSON argv array, got ${args.cmd}`,
  );
}

// The driver keeps our stdin open while it lives: exit when it goes away, so a
// driver killed before its cleanup leaves no peer process behind.
process.stdin.on("end", () => process.exit(1));
process.stdin.resume();

const queue = new Queue(args.queue, { connection: { host: args.host, port } });
try {
  await queue.waitUntilReady();
  const t0 = Date.now();
  for (let i = 0; i < jobs; i += chunk) {
    const n = Math.min(chunk, jobs - i);
    await queue.addBulk(
      Array.from({ length: n }, (_, k) => ({
        name: `job-${i + k}`,
        data: { cmd },
      })),
    );
  }
  const t1 = Date.now();
  process.stdout.write(JSON.stringify({ ev: "added", jobs, t0, t1 }) + "\n");
} finally {
  await queue.close();
}
// Our open stdin (see above) would keep node alive.
process.exit(0);
