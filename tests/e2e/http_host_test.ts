/**
 * The DNS rebinding guard on a real node: a request whose `Host` names a
 * host that is not the node's (a page that pointed its own name at
 * 127.0.0.1) gets 421 and none of the view; by address, `localhost`, or a
 * name listed in BOI_HTTP_HOSTS it is served.
 */
import assert from "node:assert/strict";
import {
  notYet,
  rawGet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";

Deno.test("http: a Host that is not the node's gets 421 and no view; addresses, localhost and BOI_HTTP_HOSTS are served", async () => {
  await using etcd = await startEtcd();
  await using node = await startNode(etcd, {
    nodeId: "host-node",
    env: { BOI_HTTP_HOSTS: "boi.example.com" },
  });
  const port = node.httpAddr.split(":")[1];
  await waitFor("healthz 200", async () => {
    const r = await rawGet(node.url, "/healthz", `127.0.0.1:${port}`);
    return r.status === 200 ? r : notYet(r);
  });
  for (
    const host of [
      "evil.example",
      `evil.example:${port}`,
      "boi.example.com.evil.example",
    ]
  ) {
    for (const target of ["/internal/view", "/api/state", "/"]) {
      const r = await rawGet(node.url, target, host);
      assert.equal(r.status, 421, `${host} ${target}: ${r.body}`);
      assert.ok(!r.body.includes("host-node"), `${host} ${target}: ${r.body}`);
    }
  }
  for (
    const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      "boi.example.com",
      `BOI.example.com:${port}`,
    ]
  ) {
    const r = await rawGet(node.url, "/internal/view", host);
    assert.equal(r.status, 200, `${host}: ${r.body.slice(0, 200)}`);
    assert.match(r.body, /host-node/, host);
  }
});
