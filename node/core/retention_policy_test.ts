import assert from "node:assert/strict";
import {
  DAY_MS,
  DEFAULT_RETENTION,
  type LogFile,
  MIB,
  retentionPlan,
} from "./retention_policy.ts";

const NOW = Date.UTC(2030, 0, 10);

function log(
  task: string,
  over: Partial<LogFile> & { ageDays?: number; mib?: number } = {},
): LogFile {
  const spec = task.split(".")[0];
  const { ageDays = 0, mib = 1, ...rest } = over;
  return {
    path: `/d/logs/${spec}/${task}.log`,
    spec_id: spec,
    task_id: task,
    size: mib * MIB,
    mtime: NOW - ageDays * DAY_MS,
    terminal: true,
    ...rest,
  };
}

const paths = (files: { path: string }[]) => files.map((f) => f.path);

Deno.test("retention: defaults are 7 days and 100 MiB per spec", () => {
  assert.equal(DEFAULT_RETENTION.max_age_ms, 7 * DAY_MS);
  assert.equal(DEFAULT_RETENTION.max_spec_bytes, 100 * MIB);
});

Deno.test("retention: nothing to do on an empty or young, small set", () => {
  assert.deepEqual(retentionPlan([], NOW), []);
  assert.deepEqual(
    retentionPlan([log("s.a", { ageDays: 6.9 }), log("s.b")], NOW),
    [],
  );
});

Deno.test("retention: terminal logs older than 7 days go, by mtime", () => {
  const plan = retentionPlan([
    log("s.old", { ageDays: 8 }),
    log("s.edge", { mtime: NOW - 7 * DAY_MS }), // exactly 7 days: not older
    log("s.new", { ageDays: 1 }),
  ], NOW);
  assert.deepEqual(paths(plan), ["/d/logs/s/s.old.log"]);
  assert.equal(plan[0].reason, "age");
});

Deno.test("retention: a log whose task may still write is never deleted, however old", () => {
  const plan = retentionPlan([
    log("s.running", { ageDays: 30, terminal: false }),
  ], NOW);
  assert.deepEqual(plan, []);
});

Deno.test("retention: an 8-day-old 110 MiB log of a finished task goes; the current one stays", () => {
  const plan = retentionPlan([
    log("r.old", { ageDays: 8, mib: 110 }),
    log("r.cur", { ageDays: 0, mib: 1 }),
  ], NOW);
  assert.deepEqual(paths(plan), ["/d/logs/r/r.old.log"]);
});

Deno.test("retention: a spec over 100 MiB loses its oldest terminal logs until it fits", () => {
  const plan = retentionPlan([
    log("s.a", { ageDays: 3, mib: 40 }),
    log("s.b", { ageDays: 2, mib: 40 }),
    log("s.c", { ageDays: 1, mib: 40 }),
    log("s.d", { ageDays: 0, mib: 10 }),
  ], NOW);
  // 130 MiB → drop a (90 MiB left): fits.
  assert.deepEqual(paths(plan), ["/d/logs/s/s.a.log"]);
  assert.equal(plan[0].reason, "spec_size");
});

Deno.test("retention: exactly at the cap is kept; one byte over trims", () => {
  const at = [
    log("s.a", { ageDays: 1, size: 60 * MIB }),
    log("s.b", { size: 40 * MIB }),
  ];
  assert.deepEqual(retentionPlan(at, NOW), []);
  const over = [...at, log("s.c", { size: 1 })];
  assert.deepEqual(paths(retentionPlan(over, NOW)), ["/d/logs/s/s.a.log"]);
});

Deno.test("retention: the size pass skips running tasks' logs and counts them", () => {
  const plan = retentionPlan([
    log("s.live", { ageDays: 5, mib: 80, terminal: false }),
    log("s.x", { ageDays: 4, mib: 15 }),
    log("s.y", { ageDays: 3, mib: 15 }),
    log("s.z", { ageDays: 2, mib: 5 }),
  ], NOW);
  // 115 MiB → drop x (100 MiB, fits).
  assert.deepEqual(paths(plan), ["/d/logs/s/s.x.log"]);
  // Running logs alone over the cap: everything terminal goes, they stay.
  const stuck = retentionPlan([
    log("s.live", { ageDays: 5, mib: 120, terminal: false }),
    log("s.x", { ageDays: 4, mib: 1 }),
  ], NOW);
  assert.deepEqual(paths(stuck), ["/d/logs/s/s.x.log"]);
});

Deno.test("retention: age deletions count before the size pass, per spec", () => {
  const plan = retentionPlan([
    log("a.old", { ageDays: 9, mib: 200 }),
    log("a.new", { ageDays: 1, mib: 50 }),
    log("b.x", { ageDays: 2, mib: 70 }),
    log("b.y", { ageDays: 1, mib: 70 }),
  ], NOW);
  assert.deepEqual(plan.map((d) => [d.task_id, d.reason]), [
    ["a.old", "age"],
    ["b.x", "spec_size"],
  ]);
});

Deno.test("retention: ties in mtime break by path; input order does not matter", () => {
  const files = [
    log("s.b", { mtime: NOW - DAY_MS, mib: 60 }),
    log("s.a", { mtime: NOW - DAY_MS, mib: 60 }),
  ];
  const one = retentionPlan(files, NOW);
  const two = retentionPlan([...files].reverse(), NOW);
  assert.deepEqual(one, two);
  assert.deepEqual(paths(one), ["/d/logs/s/s.a.log"]);
});

Deno.test("retention: a custom policy", () => {
  const plan = retentionPlan(
    [log("s.a", { ageDays: 2 }), log("s.b", { ageDays: 0.5 })],
    NOW,
    { max_age_ms: DAY_MS, max_spec_bytes: 100 * MIB },
  );
  assert.deepEqual(paths(plan), ["/d/logs/s/s.a.log"]);
});
