import assert from "node:assert/strict";
import { createCa } from "./ca.ts";
import { peekClaims, signToken, verifyToken } from "./token.ts";

const { ca } = await createCa("t");
const other = (await createCa("other")).ca;

Deno.test("token: a minted token verifies and carries exactly the SPEC claims", async () => {
  const now = 1_800_000_000_000;
  const { token, claims } = await signToken(ca, { "x-a-b": "c" }, 300, now);
  const got = await verifyToken(token, ca.cert_pem, ca.fingerprint, now + 1000);
  assert.deepEqual(got, claims);
  assert.equal(claims.exp, now / 1000 + 300);
  const payload = JSON.parse(
    atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")),
  );
  assert.deepEqual(Object.keys(payload).sort(), [
    "ca_fingerprint",
    "cap_hint",
    "exp",
    "token_id",
  ]);
  assert.deepEqual(JSON.parse(atob(token.split(".")[0])), {
    alg: "ES256",
    typ: "JWT",
  });
});

Deno.test("token: expired, tampered, foreign and forged tokens are refused with one line each", async () => {
  const now = 1_800_000_000_000;
  const { token } = await signToken(ca, {}, 60, now);
  assert.match(
    String(await verifyToken(token, ca.cert_pem, ca.fingerprint, now + 61_000)),
    /^the token expired at /,
  );
  const [h, , s] = token.split(".");
  const body = btoa(
    JSON.stringify({
      ...peekClaims(token) as object,
      cap_hint: { "x-a-b": "z" },
    }),
  )
    .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  assert.match(
    String(
      await verifyToken(`${h}.${body}.${s}`, ca.cert_pem, ca.fingerprint, now),
    ),
    /signature does not verify/,
  );
  const foreign = (await signToken(other, {}, 60, now)).token;
  assert.match(
    String(await verifyToken(foreign, ca.cert_pem, ca.fingerprint, now)),
    /belongs to another cluster/,
  );
  const forged =
    (await signToken({ ...other, fingerprint: ca.fingerprint }, {}, 60, now))
      .token;
  assert.match(
    String(await verifyToken(forged, ca.cert_pem, ca.fingerprint, now)),
    /signature does not verify/,
  );
  assert.equal(
    await verifyToken("nope", ca.cert_pem, ca.fingerprint, now),
    "the token is not a JWT",
  );
  for (
    const r of [
      await verifyToken(token, ca.cert_pem, ca.fingerprint, now + 61_000),
    ]
  ) {
    assert.ok(!String(r).includes("\n"));
  }
});
