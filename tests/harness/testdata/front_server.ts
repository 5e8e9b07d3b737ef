/**
 * An `HttpFront` with a connection limit above what `ulimit -n` allows, so
 * accept meets EMFILE (http_front_test.ts). Prints `listening <port>`, then
 * the front's log lines as JSON on stdout.
 */
import { HttpFront } from "../../../node/shell/http_front.ts";

const dir = Deno.args[0];
const log = (level: string) => (msg: string, fields?: unknown) =>
  console.log(JSON.stringify({ level, msg, ...fields as object }));
const front = await HttpFront.listen({
  hostname: "127.0.0.1",
  port: 0,
  socketPath: `${dir}/http.sock`,
  maxConnections: 10_000,
  headerTimeoutMs: 60_000,
  log: { info: log("info"), warn: log("warn"), error: log("error") },
}, () => new Response("ok\n"));
console.log(`listening ${front.addr.port}`);
