import assert from "node:assert/strict";
import type { Envelope } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { type CoreConfig, emptyView, type MutableView } from "../core/view.ts";
import {
  type DashboardState,
  dashboardState,
  stateEvents,
  taskDetail,
} from "./dashboard.ts";
import { dashboardHtml, tailHtml } from "./dashboard_page.ts";

const v = <T>(value: T) => ({
  value,
  mod_revision: 1,
  create_revision: 1,
  lease: "0",
});

function env(id: string, over: Partial<Envelope> = {}): Envelope {
  return testEnvelope(id, over);
}

function view(): MutableView {
  const view = emptyView({ node_id: "node-a" } as CoreConfig);
  for (const [id, port] of [["node-b", 2], ["node-a", 1]] as const) {
    view.nodes.set(
      id,
      v({
        node_id: id,
        addr: `127.0.0.1:700${port}`,
        version: "0.1.0",
        started_at: 5,
        pid: port,
      }),
    );
    view.caps.set(
      id,
      v({
        static: { os: "linux", arch: "x86_64" },
        dynamic: {
          workers_busy: port - 1,
          workers_max: 4,
          health: id === "node-b" ? "degraded" : "ok",
        },
      }),
    );
  }
  const specs: [string, number, Envelope[]][] = [
    ["old", 100, [env("old.a", { state: "DONE", ran_on: "node-b" })]],
    ["new", 200, [
      env("new.x", {
        state: "RUNNING",
        claimant_node_id: "node-b",
        attempts: 1,
      }),
      env("new.y", { state: "FAILED", ran_on: "node-a", exit_code: 3 }),
      env("new.z", { state: "BLOCKED" }),
    ]],
  ];
  for (const [spec, at, envs] of specs) {
    view.specs.set(
      spec,
      v({
        spec_id: spec,
        yaml: "",
        sha256: "",
        dispatched_by: "me@host",
        dispatched_at: at,
        task_ids: envs.map((e) => e.task_id),
      }),
    );
    view.spec_tasks.set(spec, new Set(envs.map((e) => e.task_id)));
    for (const e of envs) view.tasks.set(e.task_id, v(e));
  }
  return view;
}

Deno.test("dashboard state: nodes sorted with caps and load; specs newest first with counts; tasks with where their log is", () => {
  const s = dashboardState(view(), { ok: true, reason: "ok" });
  assert.deepEqual(s.nodes.map((n) => [n.node_id, n.self, n.health]), [
    ["node-a", true, "ok"],
    ["node-b", false, "degraded"],
  ]);
  assert.equal(s.nodes[1].workers_busy, 1);
  assert.deepEqual(s.nodes[0].caps, { os: "linux", arch: "x86_64" });
  assert.deepEqual(s.specs.map((x) => [x.spec_id, x.total, x.finished]), [
    ["new", 3, 1],
    ["old", 1, 1],
  ]);
  assert.equal(s.specs[0].counts.RUNNING, 1);
  assert.equal(s.specs[0].counts.BLOCKED, 1);
  assert.equal(s.totals.DONE, 1);
  assert.equal(s.totals.FAILED, 1);
  assert.deepEqual(s.tasks.map((t) => [t.task_id, t.log_node]), [
    ["new.x", "node-b"],
    ["new.y", "node-a"],
    ["new.z", null],
    ["old.a", "node-b"],
  ]);
  assert.deepEqual(s.omitted, { specs: 0, tasks: 0 });
});

Deno.test("dashboard state: limits leave out the oldest specs and say so", () => {
  const s = dashboardState(view(), { ok: true, reason: "ok" }, {
    specs: 1,
    tasks: 2,
  });
  assert.deepEqual(s.specs.map((x) => x.spec_id), ["new"]);
  assert.equal(s.tasks.length, 2);
  assert.deepEqual(s.omitted, { specs: 1, tasks: 2 });
});

Deno.test("dashboard task detail: the log's node and its address from the view", () => {
  const d = taskDetail(view(), "new.x")!;
  assert.equal(d.log_node, "node-b");
  assert.equal(d.log_addr, "127.0.0.1:7002");
  assert.equal(d.terminal, false);
  assert.equal(taskDetail(view(), "new.nope"), null);
});

Deno.test("dashboard pages: self-contained HTML, values escaped", () => {
  const page = dashboardHtml("node-a");
  assert.match(page, /^<!doctype html>/);
  assert.match(page, /\/api\/events/);
  assert.ok(!/\bsrc=|href="(?!data:)/.test(page), "no external assets");
  const tail = tailHtml("node-a", "s.t");
  assert.match(tail, /const TASK_ID = "s\.t";/);
  assert.match(tail, /\/internal\/tail\//);
  // Defence in depth: even an id that slipped through could not break out.
  const odd = tailHtml("<b>", "</script><x>");
  assert.ok(!odd.includes("</script><x>"));
  assert.ok(odd.includes("&lt;b&gt;"));
});

Deno.test("/api/events: a client that does not read gets no snapshot queued per tick; once it reads, the latest comes", async () => {
  let calls = 0;
  const ac = new AbortController();
  const res = stateEvents(
    () => ({ n: ++calls }) as unknown as DashboardState,
    ac.signal,
    5,
  );
  await new Promise((r) => setTimeout(r, 200)); // ~40 ticks, nobody reading
  assert.ok(calls <= 2, `snapshots built while nobody read: ${calls}`);
  const reader = res.body!.getReader();
  const text = async () =>
    new TextDecoder().decode((await reader.read()).value);
  assert.equal(await text(), "retry: 1000\n\n");
  assert.equal(await text(), 'event: state\ndata: {"n":1}\n\n');
  const next = await text();
  const n = Number(/"n":(\d+)/.exec(next)?.[1]);
  assert.ok(n >= 2 && n <= calls, `after the drain: ${next}`);
  ac.abort();
  await reader.cancel();
});
