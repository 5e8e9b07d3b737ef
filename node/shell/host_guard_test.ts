import assert from "node:assert/strict";
import { hostNames, hostRefusal } from "./host_guard.ts";

const req = (host: string | null) => {
  const r = new Request("http://127.0.0.1:7001/internal/view");
  if (host === null) r.headers.delete("host");
  else r.headers.set("host", host);
  return r;
};
const status = (host: string | null, names = hostNames("node-a", [])) =>
  hostRefusal(req(host), names)?.status ?? 200;

Deno.test("host guard: addresses, localhost and the node's own names pass; any other name is 421", async () => {
  for (
    const ok of [
      "127.0.0.1:7001",
      "10.1.2.3",
      "[::1]:7001",
      "localhost:7001",
      "LocalHost.",
      "app.localhost",
      "node-a:7001",
      "NODE-A",
    ]
  ) {
    assert.equal(status(ok), 200, ok);
  }
  assert.equal(status(null), 200, "no Host: not a browser");
  for (
    const bad of [
      "evil.example",
      "evil.example:7001",
      "node-b",
      "localhost.evil.example",
      "127.0.0.1.evil.example",
    ]
  ) {
    assert.equal(status(bad), 421, bad);
  }
  const r = hostRefusal(req("evil.example:7001"), hostNames("127.0.0.1", []))!;
  assert.equal(
    await r.text(),
    'Host "evil.example:7001" is not a name of this node: list it in BOI_HTTP_HOSTS (DNS rebinding guard)\n',
  );
  assert.equal(
    status("boi.example.com", hostNames("0.0.0.0", ["boi.example.com"])),
    200,
  );
  assert.equal(status("evil.example", hostNames("0.0.0.0", ["*"])), 200);
});
