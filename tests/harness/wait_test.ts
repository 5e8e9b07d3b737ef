/** `waitFor`: the condition wait every harness helper and test is built on. */
import assert from "node:assert/strict";
import { notYet, waitFor, WaitTimeoutError } from "./mod.ts";

Deno.test("waitFor: resolves with the first truthy value", async () => {
  let n = 0;
  const v = await waitFor("n to reach 3", () => ++n >= 3 && { n }, {
    timeoutMs: 5000,
    intervalMs: 1,
  });
  assert.deepEqual(v, { n: 3 });
});

Deno.test("waitFor: the timeout names what was awaited and the last value seen", async () => {
  let n = 0;
  const err = await waitFor(
    "the answer",
    () => notYet({ count: ++n, state: "PENDING" }),
    { timeoutMs: 200, intervalMs: 20 },
  ).then(() => null, (e) => e);
  assert.ok(err instanceof WaitTimeoutError, String(err));
  assert.match(err.message, /waiting for the answer/);
  assert.match(err.message, /state: "PENDING"/);
  assert.deepEqual(err.lastSeen, notYet({ count: n, state: "PENDING" }));

  const plain = await waitFor("x", () => false, { timeoutMs: 50 })
    .then(() => null, (e) => e);
  assert.match(String(plain), /waiting for x .*last seen: false/);
});

Deno.test("waitFor: a throwing check is retried and reported", async () => {
  let n = 0;
  assert.equal(
    await waitFor("flaky", () => {
      if (++n < 3) throw new Error(`boom ${n}`);
      return "ok";
    }, { timeoutMs: 2000, intervalMs: 1 }),
    "ok",
  );
  await assert.rejects(
    waitFor("never", () => {
      throw new Error("etcd down");
    }, { timeoutMs: 100 }),
    /waiting for never.*error: Error: etcd down/,
  );
});

Deno.test("waitFor: a hanging check does not delay the timeout", async () => {
  let release!: () => void;
  const hang = new Promise<false>((r) => release = () => r(false));
  const t0 = Date.now();
  await assert.rejects(
    waitFor("hang", () => hang, { timeoutMs: 150 }),
    /still running at the deadline/,
  );
  assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
  release();
});
