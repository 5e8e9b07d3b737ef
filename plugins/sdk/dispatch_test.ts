/** The dispatcher's call signals, pure: no socket, no process. */
import assert from "node:assert/strict";
import { Dispatcher, type Route } from "./dispatch.ts";
import { PluginLogger } from "./log.ts";
import type { CallContext } from "./serve.ts";

const codec = {
  rpc: "Echo",
  stream: false,
  encodeRequest: (r: unknown) => r as Uint8Array,
  decodeRequest: (w: unknown) => w,
  encodeResponse: (r: unknown) => r as Uint8Array,
  decodeResponse: (w: unknown) => w,
};

function setup() {
  const shutdown = new AbortController();
  const d = new Dispatcher(new PluginLogger({}, "error"), shutdown.signal);
  return { shutdown, d };
}

Deno.test("dispatch: a call's signal aborts when its caller cancels, with the caller's reason", () => {
  const { d } = setup();
  const cancelled = new AbortController();
  const ctx = d.context("c1", "Echo", cancelled.signal);
  assert.equal(ctx.signal.aborted, false);
  cancelled.abort(new Error("cancelled by caller"));
  assert.equal(ctx.signal.aborted, true);
  assert.equal((ctx.signal.reason as Error).message, "cancelled by caller");
});

Deno.test("dispatch: shutdown past its grace aborts every call in flight, not the ended ones", async () => {
  const { shutdown, d } = setup();
  let parked: CallContext | null = null;
  let release = () => {};
  const route: Route = {
    codec,
    handler: (req, ctx) => {
      if (req === "park") {
        parked = ctx;
        return new Promise((r) => release = () => r("late"));
      }
      return req;
    },
  };
  const done = d.context("c1", "Echo", new AbortController().signal);
  assert.equal(await d.unary(route, () => "now" as never, done), "now");
  const inFlight = d.context("c2", "Echo", new AbortController().signal);
  const call = d.unary(route, () => "park" as never, inFlight);
  await Promise.resolve();
  assert.equal(parked, inFlight);
  shutdown.abort(new Error("plugin shutting down: test"));
  assert.equal(inFlight.signal.aborted, true);
  assert.match(String(inFlight.signal.reason), /shutting down: test/);
  assert.equal(done.signal.aborted, false, "an ended call is not cut");
  release();
  await call;
  const late = d.context("c3", "Echo", new AbortController().signal);
  assert.equal(late.signal.aborted, true, "a call after shutdown starts cut");
});

Deno.test("dispatch: a call's log carries its corr_id and rpc", () => {
  const { d } = setup();
  const ctx = d.context("corr-7", "Echo", new AbortController().signal);
  assert.deepEqual(ctx.log.fields, { corr_id: "corr-7", rpc: "Echo" });
  assert.equal(ctx.log, ctx.log, "one logger per call");
});
