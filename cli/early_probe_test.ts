import assert from "node:assert/strict";
import {
  endpointsArg,
  httpEndpoints,
  startEarlyProbe,
  takeEarlyProbe,
} from "./early_probe.ts";

const noEnv = () => undefined;

Deno.test("endpointsArg: --etcd X, --etcd=X, then BOI_ETCD_ENDPOINTS, then the default", () => {
  assert.equal(endpointsArg(["dispatch", "f", "--etcd", "a:1"], noEnv), "a:1");
  assert.equal(endpointsArg(["dispatch", "--etcd=b:2", "f"], noEnv), "b:2");
  assert.equal(
    endpointsArg(
      ["dispatch", "f"],
      (n) => n === "BOI_ETCD_ENDPOINTS" ? "c:3" : undefined,
    ),
    "c:3",
  );
  assert.equal(endpointsArg(["dispatch", "f"], noEnv), "http://127.0.0.1:2379");
  assert.equal(
    endpointsArg(["dispatch", "--", "--etcd", "x:1"], noEnv),
    "http://127.0.0.1:2379",
  );
});

Deno.test("httpEndpoints: plain http with a port only, normalized like the CLI's parser", () => {
  assert.deepEqual(httpEndpoints("a:1, http://b:2/"), [
    "http://a:1",
    "http://b:2",
  ]);
  assert.equal(httpEndpoints("https://a:1"), null);
  assert.equal(httpEndpoints("a"), null);
  assert.equal(httpEndpoints(","), null);
});

Deno.test("takeEarlyProbe: only for dispatch and the same endpoints", async () => {
  startEarlyProbe(["status", "--etcd", "127.0.0.1:1"], noEnv);
  assert.equal(await takeEarlyProbe(["http://127.0.0.1:1"]), null);
  startEarlyProbe(["dispatch", "f", "--etcd", "127.0.0.1:1"], noEnv);
  assert.equal(await takeEarlyProbe(["http://127.0.0.1:2"]), null);
  assert.equal(
    await takeEarlyProbe(["http://127.0.0.1:1"]),
    null,
    "taken once",
  );
});

Deno.test("the worker's verdict: ok from a gateway, unknown without one, refused, and no answer", async () => {
  let status = 200;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      await req.body?.cancel();
      return new URL(req.url).pathname === "/v3/kv/range"
        ? new Response('{"header":{}}', { status })
        : new Response("", { status: 404 });
    },
  );
  const up = `http://127.0.0.1:${server.addr.port}`;
  // The verdicts, not the timing: a worker starts slowly on a busy machine.
  startEarlyProbe(["dispatch", "f", "--etcd", up], noEnv, 20_000);
  assert.deepEqual(await takeEarlyProbe([up], 20_000), { kind: "ok" });
  status = 404;
  startEarlyProbe(["dispatch", "f", "--etcd", up], noEnv, 20_000);
  assert.deepEqual(await takeEarlyProbe([up], 20_000), { kind: "unknown" });

  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  l.close();
  startEarlyProbe(["dispatch", "f", "--etcd", dead], noEnv);
  const refused = await takeEarlyProbe([dead]);
  assert.equal(refused?.kind, "unreachable");
  assert.match(
    refused?.kind === "unreachable" ? refused.reason : "",
    /refused/,
  );
  // One live endpoint among dead ones is enough.
  status = 200;
  startEarlyProbe(["dispatch", "f", "--etcd", `${dead},${up}`], noEnv);
  assert.deepEqual(await takeEarlyProbe([dead, up]), { kind: "ok" });

  // Accepts the connection, never answers: a partition.
  const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of hole) conns.push(c);
  })();
  const silent = `http://127.0.0.1:${(hole.addr as Deno.NetAddr).port}`;
  const t0 = performance.now();
  startEarlyProbe(["dispatch", "f", "--etcd", `${silent},${dead}`], noEnv, 400);
  const v = await takeEarlyProbe([silent, dead]);
  const took = performance.now() - t0;
  assert.deepEqual(v, {
    kind: "unreachable",
    reason: "no answer within 0.4s; connection refused",
  });
  assert.ok(took >= 350 && took < 2000, `${took} ms`);
  hole.close();
  await accepting;
  for (const c of conns) c.close();
});

Deno.test("takeEarlyProbe: a port fetch refuses outright gives no verdict", async () => {
  startEarlyProbe(["dispatch", "f", "--etcd", "127.0.0.1:1"], noEnv);
  assert.deepEqual(await takeEarlyProbe(["http://127.0.0.1:1"]), {
    kind: "unknown",
  });
});
