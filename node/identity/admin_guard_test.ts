/**
 * A token minted or a join admitted on an admin's behalf carries its
 * authority to the commit: a revoke that lands between the admin check and
 * the write makes the write fail (`adminGuard`).
 */
import assert from "node:assert/strict";
import { makeTempDir, startEtcd } from "../../tests/harness/mod.ts";
import { connectEtcd } from "../etcd_client.ts";
import { Keys } from "../keys.ts";
import { etcdPool } from "../shell/etcd_pool.ts";
import { Logger } from "../shell/log.ts";
import { setAdmin } from "./admin.ts";
import type { IdentityDeps } from "./deps.ts";
import { initCluster } from "./init.ts";
import { admit } from "./join_service.ts";
import { mintToken } from "./mint.ts";
import { generateKeyPair, SIGN_ALG, x509 } from "./x509.ts";

const keys = new Keys("/boi/");
const CAPS = JSON.stringify({
  static: { os: "linux" },
  dynamic: { workers_busy: 0, workers_max: 1, health: "ok" },
});

/**
 * adm-a (the init node, holding the CA key) and adm-b, both admin; `before`
 * runs once, just before adm-a's next call of `service` goes out.
 */
async function twoAdmins(etcd: Awaited<ReturnType<typeof startEtcd>>) {
  const client = connectEtcd([etcd.endpoint]);
  const other = etcd.client();
  for (const id of ["adm-a", "adm-b"]) {
    await other.put(keys.caps(id)).value(CAPS);
  }
  const d: IdentityDeps = {
    client,
    keys,
    nodeId: "adm-a",
    dataDir: await makeTempDir("boi-guard-"),
    etcdEndpoints: [etcd.endpoint],
    log: new Logger({}, "error"),
    joinHost: "127.0.0.1",
    joinPort: 0,
  };
  await initCluster(d, { secure: false });
  await setAdmin(client, keys, "adm-a", "adm-b", true);
  const pool = etcdPool(client);
  const withConnection = pool.withConnection.bind(pool);
  let trap: { service: string; run: () => Promise<unknown> } | null = null;
  pool.withConnection = async <T>(
    service: "KV" | "Watch",
    fn: Parameters<typeof withConnection<T>>[1],
  ): Promise<Awaited<T>> => {
    const t = trap;
    if (t !== null && t.service === service) {
      trap = null;
      await t.run();
    }
    return await withConnection(service, fn);
  };
  return {
    d,
    other,
    /** adm-b revokes adm-a just before adm-a's next `service` call. */
    revokeBefore(service: string) {
      trap = {
        service,
        run: () => setAdmin(other, keys, "adm-b", "adm-a", false),
      };
    },
    [Symbol.asyncDispose]: async () => {
      client.close();
      await Deno.remove(d.dataDir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test("admin guard: a revoke between mint's admin check and its write leaves no token", async () => {
  await using etcd = await startEtcd();
  await using c = await twoAdmins(etcd);
  // The token's lease is granted right before the write.
  c.revokeBefore("Lease");
  await assert.rejects(
    () => mintToken(c.d, {}, 60),
    /PermissionDenied: node adm-a stopped being cluster_admin while minting/,
  );
  assert.deepEqual(
    await c.other.getAll().prefix(keys.dir("join-tokens")).keys(),
    [],
  );
});

Deno.test("admin guard: a revoke between a join's admin check and the token's consume admits nobody", async () => {
  await using etcd = await startEtcd();
  await using c = await twoAdmins(etcd);
  const { token } = await mintToken(c.d, {}, 60);
  const pair = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=joiner",
    keys: pair,
    signingAlgorithm: SIGN_ALG,
  });
  const body = {
    token,
    node_id: "joiner",
    caps: {},
    csr: csr.toString("pem"),
  };
  // The join's KV calls: the CA record, the grant, the caps (the admin
  // check), the node id, the token, the consume. The revoke goes just before
  // the token's read: after the check, before the write.
  let kvCalls = 0;
  const pool = etcdPool(c.d.client);
  const counted = pool.withConnection.bind(pool);
  pool.withConnection = <T>(
    service: "KV" | "Watch",
    fn: Parameters<typeof counted<T>>[1],
  ): Promise<Awaited<T>> => {
    if (service === "KV" && ++kvCalls === 5) c.revokeBefore("KV");
    return counted(service, fn);
  };
  await assert.rejects(
    () => admit(c.d, body),
    /join refused: PermissionDenied: node adm-a stopped being cluster_admin while admitting joiner/,
  );
  assert.equal(
    (await c.other.getAll().prefix(keys.dir("join-tokens")).keys()).length,
    1,
    "the token was consumed",
  );
});
