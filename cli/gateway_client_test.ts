import assert from "node:assert/strict";
import { connectEtcd } from "../node/etcd_client.ts";
import { NodeRecord } from "../node/schema.ts";
import { startEtcd } from "../tests/harness/mod.ts";
import { Ctx, type Io } from "./context.ts";
import { GatewayClient } from "./gateway_client.ts";
import { Store } from "./store.ts";

const quiet = () => {};

Deno.test("gateway reads equal gRPC reads: paged prefix list at one revision, get, lease TTL", async () => {
  await using etcd = await startEtcd({ name: "gw" });
  const c = etcd.client();
  const lease = c.lease(30, { autoKeepAlive: false });
  const id = await lease.grant();
  for (let i = 0; i < 5; i++) {
    const rec: NodeRecord = {
      node_id: `n${i}`,
      addr: `127.0.0.1:${9000 + i}`,
      version: "0.1.0",
      started_at: 1,
      pid: 100 + i,
    };
    await lease.put(`/boi/nodes/n${i}`).value(JSON.stringify(rec));
  }
  await c.put("/boi/nodes/bad").value("not json");
  await c.put("/boi/nodesX").value("{}"); // past the prefix
  const endpoints = etcd.endpoint.split(",");
  const grpc = new Store(
    connectEtcd(endpoints, { failFast: true }),
    endpoints,
    quiet,
  );
  const warned: string[] = [];
  const gw = new Store(
    new GatewayClient(endpoints),
    endpoints,
    (l) => warned.push(l),
  );
  try {
    const a = await grpc.rangePrefix("/boi/nodes/");
    const b = await gw.rangePrefix("/boi/nodes/");
    assert.equal(b.revision, a.revision);
    assert.deepEqual(
      b.kvs.map((
        kv,
      ) => [kv.key.toString(), kv.value.toString(), kv.mod_revision, kv.lease]),
      a.kvs.map((
        kv,
      ) => [kv.key.toString(), kv.value.toString(), kv.mod_revision, kv.lease]),
    );
    const listed = await gw.list("/boi/nodes/", NodeRecord);
    assert.equal(listed.items.length, 5, JSON.stringify(listed));
    assert.match(
      warned.join("\n"),
      /skipping \/boi\/nodes\/bad: invalid record: not JSON/,
    );
    assert.equal(listed.items[0].lease, String(id));
    const got = await gw.get("/boi/nodes/n3", NodeRecord);
    assert.equal(got.item?.value.addr, "127.0.0.1:9003");
    assert.equal((await gw.get("/boi/nodes/none", NodeRecord)).exists, false);
    const ttl = await gw.leaseTtl(String(id));
    assert.ok(ttl !== null && ttl > 20 && ttl <= 30, `ttl ${ttl}`);
    assert.equal(
      await gw.leaseTtl(String(id)),
      await grpc.leaseTtl(String(id)),
    );
  } finally {
    grpc.close();
    await lease.revoke();
  }
});

Deno.test("reads_only: no gateway there (HTTP 404) → the gRPC client is used; an unreachable etcd is exit 3", async () => {
  // A plain HTTP server: the gateway call gets 404, so the command must go
  // over gRPC, which then reports "not an etcd server", not a 404 body.
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, () => new Response("no such path", { status: 404 }));
  const io: Io = {
    out: quiet,
    err: quiet,
    isTty: false,
    columns: 0,
    env: () => undefined,
    now: () => Date.now(),
  } as unknown as Io;
  const at = `http://127.0.0.1:${server.addr.port}`;
  const ctx = new Ctx(io, { etcd: at });
  const transports: string[] = [];
  await assert.rejects(
    ctx.withStore((store) => {
      transports.push(
        store.client instanceof GatewayClient ? "gateway" : "grpc",
      );
      return store.list("/boi/nodes/", NodeRecord);
    }, { reads_only: true }),
    (err: Error) => /not an etcd server|etcd/.test(err.message),
  );
  assert.deepEqual(transports, ["gateway", "grpc"]);

  const dead = new Ctx(io, { etcd: "http://127.0.0.1:2" });
  await assert.rejects(
    dead.withStore((store) => store.list("/boi/nodes/", NodeRecord), {
      reads_only: true,
    }),
    (err: Error) =>
      err.name === "EtcdUnreachableError" || /unreachable/.test(err.message),
  );
});
