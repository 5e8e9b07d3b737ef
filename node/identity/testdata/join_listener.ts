/**
 * A join listener alone, for join_server_test.ts: makes a CA in the data dir
 * given as the first argument, listens on a free loopback port, prints
 * `listening <host:port>`, and logs its errors to stderr.
 */
import { createCa, stageCaKey } from "../ca.ts";
import { startJoinServer } from "../join_server.ts";

const dir = Deno.args[0];
const { ca, key_pem } = await createCa("t");
await (await stageCaKey(dir, key_pem)).commit(ca.cert_pem);
const line = (msg: string, f?: unknown) =>
  console.error(JSON.stringify({ msg, ...(f as object) }));
const js = await startJoinServer({
  client: null as never, // a join would need etcd: this listener serves /v1/ca only
  keys: null as never,
  nodeId: "adm-a",
  dataDir: dir,
  etcdEndpoints: [],
  log: { error: line, warn: line, info: () => {}, debug: () => {} } as never,
  joinHost: "127.0.0.1",
  joinPort: 0,
});
console.log(`listening ${js!.addr}`);
setInterval(() => {}, 60_000);
