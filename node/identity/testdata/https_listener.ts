/**
 * The secure-mode node HTTPS listener alone, for https_server_test.ts: a CA
 * and a server certificate made here, a loopback port, prints
 * `listening <host:port>`, keeps the CA in `ca.pem`, logs to stderr.
 */
import { createCa, issueKeyAndCert } from "../ca.ts";
import { serveHttps } from "../https_server.ts";

const dir = Deno.args[0];
const { ca } = await createCa("t");
const tls = await issueKeyAndCert(ca, {
  cn: "node-a",
  dns: ["localhost"],
  ips: ["127.0.0.1"],
  server: true,
  client: true,
});
await Deno.writeTextFile(`${dir}/ca.pem`, ca.cert_pem);
const line = (msg: string, f?: unknown) =>
  console.error(JSON.stringify({ msg, ...(f as object) }));
const server = await serveHttps({
  hostname: "127.0.0.1",
  port: 0,
  cert: tls.cert_pem,
  key: tls.key_pem,
  ca: ca.cert_pem,
  socketPath: `${dir}/https.sock`,
  log: { error: line, warn: line, info: () => {} },
}, (_req, peer) => new Response(`peer ${peer.authorized}`));
console.log(`listening 127.0.0.1:${server.addr.port}`);
setInterval(() => {}, 60_000);
