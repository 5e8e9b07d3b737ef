import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startEtcd } from "../../tests/harness/mod.ts";
import { Keys } from "../keys.ts";
import { listAdmins, setAdmin } from "./admin.ts";
import { IdentityError } from "./errors.ts";

const keys = new Keys("/boi/");

/** A live-looking caps record (no lease: the test owns it) with the admin flag. */
function caps(admin: boolean): string {
  return JSON.stringify({
    static: {
      os: "linux",
      arch: "x86_64",
      ...(admin ? { cluster_admin: "true" } : {}),
    },
    dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
  });
}

Deno.test("admin revoke: two admins revoking each other at once leave exactly one; the last one is refused", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  // Several rounds: each revoke reads the other grant before either commits
  // (both awaits interleave), which is the race the guard compare closes.
  for (let round = 0; round < 5; round++) {
    for (const id of ["adm-a", "adm-b"]) {
      await client.put(keys.admin(id)).value(
        JSON.stringify({ granted_at: 1, granted_by: "adm-a" }),
      );
      await client.put(keys.caps(id)).value(caps(true));
    }
    const results = await Promise.allSettled([
      setAdmin(client, keys, "adm-a", "adm-b", false),
      setAdmin(client, keys, "adm-b", "adm-a", false),
    ]);
    const left = await listAdmins(client, keys);
    assert.equal(
      left.length,
      1,
      `round ${round}: admins left ${JSON.stringify(left)}, results ${
        JSON.stringify(results.map((r) => r.status))
      }`,
    );
    const refused = results.filter((r) => r.status === "rejected");
    assert.equal(refused.length, 1, `round ${round}: one revoke refused`);
    const err = (refused[0] as PromiseRejectedResult).reason;
    assert.ok(err instanceof IdentityError, String(err));
    // Refused either as the last admin, or because its actor had just lost the flag.
    assert.match(
      err.message,
      /it is the last cluster_admin|is not cluster_admin/,
    );
    const survivor = left[0];
    const caps0 = JSON.parse(
      (await client.get(keys.caps(survivor)).string())!,
    );
    assert.equal(caps0.static.cluster_admin, "true", "the survivor's caps");
  }
});

Deno.test("admin revoke: an actor revoked while its own revoke is in flight does not commit it (its grant is compared at commit, and it is re-checked on every try)", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  for (let round = 0; round < 8; round++) {
    for (const id of ["adm-a", "adm-b", "adm-c"]) {
      await client.put(keys.admin(id)).value(
        JSON.stringify({ granted_at: 1, granted_by: "adm-a" }),
      );
      await client.put(keys.caps(id)).value(caps(true));
    }
    const from = await etcd.revision() + 1;
    // adm-a revokes adm-b while adm-c revokes adm-a.
    await Promise.allSettled([
      setAdmin(client, keys, "adm-a", "adm-b", false),
      setAdmin(client, keys, "adm-c", "adm-a", false),
    ]);
    // The grants' deletions, in commit order, from etcd's history.
    const deleted: { id: string; rev: number }[] = [];
    const to = await etcd.revision();
    for (let rev = from; rev <= to; rev++) {
      for (const id of ["adm-a", "adm-b"]) {
        const before = await client.kv.range({
          key: Buffer.from(keys.admin(id)),
          revision: String(rev - 1),
        });
        const after = await client.kv.range({
          key: Buffer.from(keys.admin(id)),
          revision: String(rev),
        });
        if (before.kvs.length === 1 && after.kvs.length === 0) {
          deleted.push({ id, rev });
        }
      }
    }
    const aGone = deleted.find((d) => d.id === "adm-a");
    const bGone = deleted.find((d) => d.id === "adm-b");
    assert.ok(aGone, `round ${round}: adm-c's revoke of adm-a committed`);
    assert.ok(
      bGone === undefined || bGone.rev < aGone.rev,
      `round ${round}: adm-a revoked adm-b at revision ${bGone?.rev}, after it lost its own grant at ${aGone.rev}`,
    );
    assert.ok((await listAdmins(client, keys)).includes("adm-c"));
  }
});
