import assert from "node:assert/strict";
import { fetchError } from "./fetch_error.ts";

Deno.test("fetchError: the reason Deno keeps in cause, without its wrapping", () => {
  const e = new TypeError("fetch failed", {
    cause: new Error(
      'error sending request for url (https://127.0.0.3:7001/x): client error (Connect): invalid peer certificate: certificate not valid for name "127.0.0.3"; certificate is only valid for DnsName("localhost")',
    ),
  });
  assert.equal(
    fetchError(e),
    'invalid peer certificate: certificate not valid for name "127.0.0.3"; certificate is only valid for DnsName("localhost")',
  );
  assert.equal(fetchError(new Error("timed out\nmore")), "timed out");
  assert.equal(fetchError("plain"), "plain");
});

Deno.test("fetchError: a refused connection names the refusal", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  const e = await fetch(`http://127.0.0.1:${port}/`).then(
    () => null,
    (err) => err,
  );
  assert.ok(e !== null, "a closed port answered");
  assert.match(fetchError(e), /refused/i);
});
