import assert from "node:assert/strict";
import { testEnvelope } from "../test_envelope.ts";
import type { Effect, RouteEffect } from "./effects.ts";
import { hrwWinner } from "./hrw.ts";
import type { MutableView } from "./view.ts";
import type { Envelope } from "../schema.ts";
import { cluster, feed, keys, put, step, txns } from "./handlers_test_util.ts";

const NODES = ["node-a", "node-b"];
const EXTRA = { "node-b": { region: "eu" } };

/** `self`'s view of node-a and node-b (node-b in region eu), with a router plugin or not. */
function view(self: string, router = true): MutableView {
  return cluster(self, NODES, EXTRA, 4, { router });
}

const queue = (v: MutableView, env: Envelope, at = 1) =>
  feed(v, at, put(keys.task(env.task_id), env));

function advise(
  v: MutableView,
  e: RouteEffect,
  advice: { requires?: Record<string, string>; preferred?: string[] },
  error: string | null = null,
): Effect[] {
  return step(v, {
    type: "route_advice",
    at: 2,
    task_id: e.task_id,
    sv: e.sv,
    requires: advice.requires ?? e.requires,
    preferred: advice.preferred ?? [],
    error,
  });
}

const claims = (effects: Effect[]) =>
  txns(effects).filter((e) => e.reason === "claim").length;
const routes = (effects: Effect[]) =>
  effects.filter((e): e is RouteEffect => e.kind === "route");

/** A task id HRW gives to `owner` among node-a and node-b. */
function taskOwnedBy(owner: string): string {
  for (let i = 0;; i++) {
    if (hrwWinner(`s1.t${i}`, NODES) === owner) return `s1.t${i}`;
  }
}

Deno.test("routing: a PENDING task is routed once per attempt, and not claimed before the answer", () => {
  const id = taskOwnedBy("node-a");
  const v = view("node-a");
  const first = queue(v, testEnvelope(id));
  const [r] = routes(first);
  assert.equal(claims(first), 0);
  assert.deepEqual(r, {
    kind: "route",
    task_id: id,
    sv: 0,
    requires: {},
    candidates: [
      { node_id: "node-a", caps: { os: "linux", arch: "x86_64" } },
      {
        node_id: "node-b",
        caps: { os: "linux", arch: "x86_64", region: "eu" },
      },
    ],
  });
  // Waiting: the tick neither asks again nor claims.
  const tick = step(v, { type: "tick", at: 1500 });
  assert.equal(routes(tick).length + claims(tick), 0);
  // No preference: HRW's owner claims on the answer.
  assert.equal(claims(advise(v, r, {})), 1);
});

Deno.test("routing: a preferred candidate takes the task HRW gave another node", () => {
  const id = taskOwnedBy("node-a");
  const results = new Map<string, number>();
  for (const self of NODES) {
    const v = view(self);
    const [r] = routes(queue(v, testEnvelope(id)));
    results.set(self, claims(advise(v, r, { preferred: ["node-b"] })));
  }
  assert.deepEqual(Object.fromEntries(results), { "node-a": 0, "node-b": 1 });
});

Deno.test("routing: a rewritten requires narrows the candidates to those matching both", () => {
  const id = taskOwnedBy("node-a");
  for (const [self, want] of [["node-a", 0], ["node-b", 1]] as const) {
    const v = view(self);
    const [r] = routes(queue(v, testEnvelope(id)));
    assert.equal(
      claims(advise(v, r, { requires: { region: "eu" } })),
      want,
      self,
    );
  }
});

Deno.test("routing: advice never bypasses the filter nor strands a task; a failed call leaves HRW", () => {
  const cases: {
    name: string;
    advice: { requires?: Record<string, string>; preferred?: string[] };
    error?: string;
  }[] = [
    {
      name: "a preferred node that is no candidate",
      advice: { preferred: ["node-x"] },
    },
    {
      name: "requires nobody matches",
      advice: { requires: { region: "mars" } },
    },
    {
      name: "a failed call",
      advice: { preferred: ["node-b"] },
      error: "deadline exceeded",
    },
  ];
  for (const c of cases) {
    const v = view("node-a");
    const [r] = routes(queue(v, testEnvelope(taskOwnedBy("node-a"))));
    assert.equal(claims(advise(v, r, c.advice, c.error ?? null)), 1, c.name);
  }
  // node-a is not capable of os: mac, so it neither routes nor claims.
  const v = view("node-a");
  const mac = testEnvelope(taskOwnedBy("node-a"), { requires: { os: "mac" } });
  const out = queue(v, mac);
  assert.equal(routes(out).length + claims(out), 0);
});

Deno.test("routing: a re-queued task is asked about again; a late answer for the old attempt is dropped", () => {
  const id = taskOwnedBy("node-a");
  const v = view("node-a");
  const [old] = routes(queue(v, testEnvelope(id)));
  const again = routes(queue(v, testEnvelope(id, { state_version: 2 })));
  assert.equal(again.length, 1);
  assert.equal(again[0].sv, 2);
  // The old attempt's answer decides nothing.
  assert.equal(claims(advise(v, old, { preferred: ["node-a"] })), 0);
  assert.equal(claims(advise(v, again[0], {})), 1);
  // Claimed, the task leaves PENDING and its advice is forgotten.
  assert.equal(v.routes.has(id), true);
  queue(v, testEnvelope(id, { state: "CLAIMED", state_version: 3 }));
  assert.equal(v.routes.has(id), false);
});

Deno.test("routing: without a router plugin nothing is routed and HRW claims at once", () => {
  const out = queue(view("node-a", false), testEnvelope(taskOwnedBy("node-a")));
  assert.equal(routes(out).length, 0);
  assert.equal(claims(out), 1);
});
