/**
 * The plugins file (SPEC §7, §8, §13) under bad input: one line naming the
 * file, the field, the rule in words and the value seen; hooks-only settings
 * refused on other kinds instead of silently ignored; the SPEC's own name
 * `hooks_backpressure_window` accepted in the hooks entry.
 */
import assert from "node:assert/strict";
import { parsePluginsConfig } from "./config.ts";

function message(text: string): string {
  try {
    parsePluginsConfig({ path: "plugins.yaml", text });
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`accepted: ${text}`);
}

Deno.test("plugins file errors: the rule in words, not zod's default text", () => {
  const cases: [string, string][] = [
    [
      "hooks: {argv: [x], tier: gold}",
      'plugins.yaml: hooks.tier: must be one of best_effort, audit: got "gold"',
    ],
    [
      "hooks: {argv: [x], ready_timeout_s: ten}",
      'plugins.yaml: hooks.ready_timeout_s: must be a positive number of seconds: got "ten"',
    ],
    [
      "hooks: {argv: [x], health_interval_s: -1}",
      "plugins.yaml: hooks.health_interval_s: must be a positive number of seconds: got -1",
    ],
    [
      "hooks: {argv: [x], backpressure_window: 5}",
      "plugins.yaml: hooks.backpressure_window: must be a whole number of events, at least 10: got 5",
    ],
    [
      "hooks: {argv: [x], wal_segment_events: 0}",
      "plugins.yaml: hooks.wal_segment_events: must be a whole number of events, at least 1: got 0",
    ],
    [
      "router: {argv: x}",
      'plugins.yaml: router.argv: must be a list like [deno, run, plugins/x.ts]: got "x"',
    ],
    [
      "hooks: {argv: [x], env: {A: 1}}",
      "plugins.yaml: hooks.env.A: must be a string (quote it): got 1",
    ],
    [
      "hooks: {argv: [x], subscribe: []}",
      "plugins.yaml: hooks.subscribe: must list at least one event kind or glob (leave it out for every kind): got []",
    ],
  ];
  for (const [text, want] of cases) assert.equal(message(text), want);
});

Deno.test("plugins file errors: hooks-only settings on another kind are refused, naming the field", () => {
  for (
    const k of ["tier: audit", "subscribe: [task.*]", "backpressure_window: 50"]
  ) {
    const field = k.split(":")[0];
    assert.equal(
      message(`pool: {argv: [x], ${k}}`),
      `plugins.yaml: pool.${field}: applies to the hooks plugin only`,
    );
  }
});

Deno.test("plugins file: hooks_backpressure_window (the SPEC §8 name) sets the window", () => {
  const hooks = parsePluginsConfig({
    path: "plugins.yaml",
    text: "hooks: {argv: [x], tier: audit, hooks_backpressure_window: 40}",
  }).find((p) => p.spec.kind === "hooks")!;
  assert.equal(hooks.backpressure_window, 40);
  assert.match(
    message(
      "hooks: {argv: [x], hooks_backpressure_window: 40, backpressure_window: 40}",
    ),
    /^plugins\.yaml: hooks: give hooks_backpressure_window or backpressure_window, not both: got \{/,
  );
});
