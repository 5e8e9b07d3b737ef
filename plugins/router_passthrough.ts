/**
 * Reference router: keeps the task's requires and states no preference, so
 * core's own HRW order decides. A template for routing plugins.
 *
 * Run: `deno run -P=plugin --allow-net=unix:<socket> plugins/router_passthrough.ts`
 * @module
 */
import { servePlugin } from "./sdk/mod.ts";

await servePlugin({
  kind: "router",
  name: "router_passthrough",
  version: "1.0.0",
  route: (req) => ({ requires: req.requires, preferred_node_ids: [] }),
});
