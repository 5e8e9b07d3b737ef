// A BullMQ worker process for boi's benchmark (bench/bullmq.ts): it runs each
// job's command as a child process, as a BullMQ user wrapping shell commands
// would. Run with node, not Deno: BullMQ is meant for Node.js.
//
//   node worker.mjs --port 6390 --queue bench --concurrency 4 [--report start,done] [--noop]
//
// stdout carries one JSON line per event, for the driver:
//   {"ev":"ready","pid":…}                     once both redis connections are up
//   {"ev":"start","job":id,"t":ms,"pid":…}     a job's processor began (--report start)
//   {"ev":"done","job":id,"t":ms,"pid":…}      a job is completed in redis (--report done)
//   {"ev":"failed","job":id,"err":"…","pid":…} always
// Diagnostics go to stderr.
//
// Everything except concurrency stays at BullMQ's defaults (lockDuration,
// stalledInterval, maxStalledCount, drainDelay…): the benchmark compares boi
// with BullMQ as it comes. --noop: the processor returns at once without
// running the job's command (the control-plane peer of boi's noop pool).
import { spawn } from "node:child_process";
import process from "node:process";
import { parseArgs } from "node:util";
import { Worker } from "bullmq";

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    queue: { type: "string", default: "bench" },
    concurrency: { type: "string", default: "1" },
    report: { type: "string", default: "" },
    noop: { type: "boolean", default: false },
  },
});
const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  throw new Error(`worker.mjs: --port must be a TCP port, got ${args.port}`);
}
const concurrency = Number(args.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  throw new Error(
    `worker.mjs: --concurrency must be an integer >= 1, got ${args.concurrency}`,
  );
}
const report = new Set(args.report.split(",").filter((s) => s !== ""));
for (const r of report) {
  if (r !== "start" && r !== "done") {
    throw new Error(
      `worker.mjs: --report takes start and/or done, got ${args.report}`,
    );
  }
}

/** The jobs' commands now running, to kill with us when the driver goes. */
const children = new Set();

// The driver keeps our stdin open while it lives: exit when it goes away, so a
// driver killed before its cleanup leaves no peer process behind.
process.stdin.on("end", () => {
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
});
process.stdin.resume();

/** One JSON line to the driver. */
function emit(event) {
  process.stdout.write(JSON.stringify({ ...event, pid: process.pid }) + "\n");
}

/** Runs argv as a child process; resolves on exit 0, rejects otherwise. */
function run(argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
    children.add(child);
    child.on("error", (err) => {
      children.delete(child);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      if (code === 0) resolve();
      else {
        reject(
          new Error(
            `command ${JSON.stringify(argv)} exited with ${
              signal ?? `code ${code}`
            }`,
          ),
        );
      }
    });
  });
}

const worker = new Worker(
  args.queue,
  async (job) => {
    const argv = job.data?.cmd;
    if (!Array.isArray(argv) || argv.length === 0) {
      throw new Error(
        `job ${job.id}: data.cmd must be a non-empty argv array, got ${
          JSON.stringify(argv)
        }`,
      );
    }
    if (report.has("start")) emit({ ev: "start", job: job.id, t: Date.now() });
    if (!args.noop) await run(argv);
  },
  {
    connection: { host: args.host, port, maxRetriesPerRequest: null },
    concurrency,
  },
);
worker.on("error", (err) => {
  process.stderr.write(`worker.mjs ${process.pid}: ${err?.stack ?? err}\n`);
});
worker.on("failed", (job, err) => {
  emit({
    ev: "failed",
    job: job?.id ?? null,
    err: String(err?.message ?? err),
  });
});
if (report.has("done")) {
  worker.on("completed", (job) => {
    emit({ ev: "done", job: job.id, t: Date.now() });
  });
}

// Resolves once the command connection and the blocking connection (the one
// that waits for jobs) are both ready.
await worker.waitUntilReady();
emit({ ev: "ready" });

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    worker.close().finally(() => process.exit(0));
  });
}
