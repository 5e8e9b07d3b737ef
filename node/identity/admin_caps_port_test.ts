import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import { connectEtcd } from "../etcd_client.ts";
import { Keys } from "../keys.ts";
import type { CapsRecord } from "../schema.ts";
import { etcdCasPort } from "../shell/cas_port.ts";
import { type CasPort, CasPublisher } from "../shell/cas_publisher.ts";
import { testRegistration } from "../shell/registration_test_util.ts";
import { AdminCapsPort } from "./admin_caps_port.ts";

const keys = new Keys("/boi/");
const GRANT = JSON.stringify({ granted_at: 1, granted_by: "adm-z" });

function caps(port: AdminCapsPort, busy = 0): CapsRecord {
  return {
    static: { os: "linux", ...port.caps() },
    dynamic: { workers_busy: busy, workers_max: 4, health: "ok" },
  };
}

async function flag(
  client: ReturnType<typeof connectEtcd>,
  id: string,
): Promise<string | undefined> {
  const text = await client.get(keys.caps(id)).string();
  return text === null ? undefined : JSON.parse(text).static.cluster_admin;
}

Deno.test("admin caps: a revoke committed between the registration's read of the grant and its write is not undone", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  await client.put(keys.admin("reg-a")).value(GRANT);
  const port = new AdminCapsPort(
    etcdCasPort(client, () => {}),
    client,
    keys,
    "reg-a",
  );
  let revoked = false;
  const reg = testRegistration({
    client,
    node_id: "reg-a",
    caps: async () => {
      await port.refresh();
      if (!revoked) {
        // `cluster admin revoke reg-a` of a node not live: the grant alone.
        revoked = true;
        await client.delete().key(keys.admin("reg-a"));
      }
      return caps(port);
    },
    capsGuard: () => port.guard(),
  });
  try {
    await reg.register();
    assert.ok(revoked);
    assert.equal(await flag(client, "reg-a"), undefined, "admin after revoke");
  } finally {
    await reg.revoke();
    client.close();
  }
});

Deno.test("admin caps: after a revoke, a failed re-read of the grant leaves the caps without the flag", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  await client.put(keys.admin("pub-a")).value(GRANT);
  // Every put, and a promise per put that settles when it answers.
  const answered: Promise<void>[] = [];
  const inner = etcdCasPort(client, () => {});
  const counting: CasPort = {
    put(key, value, lease, expect, done, guard) {
      const p = Promise.withResolvers<void>();
      answered.push(p.promise);
      inner.put(key, value, lease, expect, (r) => {
        done(r);
        p.resolve();
      }, guard);
    },
  };
  const port = new AdminCapsPort(counting, client, keys, "pub-a");
  await port.refresh();
  const pub = new CasPublisher(port, keys.caps("pub-a"));
  const first = await client.put(keys.caps("pub-a")).value(
    JSON.stringify(caps(port)),
  ).exec();
  pub.reset(Number(first.header.revision), JSON.stringify(caps(port)));
  try {
    // The admin path's revoke of a live node: grant deleted, caps rewritten.
    const plain = { ...caps(port), static: { os: "linux" } };
    await client.delete().key(keys.admin("pub-a"));
    await client.put(keys.caps("pub-a")).value(JSON.stringify(plain));
    // The node publishes (busy changed); its compare fails and the re-read
    // of the grant fails too (an etcd blip).
    const refresh = port.refresh.bind(port);
    port.refresh = () => Promise.reject(new Error("14 UNAVAILABLE: blip"));
    pub.publish(JSON.stringify(caps(port, 1)), "0");
    await answered[0];
    // The old code wrote again at once with the stale flag: wait for it.
    await Promise.all(answered);
    assert.equal(await flag(client, "pub-a"), undefined, "flag written back");
    // The next publish, with the grant readable again, learns the revoke.
    port.refresh = refresh;
    pub.publish(JSON.stringify(caps(port, 2)), "0");
    const until = Date.now() + 5000;
    while (!pub.current) {
      assert.ok(Date.now() < until, "the publisher never settled");
      await Promise.all(answered);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await flag(client, "pub-a"), undefined, "flag written back");
  } finally {
    client.close();
  }
});
