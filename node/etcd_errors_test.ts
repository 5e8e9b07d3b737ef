import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { freePort, startEtcd } from "../tests/harness/mod.ts";
import { connectEtcd } from "./etcd_client.ts";
import {
  deadline,
  EtcdNoAnswerError,
  EtcdUnreachableError,
  isUnreachable,
} from "./etcd_errors.ts";
import { runTxn } from "./shell/etcd_io.ts";
import { RegistrationRefused } from "./shell/registration.ts";

/** The error `f` rejects with; fails the test if it resolves. */
async function failure(what: string, f: () => Promise<unknown>) {
  try {
    await f();
  } catch (e) {
    return e;
  }
  assert.fail(`${what}: expected a failure, it succeeded`);
}

/** Resolves once every thread of `pid` is stopped (state T in /proc), within 5 s. */
async function allStopped(pid: number): Promise<void> {
  let seen = "";
  for (const t0 = Date.now(); Date.now() - t0 < 5000;) {
    const states = [...Deno.readDirSync(`/proc/${pid}/task`)].map((t) =>
      Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`)
        .replace(/^.*\) /s, "")[0]
    );
    seen = states.join("");
    if (states.every((c) => c === "T" || c === "t")) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`etcd ${pid} not stopped within 5 s: thread states ${seen}`);
}

function describe(e: unknown): string {
  const err = e as Error;
  return `${err?.constructor?.name}: ${err?.message}`;
}

Deno.test("isUnreachable: what a closed port, a frozen etcd and an open breaker give through the node's client is an outage", async () => {
  const closed = connectEtcd([`http://127.0.0.1:${freePort()}`]);
  try {
    const seen = [
      await failure("range, closed port", () => closed.get("/k").string()),
      // The node's own txn path, through the pool; three failures open the
      // host's breaker, and the next call is refused by it.
      ...await Promise.all(
        [0, 1, 2].map((i) =>
          failure(`txn ${i}, closed port`, () => runTxn(closed, [], [], 500))
        ),
      ),
      await failure("txn, breaker open", () => runTxn(closed, [], [], 500)),
    ];
    for (const e of seen) assert.ok(isUnreachable(e), describe(e));
    assert.ok(
      seen.some((e) => describe(e).startsWith("BrokenCircuitError")),
      `no call met the open breaker: ${seen.map(describe).join(" / ")}`,
    );
  } finally {
    closed.close();
  }

  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  try {
    assert.equal(await client.get("/k").string(), null);
    etcd.members[0].signal("SIGSTOP");
    // kill(2) returns before every thread has stopped: on a loaded machine a
    // thread still running answered the range (a red .ci/run). Wait for all.
    await allStopped(etcd.members[0].pid!);
    const late = await failure(
      "range, frozen etcd",
      () => client.kv.range({ key: Buffer.from("/k") }, deadline(300)),
    );
    assert.ok(isUnreachable(late), describe(late));
    assert.match(describe(late), /^GRPCDeadlineExceededError/);
  } finally {
    etcd.members[0].signal("SIGCONT");
    client.close();
  }
});

Deno.test("isUnreachable: etcd's refusals are answers, not outages", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  try {
    await client.put("/a").value("1");
    const r = await client.put("/a").value("2").exec();
    await client.kv.compact({ revision: r.header.revision });
    const refusals = [
      await failure(
        "a value over etcd's request limit",
        () => client.put("/big").value("x".repeat(3 * 1024 * 1024)).exec(),
      ),
      await failure(
        "a read at a compacted revision",
        () => client.kv.range({ key: Buffer.from("/a"), revision: "1" }),
      ),
      await failure(
        "a txn over etcd's 128 operations",
        () =>
          runTxn(
            client,
            [],
            Array.from({ length: 200 }, (_, i) => ({
              op: "put" as const,
              key: `/many/${i}`,
              value: "v",
            })),
          ),
      ),
    ];
    for (const e of refusals) assert.ok(!isUnreachable(e), describe(e));
  } finally {
    client.close();
  }
});

Deno.test("isUnreachable: our own errors count by their class, never by the words they quote", () => {
  for (
    const e of [
      new Error('node id "connect-1" is taken by a live node'),
      new RegistrationRefused('node id "deadline-timed-out" is taken'),
      new Error('tasks[0].id: got "No connection"'),
      Object.assign(new Error("3 INVALID_ARGUMENT"), { code: 3 }),
      "14 UNAVAILABLE",
      null,
    ]
  ) assert.ok(!isUnreachable(e), String(e));
  for (
    const e of [
      new EtcdNoAnswerError("a keepalive", 666),
      new EtcdUnreachableError(["http://127.0.0.1:2379"], "no route"),
      Object.assign(new Error("raw grpc-js"), { code: 14 }),
      Object.assign(new Error("raw grpc-js"), { code: 4 }),
      Object.assign(new Error("socket"), { code: "ECONNREFUSED" }),
      // etcd3 gives it its generic class: the status is 13, the text tells.
      new (class GRPCInternalError extends Error {})(
        "13 INTERNAL: Received RST_STREAM with code 2 triggered by internal client error: write EPIPE",
      ),
      new Deno.errors.ConnectionRefused("dial"),
    ]
  ) assert.ok(isUnreachable(e), String(e));
});
