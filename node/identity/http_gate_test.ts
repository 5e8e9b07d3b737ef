import assert from "node:assert/strict";
import { certGate } from "./http_gate.ts";

const req = (method: string) => new Request("https://x/", { method });

Deno.test("http gate: open mode lets everything through to the routes", () => {
  assert.equal(certGate(req("POST"), "/internal/tokens", undefined), null);
});

Deno.test("http gate: secure mode refuses /internal/* and every mutation without a cluster certificate", () => {
  const stranger = { authorized: false, cn: null };
  assert.equal(
    certGate(req("GET"), "/internal/tail/a.b", stranger)?.status,
    403,
  );
  assert.equal(
    certGate(req("POST"), "/internal/plugins/pool/restart", stranger)?.status,
    403,
  );
  assert.equal(certGate(req("POST"), "/anything", stranger)?.status, 403);
  assert.equal(certGate(req("DELETE"), "/", stranger)?.status, 403);
  assert.equal(certGate(req("GET"), "/healthz", stranger), null);
  assert.equal(certGate(req("GET"), "/api/state", stranger), null);
  const member = { authorized: true, cn: "node-1" };
  assert.equal(certGate(req("POST"), "/internal/tokens", member), null);
});
