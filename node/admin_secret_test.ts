import assert from "node:assert/strict";
import {
  ADMIN_SECRET_HEADER,
  isAdminSecret,
  newAdminSecret,
  refuseMutating,
  secretsEqual,
} from "./admin_secret.ts";
import { handleHttp } from "./shell/http.ts";

Deno.test("admin secret: 32 random bytes, base64url", () => {
  const a = newAdminSecret();
  assert.ok(isAdminSecret(a), a);
  assert.notEqual(a, newAdminSecret());
  assert.ok(!isAdminSecret(a + "x"));
  assert.ok(secretsEqual(a, a));
  assert.ok(!secretsEqual(a, a.slice(0, -1) + (a.endsWith("A") ? "B" : "A")));
  assert.ok(!secretsEqual(a, ""));
});

Deno.test("refuseMutating: browsers never, the CLI with the secret only", () => {
  const s = newAdminSecret();
  const h = (o: Record<string, string>) => new Headers(o);
  assert.equal(refuseMutating(h({ [ADMIN_SECRET_HEADER]: s }), s), null);
  assert.equal(
    refuseMutating(
      h({ [ADMIN_SECRET_HEADER]: s, "sec-fetch-site": "none" }),
      s,
    ),
    null,
    "typed into the address bar is not cross-origin (and is a GET anyway)",
  );
  for (
    const o of <Record<string, string>[]> [
      { origin: "http://evil.example" },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { "sec-fetch-site": "same-origin" },
    ]
  ) {
    const r = refuseMutating(h({ ...o, [ADMIN_SECRET_HEADER]: s }), s);
    assert.equal(r?.status, 403, JSON.stringify(o));
    assert.match(r!.error, /browser requests/);
  }
  assert.equal(refuseMutating(h({}), s)?.status, 403);
  assert.match(refuseMutating(h({}), s)!.error, /missing x-boi-admin-secret/);
  assert.match(
    refuseMutating(h({ [ADMIN_SECRET_HEADER]: "nope" }), s)!.error,
    /wrong x-boi-admin-secret/,
  );
  assert.equal(
    refuseMutating(h({ [ADMIN_SECRET_HEADER]: s }), null)?.status,
    503,
  );
});

Deno.test("handleHttp: without a gate every POST is refused", async () => {
  for (
    const path of [
      "/internal/logs/sweep",
      "/internal/dispatch-rejected",
      "/internal/plugins/pool/restart",
      "/anything",
    ]
  ) {
    const r = await handleHttp(
      new Request(`http://127.0.0.1:1${path}`, { method: "POST" }),
      () => null,
    );
    assert.equal(r.status, 403, path);
    await r.body?.cancel();
  }
});
