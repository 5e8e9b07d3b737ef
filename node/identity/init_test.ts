/**
 * `cluster init` twice at once on one node (a CLI that retried after its
 * timeout): one wins, the other is refused, and the CA key on disk is the
 * key of the CA certificate etcd holds.
 */
import assert from "node:assert/strict";
import { makeTempDir, startEtcd } from "../../tests/harness/mod.ts";
import { connectEtcd } from "../etcd_client.ts";
import { Keys } from "../keys.ts";
import { Logger } from "../shell/log.ts";
import { caPaths, loadCa } from "./ca.ts";
import type { IdentityDeps } from "./deps.ts";
import { initCluster } from "./init.ts";
import { x509 } from "./x509.ts";

Deno.test("cluster init: two at once on one node leave one CA whose key is the certificate's", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  const dirs: string[] = [];
  try {
    // Fresh clusters (a prefix and a data dir each): the race is timing.
    for (let round = 0; round < 6; round++) {
      const d: IdentityDeps = {
        client,
        keys: new Keys(`/boi${round}/`),
        nodeId: "adm-a",
        dataDir: await makeTempDir("boi-init-"),
        etcdEndpoints: [etcd.endpoint],
        log: new Logger({}, "error"),
        joinHost: "127.0.0.1",
        joinPort: 0,
      };
      dirs.push(d.dataDir);
      const got = await Promise.allSettled([
        initCluster(d, { secure: false }),
        initCluster(d, { secure: false }),
      ]);
      assert.equal(
        got.filter((r) => r.status === "fulfilled").length,
        1,
        JSON.stringify(
          got.map((r) => r.status === "rejected" ? String(r.reason) : "ok"),
        ),
      );
      const refused = got.find((r) => r.status === "rejected");
      assert.match(String(refused?.reason), /already initialised/);
      const ca = await loadCa(d.dataDir);
      assert.ok(ca !== null, "no CA key kept");
      const certKey = await new x509.X509Certificate(ca.cert_pem).publicKey
        .export();
      const pub = await crypto.subtle.exportKey("jwk", certKey);
      const priv = await crypto.subtle.exportKey("jwk", ca.key);
      assert.deepEqual([priv.x, priv.y], [pub.x, pub.y], "key and cert differ");
      const stored = JSON.parse(
        (await client.get(d.keys.ca()).exec()).kvs[0].value.toString(),
      );
      assert.equal(stored.cert_pem, ca.cert_pem, "not the CA etcd holds");
      assert.deepEqual(
        [...Deno.readDirSync(caPaths(d.dataDir).dir)].map((e) => e.name)
          .filter((n) => n.includes("pending")),
        [],
      );
    }
  } finally {
    client.close();
    for (const dir of dirs) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
});
