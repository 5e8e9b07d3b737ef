/**
 * A stand-in for node/main.ts in the harness's own tests: registers like a
 * node (SPEC §2) and logs JSON lines, so startNode can be tested alone.
 */
import { connectEtcd } from "../../../node/etcd_client.ts";
import { parseEndpoints } from "../../../node/etcd_errors.ts";
import { Keys } from "../../../node/keys.ts";

const env = (k: string, d?: string): string => {
  const v = Deno.env.get(k) ?? d;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const log = (
  level: string,
  msg: string,
  fields: Record<string, unknown> = {},
) => console.error(JSON.stringify({ ts: Date.now(), level, msg, ...fields }));

const nodeId = env("BOI_NODE_ID");
const keys = new Keys(env("BOI_KEY_PREFIX", "/boi/"));
const [host, port] = env("BOI_HTTP_ADDR").split(":");
const client = connectEtcd(parseEndpoints(env("BOI_ETCD_ENDPOINTS")));
const server = Deno.serve(
  { hostname: host, port: Number(port), onListen: () => {} },
  () => new Response("ok\n"),
);
log("info", "starting", {
  node_id: nodeId,
  caps: Deno.env.get("BOI_CAPS") ?? "",
});
if (Deno.env.get("FAKE_NODE_EXIT") !== undefined) {
  log("error", "exiting as asked");
  Deno.exit(Number(Deno.env.get("FAKE_NODE_EXIT")));
}
const lease = client.lease(Number(env("BOI_LEASE_TTL_S", "10")));
await lease.put(keys.node(nodeId)).value(JSON.stringify({
  node_id: nodeId,
  addr: `${host}:${server.addr.port}`,
  version: "fake",
  started_at: Date.now(),
  pid: Deno.pid,
}));
log("info", "registered", { node_id: nodeId });
Deno.addSignalListener("SIGTERM", async () => {
  log("info", "stopping");
  await lease.revoke().catch(() => {});
  client.close();
  Deno.exit(0);
});
