import assert from "node:assert/strict";
import { compileSubscriptions } from "./subscriptions.ts";
import { parsePluginsConfig } from "../plugins/config.ts";

Deno.test("subscriptions: kinds and globs; default every kind", () => {
  const s = compileSubscriptions(["task.*", "node.left"]);
  assert.ok(s.matches("task.completed"));
  assert.ok(s.matches("node.left"));
  assert.ok(!s.matches("node.joined"));
  assert.ok(!s.matches("hook.queue.saturated"));
  assert.ok(compileSubscriptions(null).matches("hook.gap.detected"));
  assert.ok(compileSubscriptions(["hook.*"]).matches("hook.queue.saturated"));
});

Deno.test("plugins file: subscribe is checked, with a one-line error naming file and field", () => {
  const file = (sub: string) => ({
    path: "plugins.yaml",
    text:
      `hooks:\n  argv: [deno, run, x.ts]\n  tier: audit\n  subscribe: ${sub}\n`,
  });
  const ok = parsePluginsConfig(file('["task.*"]'));
  const hooks = ok.find((p) => p.spec.kind === "hooks")!;
  assert.deepEqual([hooks.tier, hooks.subscribe], ["audit", ["task.*"]]);
  assert.throws(
    () => parsePluginsConfig(file('["task.complete"]')),
    /^Error: plugins\.yaml: hooks\.subscribe\[0\] must be an event kind or a glob matching one \(e\.g\. "task\.\*"\): got "task\.complete"$/,
  );
  assert.throws(() => parsePluginsConfig(file("[]")), /hooks\.subscribe/);
});

Deno.test("plugins file: the hooks entry's backpressure_window and wal_segment_events", () => {
  const parse = (extra: string) =>
    parsePluginsConfig({
      path: "p.yaml",
      text: `hooks:\n  argv: [deno, run, x.ts]\n  tier: audit\n${extra}`,
    }).find((p) => p.spec.kind === "hooks")!;
  const h = parse("  backpressure_window: 500\n  wal_segment_events: 64\n");
  assert.deepEqual([h.backpressure_window, h.wal_segment_events], [500, 64]);
  assert.equal(parse("").backpressure_window, undefined);
  assert.throws(
    () => parse("  backpressure_window: 3\n"),
    /backpressure_window/,
  );
});
