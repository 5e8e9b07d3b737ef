/** SPEC §12: `/healthz` is 503 *with the reason* whenever the node is not registered and reachable. */
import assert from "node:assert/strict";
import { handleHttp } from "./http.ts";

Deno.test("healthz: before registration it is 503 and says why", async () => {
  const res = await handleHttp(
    new Request("http://127.0.0.1:7001/healthz"),
    () => null,
  );
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.status, "starting");
  assert.equal(typeof body.reason, "string");
  assert.match(body.reason, /not registered/);
});
