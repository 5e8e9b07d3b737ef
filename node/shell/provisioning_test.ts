import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startEtcd } from "../../tests/harness/mod.ts";
import { Keys } from "../keys.ts";
import type { NodeEvent } from "../core/events.ts";
import type { ProvisionOpenEffect } from "../core/provision_types.ts";
import type { AllocateRequest } from "../plugins/contracts.ts";
import { connectEtcd } from "../etcd_client.ts";
import { EtcdNoAnswerError } from "../etcd_errors.ts";
import { etcdPool } from "./etcd_pool.ts";
import { Logger } from "./log.ts";
import { type ProvisionDeps, ProvisionRunner } from "./provisioning.ts";

const keys = new Keys("/boi/");

/** An open effect as the core makes it for a fresh requires (no failure record yet). */
function openEffect(reqId: string): ProvisionOpenEffect {
  const hint = { "x-test-pool": "mac" };
  return {
    kind: "provision",
    action: "open",
    req_id: reqId,
    hint,
    hint_hash: "h1",
    record: {
      req_id: reqId,
      hint,
      hint_hash: "h1",
      requested_at: 1,
      requested_by: "adm",
      deadline_at: 60_001,
    },
    failures: { count: 0, cooldown_until: 0, hint, attempts: 1 },
    compare: [
      { key: keys.provisionReq(reqId), target: "version", equals: 0 },
      { key: keys.provisionFailures("h1"), target: "version", equals: 0 },
    ],
    ttl_s: 30,
    token_ttl_s: 30,
    deadline_ms: 60_000,
  };
}

/** A runner against `etcd` whose mint writes a token key and whose provisioner records its calls. */
function runner(
  etcd: Awaited<ReturnType<typeof startEtcd>>,
  url: string | null,
  client = etcd.client(),
  afterMint = () => {},
) {
  const events: NodeEvent[] = [];
  const allocs: AllocateRequest[] = [];
  let minted = 0;
  const deps: ProvisionDeps = {
    provisioner: {
      allocate: (req) => {
        allocs.push(req);
        return Promise.resolve({ allocation_id: `a-${req.request_id}` });
      },
      deallocate: () => Promise.resolve(),
    },
    mint: async () => {
      const hash = `tok${++minted}`;
      const put = await etcd.client().put(keys.joinToken(hash)).value("{}");
      afterMint();
      return {
        token: `jwt-${hash}`,
        token_id_sha256: hash,
        revision: Number(put.header.revision),
      };
    },
    bootstrapUrl: () => url,
  };
  const r = new ProvisionRunner({
    client,
    keys,
    log: new Logger({}, "error"),
    deps,
    push: (ev) => events.push(ev),
  });
  return { r, events, allocs };
}

async function until<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 200; i++) {
    const v = await f();
    if (v !== undefined) return v;
    last = v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}: ${String(last)}`);
}

const steps = (events: NodeEvent[]) =>
  events.map((e) => e.type === "provision" ? e.step : e.type);

Deno.test("open: mint, the request under its own lease with the token's hash, Allocate with token and URL, the allocation id recorded", async () => {
  await using etcd = await startEtcd();
  const { r, events, allocs } = runner(etcd, "https://127.0.0.1:7400");
  r.run(openEffect("h1-1"));
  const rec = await until("the allocation id in the request", async () => {
    const v = await etcd.client().get(keys.provisionReq("h1-1")).json() as
      | Record<string, unknown>
      | null;
    return v?.allocation_id ? v : undefined;
  });
  assert.deepEqual(steps(events), ["opened", "allocated"]);
  assert.equal(rec.allocation_id, "a-h1-1");
  assert.equal(rec.token_id_sha256, "tok1");
  assert.equal(allocs.length, 1);
  assert.equal(allocs[0].request_id, "h1-1");
  assert.equal(allocs[0].join_token, "jwt-tok1");
  assert.equal(allocs[0].bootstrap_url, "https://127.0.0.1:7400");
  assert.equal(allocs[0].deadline_ms, 60_000);
  const kv = (await etcd.client().kv.range({
    key: Buffer.from(keys.provisionReq("h1-1")),
  })).kvs[0];
  assert.notEqual(String(kv.lease), "0", "under its own lease");
  const ttl = await etcd.client().leaseClient.leaseTimeToLive({ ID: kv.lease });
  assert.ok(Number(ttl.TTL) > 0 && Number(ttl.TTL) <= 30, `TTL ${ttl.TTL}`);
  const f = await etcd.client().get(keys.provisionFailures("h1")).json();
  assert.deepEqual(f, openEffect("h1-1").failures);
});

Deno.test("open refused: a failed compare writes nothing and revokes the minted token; no join listener: nothing is minted", async () => {
  await using etcd = await startEtcd();
  // Another admin got there first: the failure record exists.
  await etcd.client().put(keys.provisionFailures("h1")).value(
    JSON.stringify({ count: 0, cooldown_until: 0, attempts: 1 }),
  );
  const { r, events, allocs } = runner(etcd, "https://127.0.0.1:7400");
  r.run(openEffect("h1-1"));
  await until("the refusal", () => events.length > 0 ? true : undefined);
  assert.deepEqual(steps(events), ["open_refused"]);
  assert.match(
    (events[0] as { error: string }).error,
    /^compare failed: another admin opened one/,
  );
  assert.equal(allocs.length, 0, "no Allocate");
  assert.equal(
    await etcd.client().get(keys.provisionReq("h1-1")).string(),
    null,
  );
  assert.deepEqual(
    await etcd.client().getAll().prefix(keys.dir("join-tokens")).keys(),
    [],
    "the token minted for it is revoked",
  );

  const none = runner(etcd, null);
  none.r.run(openEffect("h1-2"));
  await until("the refusal", () => none.events.length > 0 ? true : undefined);
  assert.deepEqual(steps(none.events), ["open_refused"]);
  assert.match(
    (none.events[0] as { error: string }).error,
    /^no join listener here/,
  );
  assert.deepEqual(
    await etcd.client().getAll().prefix(keys.dir("join-tokens")).keys(),
    [],
    "nothing minted",
  );
});

Deno.test("open with no answer: a request that committed anyway goes with its lease, and its token is revoked", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  // The open's transaction commits, then its answer is lost.
  const pool = etcdPool(client);
  const withConnection = pool.withConnection.bind(pool);
  let armed = false;
  pool.withConnection = async <T>(
    service: "KV" | "Watch",
    fn: Parameters<typeof withConnection<T>>[1],
  ): Promise<Awaited<T>> => {
    const r = await withConnection(service, fn);
    if (service === "KV" && armed) {
      armed = false;
      throw new EtcdNoAnswerError("the open", 5000);
    }
    return r;
  };
  try {
    const { r, events, allocs } = runner(
      etcd,
      "https://127.0.0.1:7400",
      client,
      () => armed = true,
    );
    r.run(openEffect("h1-1"));
    await until("the refusal", () => events.length > 0 ? true : undefined);
    assert.deepEqual(steps(events), ["open_refused"]);
    assert.equal(allocs.length, 0, "no Allocate");
    // The failure record went in the same transaction; the request did too,
    // and its lease revoked takes it away: no open request is left to hold
    // "one per requires" for its whole TTL.
    assert.ok(await etcd.client().get(keys.provisionFailures("h1")).string());
    assert.equal(
      await etcd.client().get(keys.provisionReq("h1-1")).string(),
      null,
      "the request stayed",
    );
    assert.deepEqual(
      await etcd.client().getAll().prefix(keys.dir("join-tokens")).keys(),
      [],
      "the token minted for it is revoked",
    );
  } finally {
    client.close();
  }
});
