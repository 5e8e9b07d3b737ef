/**
 * Run inside node-a's container by the Compose test: sends one `task.completed`
 * hook event for `<task_id>` to the hooks plugin at `<socket>` and prints the
 * ack. It proves the path core uses to reach the sidecar — a Unix socket on a
 * volume two containers share — from the node's side, while core does not
 * emit hook events itself yet (issue 12).
 *
 * Usage: deno run -q --allow-env=GRPC_* --allow-net=unix:<socket>
 *   --allow-read=<socket> --allow-write=<socket> tests/compose/hook_probe.ts <socket> <task_id> <seq>
 */
import { PluginConnection } from "../../node/exec/grpc_client.ts";
import { GrpcHooks } from "../../node/exec/grpc_hooks.ts";

const [socket, task_id, seqText] = Deno.args;
const seq = Number(seqText);
if (!socket?.startsWith("/") || !task_id || !Number.isInteger(seq)) {
  console.error(
    `usage: hook_probe.ts <socket> <task_id> <seq>: got ${
      JSON.stringify(Deno.args)
    }`,
  );
  Deno.exit(2);
}
const conn = new PluginConnection("hooks", socket, { timeout_ms: 5000 });
try {
  await conn.waitForReady(5000);
  const ts = Date.now();
  const ack = await new GrpcHooks({ connection: conn }).onEvent({
    seq,
    emitter_node_id: "compose-test",
    kind: "task.completed",
    ts,
    payload_json: JSON.stringify({ task_id }),
    dedup_key: `compose-test-${task_id}-${seq}`,
    tier: "best_effort",
  });
  console.log(JSON.stringify(ack));
} finally {
  conn.close();
}
