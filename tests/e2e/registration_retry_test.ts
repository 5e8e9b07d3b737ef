/**
 * A node that loses its lease while etcd refuses to grant a new one (a
 * NOSPACE alarm: etcd answers, so it is not an outage) keeps trying and is
 * registered again once the operator clears the alarm. Before, the first
 * refused grant ended the re-registration for good: the process stayed up,
 * unregistered, never claiming, and no supervisor restarted it.
 */
import assert from "node:assert/strict";
import { Etcd3 } from "etcd3";
import {
  notYet,
  readNode,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";

async function etcdctl(endpoint: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, ...args],
    env: { ETCDCTL_API: "3" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `etcdctl ${args.join(" ")}: ${text}`);
  return text;
}

Deno.test("lease lost while etcd is out of space: the node keeps registering and is back once the alarm is cleared", async () => {
  await using etcd = await startEtcd({
    extraArgs: ["--quota-backend-bytes=6000000"],
  });
  await using node = await startNode(etcd, { nodeId: "nospace-1" });
  const first = await readNode(etcd, "nospace-1");
  assert.ok(first, "registered");
  // Fill etcd until it raises NOSPACE and refuses every write and lease
  // grant (then etcdctl: the client's breaker opens on the refusals).
  const c = new Etcd3({ hosts: etcd.endpoint });
  let full = false;
  try {
    const big = "x".repeat(1_000_000);
    for (let i = 0; i < 30 && !full; i++) {
      await c.put(`/fill/${i}`).value(big).catch(() => full = true);
    }
  } finally {
    c.close();
  }
  assert.ok(full, "etcd took 30 MB under a 6 MB quota");
  assert.match(await etcdctl(etcd.endpoint, "alarm", "list"), /NOSPACE/);
  // The lease goes, as after a pause or a partition longer than its TTL.
  await etcdctl(
    etcd.endpoint,
    "lease",
    "revoke",
    BigInt(first.lease).toString(16),
  );
  await waitFor("the node to retry its registration", () => {
    const warned = node.logs().find((l) =>
      l.msg === "registration failed: retrying"
    );
    return warned ?? notYet(node.logTail());
  });
  // The operator clears the alarm.
  await etcdctl(etcd.endpoint, "del", "--prefix", "/fill/");
  await etcd.compact();
  await etcdctl(etcd.endpoint, "defrag");
  await etcdctl(etcd.endpoint, "alarm", "disarm");
  const again = await waitFor("nospace-1 registered again", async () => {
    const rec = await readNode(etcd, "nospace-1");
    return rec && rec.lease !== first.lease ? rec : notYet(rec);
  }, { timeoutMs: 20_000 });
  assert.equal(again.value.pid, node.pid);
  assert.ok(node.running);
});

Deno.test("at start, an etcd answer that is the operator's to fix (auth on, no credentials) fails the start with the reason instead of retrying", async () => {
  await using etcd = await startEtcd();
  await etcdctl(etcd.endpoint, "user", "add", "root:rootpw");
  await etcdctl(etcd.endpoint, "auth", "enable");
  await using node = await startNode(etcd, {
    nodeId: "noauth-1",
    waitRegistered: false,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    node.exited,
    new Promise<null>((r) => timer = setTimeout(() => r(null), 20_000)),
  ]).finally(() => clearTimeout(timer));
  assert.ok(status !== null, `still running after 20 s:\n${node.logTail()}`);
  assert.notEqual(status.code, 0);
  const failed = node.logs().find((l) => l.msg === "start failed");
  assert.ok(failed, node.logTail());
  assert.ok(
    !node.logs().some((l) => l.msg === "registration failed: retrying"),
    "retried a refusal that will not go away by itself",
  );
});
