import assert from "node:assert/strict";
import { applyEvent } from "./apply.ts";
import { JOIN_GRACE_MS } from "./provision.ts";
import {
  adminView,
  CFG,
  emits,
  HASH,
  HINT,
  keys,
  macJoinsAndClaims,
  node,
  opened,
  openLanded,
  opens,
  put,
  step,
  tick,
  txnsOf,
  writes,
  written,
} from "./provision_test_util.ts";

Deno.test("one request for five tasks of one requires, opened by compare on the request and the failure record", () => {
  const v = adminView();
  const first = opens(tick(v, 1000));
  assert.equal(first.length, 1);
  const e = first[0];
  assert.equal(e.req_id, `${HASH.slice(0, 8)}-1-${(1).toString(36)}`);
  assert.deepEqual(e.hint, HINT);
  assert.deepEqual(e.compare, [
    { key: keys.provisionReq(e.req_id), target: "version", equals: 0 },
    { key: keys.provisionFailures(HASH), target: "version", equals: 0 },
  ]);
  assert.equal(e.record.deadline_at, 1000 + CFG.deadline_ms);
  assert.equal(e.ttl_s, 30);
  assert.equal(opens(tick(v, 1100)).length, 0, "in flight: no second open");
  const out = opened(v, e, 1200);
  assert.equal(emits(out, "provision.requested").length, 1);
  // Every task says what is happening.
  const notes = txnsOf(tick(v, 1300)).map((t) =>
    JSON.parse((t.success[0] as { value: string }).value).last_error
  );
  assert.equal(notes.length, 5);
  for (const n of notes) {
    assert.equal(
      n,
      `provisioning node for {"x-test-pool":"mac"} (req ${e.req_id})`,
    );
  }
  assert.equal(opens(tick(v, 1400)).length, 0, "open: no second request");
});

Deno.test("deadline → Deallocate and a counted failure; 3 failures → cooldown, then a new attempt", () => {
  const v = adminView();
  let at = 1000;
  let next = opens(tick(v, at));
  for (let i = 1; i <= 3; i++) {
    const [o] = next;
    assert.ok(o, `attempt ${i} opens`);
    assert.match(o.req_id, new RegExp(`^${HASH.slice(0, 8)}-${i}-[0-9a-z]+$`));
    opened(v, o, at);
    assert.equal(writes(tick(v, o.record.deadline_at - 1)).length, 0);
    at = o.record.deadline_at;
    const [w] = writes(tick(v, at));
    assert.ok(w, `attempt ${i} fails at its deadline`);
    assert.equal(w.deallocate, `alloc-${o.req_id}`);
    assert.ok(
      w.success.some((op) =>
        op.op === "delete" && op.key === keys.provisionReq(o.req_id)
      ),
    );
    assert.ok(
      w.success.some((op) =>
        op.op === "delete" && op.key === keys.joinToken("tok")
      ),
      "the token is revoked",
    );
    const f = JSON.parse(
      (w.success.find((op) => op.key === keys.provisionFailures(HASH)) as {
        value: string;
      }).value,
    );
    assert.equal(f.count, i);
    assert.equal(f.cooldown_until, i === 3 ? at + CFG.cooldown_ms : 0);
    const out = written(v, w, at);
    const failed = emits(out, "provision.failed").map((e) => e.payload.reason);
    assert.deepEqual(failed, i === 3 ? ["deadline", "cooldown"] : ["deadline"]);
    // The next attempt is decided with the outcome (none once cooling down).
    next = opens(out);
    assert.equal(next.length, i === 3 ? 0 : 1);
    at += 100;
  }
  const cooldownUntil = at - 100 + CFG.cooldown_ms;
  for (; at < cooldownUntil; at += 1000) {
    assert.equal(opens(tick(v, at)).length, 0, `no open in cooldown at ${at}`);
  }
  const note = txnsOf(tick(v, cooldownUntil - 1))[0];
  assert.equal(note, undefined, "notes were written once already");
  const env = v.tasks.get("s1.t0")!.value;
  assert.ok(env.state === "PENDING");
  const after = opens(tick(v, cooldownUntil));
  assert.equal(after.length, 1, "a new attempt after the cooldown");
  assert.match(
    after[0].req_id,
    new RegExp(`^${HASH.slice(0, 8)}-4-[0-9a-z]+$`),
  );
});

Deno.test("the cooldown note on the task; an unreadable failure record blocks provisioning (fail closed)", () => {
  const v = adminView();
  step(v, {
    type: "changes",
    at: 0,
    changes: [put(keys.provisionFailures(HASH), {
      count: 3,
      cooldown_until: 50_000,
      last_reason: "no node joined within 2000 ms",
    })],
  });
  const out = tick(v, 1000);
  assert.equal(opens(out).length, 0);
  const note = JSON.parse(
    (txnsOf(out)[0].success[0] as { value: string }).value,
  ).last_error;
  assert.equal(
    note,
    "provisioning in cooldown until 1970-01-01T00:00:50.000Z after 3 failures (no node joined within 2000 ms)",
  );

  const w = adminView();
  applyEvent(w, keys, {
    type: "changes",
    at: 0,
    changes: [put(keys.provisionFailures(HASH), "{not json")],
  });
  const blocked = tick(w, 1000);
  assert.equal(opens(blocked).length, 0, "unreadable record: no request");
  assert.match(
    JSON.parse((txnsOf(blocked)[0].success[0] as { value: string }).value)
      .last_error,
    /^provisioning blocked: the failure record .* is unreadable/,
  );
});

Deno.test("a fitting node joins and claims → fulfilled_by by CAS, provision.fulfilled with the latency, failures reset", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  opened(v, o, 1100);
  macJoinsAndClaims(v);
  const [w] = writes(tick(v, 1700));
  assert.ok(w);
  assert.equal(w.deallocate, null);
  const req = JSON.parse(
    (w.success.find((op) => op.key === keys.provisionReq(o.req_id)) as {
      value: string;
    }).value,
  );
  assert.equal(req.fulfilled_by, "mac-1");
  assert.equal(req.allocation_id, `alloc-${o.req_id}`);
  assert.equal(
    (w.success.find((op) => op.key === keys.provisionReq(o.req_id)) as {
      lease?: string;
    }).lease,
    "55",
    "kept under its own lease",
  );
  assert.deepEqual(w.compare[0], {
    key: keys.provisionReq(o.req_id),
    target: "mod",
    equals: v.provision.reqs.get(o.req_id)!.mod_revision,
  });
  const out = written(v, w, 1800);
  const [f] = emits(out, "provision.fulfilled");
  assert.equal(f.payload.latency_ms, 550);
  assert.equal(f.payload.node_id, "mac-1");
  assert.equal(v.provision.local.size, 0);
  assert.equal(opens(tick(v, 5000)).length, 0, "a fitting node is live");
});

Deno.test("Allocate failing (plugin crash) closes the request at once as a counted failure", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  openLanded(v, o, 1001);
  const out = step(v, {
    type: "provision",
    at: 1003,
    req_id: o.req_id,
    step: "allocate_failed",
    error: "UNAVAILABLE: plugin exited",
  });
  const [w] = writes(out);
  assert.ok(w, "closed without waiting for the deadline");
  assert.equal(w.deallocate, null, "nothing was allocated");
  const f = JSON.parse(
    (w.success.find((op) => op.key === keys.provisionFailures(HASH)) as {
      value: string;
    }).value,
  );
  assert.equal(f.count, 1);
  assert.match(f.last_reason, /Allocate failed: UNAVAILABLE/);
});

Deno.test("no provisioning on a node that is not cluster_admin, or has no provisioner", () => {
  assert.equal(opens(tick(adminView({ admin: false }), 1000)).length, 0);
  const plain = adminView({ provision: null });
  assert.equal(opens(tick(plain, 1000)).length, 0);
  assert.equal(plain.tasks.get("s1.t0")!.value.last_error, "no capable node");
});

Deno.test("a request opened by another admin is respected: no second one", () => {
  const v = adminView();
  step(v, {
    type: "changes",
    at: 0,
    changes: [put(keys.provisionReq("other-1"), {
      req_id: "other-1",
      hint: HINT,
      hint_hash: HASH,
      requested_at: 0,
      requested_by: "adm-2",
      deadline_at: 60_000,
    }, "77")],
  });
  assert.equal(opens(tick(v, 1000)).length, 0);
});

Deno.test("a request of this node's previous run is taken up again and closed at its deadline", () => {
  const v = adminView();
  const req = {
    req_id: `${HASH.slice(0, 8)}-1`,
    hint: HINT,
    hint_hash: HASH,
    requested_at: 500,
    requested_by: "adm",
    allocation_id: "alloc-old",
    deadline_at: 2500,
    token_id_sha256: "oldtok",
  };
  const warnings = applyEvent(v, keys, {
    type: "changes",
    at: 1000,
    changes: [put(keys.provisionReq(req.req_id), req, "55")],
  });
  assert.match(warnings[0], /taken up again/);
  assert.equal(opens(tick(v, 1100)).length, 0, "its request is open");
  assert.equal(writes(tick(v, 2000)).length, 0);
  const [w] = writes(tick(v, 2500));
  assert.equal(w.deallocate, "alloc-old");
  assert.ok(w.success.some((op) => op.key === keys.joinToken("oldtok")));
});

Deno.test("a fitting node that joined but claimed nothing by the deadline still fulfils (latency null), no failure", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  opened(v, o, 1100);
  // The tasks are gone (cancelled, say): the new node has nothing to claim.
  step(v, { type: "changes", at: 1500, changes: node("mac-1", HINT, 1400) });
  const [w] = writes(tick(v, o.record.deadline_at));
  assert.ok(w);
  assert.equal(w.deallocate, null, "the node joined: nothing to take back");
  const [f] = emits(written(v, w, o.record.deadline_at), "provision.fulfilled");
  assert.equal(f.payload.latency_ms, null);
  assert.equal(f.payload.node_id, "mac-1");
});

Deno.test("a close that committed while etcd's answer was lost is counted once and announced once", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  opened(v, o, 1000);
  const at = o.record.deadline_at;
  const [w] = writes(tick(v, at));
  assert.ok(w, "closed at the deadline");
  // The transaction committed (its changes arrive on the watch), but the
  // shell saw a timeout: "written", not ok, with the error.
  const changes = w.success.map((op) =>
    op.op === "put"
      ? put(op.key, op.value, op.lease)
      : { ...put(op.key, ""), kv: null }
  );
  step(v, { type: "changes", at, changes });
  const lost = step(v, {
    type: "provision",
    at: at + 1000,
    req_id: o.req_id,
    step: "written",
    ok: false,
    effect: w,
    error: "etcd: deadline exceeded",
  });
  assert.deepEqual(emits(lost, "provision.failed"), [], "not known yet");
  // Decided again from the record the close wrote: recognised, not repeated.
  const [again] = writes(lost);
  assert.ok(again, "one more write: the confirmation");
  assert.deepEqual(again.success, [], "nothing written twice");
  assert.equal(
    again.deallocate,
    `alloc-${o.req_id}`,
    "taken back now: a write without an answer runs no Deallocate",
  );
  const out = written(v, again, at + 1100);
  assert.deepEqual(
    emits(out, "provision.failed").map((
      e,
    ) => [e.payload.reason, e.payload.failures]),
    [["deadline", 1]],
  );
  assert.ok(!v.provision.local.has(o.req_id), "forgotten");
  assert.equal(v.provision.failures.get(HASH)?.value.count, 1, "counted once");
  const [next] = opens(out);
  assert.ok(next, "the next attempt is opened");
  assert.equal(next.failures.count, 1);
});

Deno.test("Allocate failed with its outcome unknown, but the node it made joined and claimed → fulfilled, no failure counted", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  openLanded(v, o, 1001);
  // While the shell asked Allocate again, the machine joined and claimed.
  macJoinsAndClaims(v);
  const out = step(v, {
    type: "provision",
    at: o.record.deadline_at,
    req_id: o.req_id,
    step: "allocate_failed",
    error: "outcome unknown after 4 tries",
  });
  const [w] = writes(out);
  assert.ok(w);
  assert.equal(
    JSON.parse(
      (w.success.find((op) => op.key === keys.provisionReq(o.req_id)) as {
        value: string;
      }).value,
    ).fulfilled_by,
    "mac-1",
  );
  assert.deepEqual(
    emits(written(v, w, o.record.deadline_at + 1), "provision.failed"),
    [],
  );
  assert.equal(v.provision.failures.get(HASH)?.value.count, 0);
});

Deno.test("a request of an admin that is gone, past its deadline → closed by this admin (failure counted, token revoked, Deallocate), then a new one opened", () => {
  const v = adminView();
  const REQ = `${HASH.slice(0, 8)}-1`;
  const record = {
    req_id: REQ,
    hint: HINT,
    hint_hash: HASH,
    requested_at: 500,
    requested_by: "adm2", // no node record: not a live member
    deadline_at: 3000,
    allocation_id: "alloc-x",
    token_id_sha256: "tokx",
  };
  step(v, {
    type: "changes",
    at: 600,
    changes: [
      put(keys.provisionReq(REQ), record, "66"),
      put(keys.provisionFailures(HASH), {
        count: 0,
        cooldown_until: 0,
        hint: HINT,
        attempts: 1,
      }),
    ],
  });
  assert.deepEqual(writes(tick(v, 2999)), [], "before its deadline: respected");
  assert.deepEqual(opens(tick(v, 2999)), []);
  const [w] = writes(tick(v, 3000));
  assert.ok(w, "taken over at its deadline");
  assert.equal(w.deallocate, "alloc-x");
  assert.deepEqual(w.compare[0], {
    key: keys.provisionReq(REQ),
    target: "mod",
    equals: v.provision.reqs.get(REQ)!.mod_revision,
  });
  assert.ok(
    w.success.some((op) =>
      op.op === "delete" && op.key === keys.joinToken("tokx")
    ),
  );
  assert.deepEqual(writes(tick(v, 3100)), [], "in flight: not sent twice");
  const out = written(v, w, 3200);
  assert.deepEqual(
    emits(out, "provision.failed").map((e) => e.payload.reason),
    ["deadline"],
  );
  assert.equal(v.provision.failures.get(HASH)?.value.count, 1);
  const [next] = opens(out);
  assert.ok(next, "a new request, by this admin, at once");
  assert.match(next.req_id, new RegExp(`^${HASH.slice(0, 8)}-2-[0-9a-z]+$`));
});

Deno.test("a live admin's request is never taken over, even past its deadline", () => {
  const v = adminView();
  step(v, {
    type: "changes",
    at: 100,
    changes: node("adm2", { cluster_admin: "true" }),
  });
  step(v, {
    type: "changes",
    at: 600,
    changes: [put(keys.provisionReq("r-1"), {
      req_id: "r-1",
      hint: HINT,
      hint_hash: HASH,
      requested_at: 500,
      requested_by: "adm2",
      deadline_at: 3000,
    }, "66")],
  });
  assert.deepEqual(writes(tick(v, 60_000)), []);
  assert.deepEqual(opens(tick(v, 60_000)), []);
});

Deno.test("a request id is new even when the failure record that counts attempts was deleted (review: ids repeated, and Allocate is idempotent per id)", () => {
  const v = adminView();
  const [a] = opens(tick(v, 1000));
  opened(v, a, 1000);
  // The operator deletes the (say, unreadable) failure record; the request goes.
  applyEvent(v, keys, {
    type: "changes",
    at: 1100,
    changes: [
      { key: keys.provisionFailures(HASH), revision: 9000, kv: null },
      { key: keys.provisionReq(a.req_id), revision: 9000, kv: null },
    ],
  });
  v.provision.local.delete(a.req_id);
  const [b] = opens(tick(v, 2000));
  assert.ok(b, "opened again");
  assert.notEqual(b.req_id, a.req_id);
  assert.match(b.req_id, new RegExp(`^${HASH.slice(0, 8)}-1-`));
});

/** A delete of `key` at the history's next revision. */
const gone = (key: string) => ({ ...put(key, {}), kv: null });

Deno.test("the deadline close compares the token as minted; a join that used it first gets JOIN_GRACE_MS to register and fulfils the request (review: the close took back a node that had just joined)", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  opened(v, o, 1000);
  const local = v.provision.local.get(o.req_id)!;
  // Not used: the close at the deadline carries the token's compare.
  const probe = adminView();
  const [o2] = opens(tick(probe, 1000));
  opened(probe, o2, 1000);
  const [close] = writes(tick(probe, o2.record.deadline_at));
  assert.ok(close, "closed at its deadline");
  assert.deepEqual(
    close.compare.find((c) => c.key === keys.joinToken("tok")),
    {
      key: keys.joinToken("tok"),
      target: "mod",
      equals: probe.provision.local.get(o2.req_id)!.token_revision,
    },
  );
  // Used: a node was admitted just before the deadline (the token deleted by
  // its join) and has not registered yet.
  step(v, {
    type: "changes",
    at: local.deadline_at - 50,
    changes: [gone(keys.joinToken("tok"))],
  });
  assert.equal(v.provision.local.get(o.req_id)!.token_used, true);
  assert.deepEqual(writes(tick(v, local.deadline_at)), [], "waits for it");
  assert.deepEqual(
    writes(tick(v, local.deadline_at + 500)),
    [],
    "still within the grace",
  );
  // It registers: the request is fulfilled, nothing taken back.
  step(v, {
    type: "changes",
    at: local.deadline_at + 1000,
    changes: node("mac-9", HINT, local.deadline_at + 900),
  });
  const [w] = writes(tick(v, local.deadline_at + 1100));
  assert.ok(w, "fulfilled");
  assert.equal(w.deallocate, null);
  assert.deepEqual(
    emits([w as never, ...w.emits], "provision.fulfilled").length,
    1,
  );
});

Deno.test("a used token whose node never registers: the request fails once the grace is over", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  opened(v, o, 1000);
  const deadline = o.record.deadline_at;
  step(v, {
    type: "changes",
    at: deadline - 50,
    changes: [gone(keys.joinToken("tok"))],
  });
  assert.deepEqual(writes(tick(v, deadline + JOIN_GRACE_MS - 1)), []);
  const [w] = writes(tick(v, deadline + JOIN_GRACE_MS));
  assert.ok(w, "closed after the grace");
  assert.equal(w.deallocate, `alloc-${o.req_id}`);
  assert.equal(
    w.compare.some((c) => c.key === keys.joinToken("tok")),
    false,
    "no compare on a token that is gone",
  );
});

Deno.test("a token used while the watch was away (a relist without it): the request waits the grace, then fails without comparing it (review: the close compared a gone token forever)", () => {
  const v = adminView();
  const [o] = opens(tick(v, 1000));
  opened(v, o, 1000);
  const deadline = o.record.deadline_at;
  // What etcd holds now, relisted: everything of the view, no token key.
  const kvs = [
    ...[...v.provision.reqs].map(([id, r]) => ({
      key: keys.provisionReq(id),
      revision: r.mod_revision,
      kv: {
        value: JSON.stringify(r.value),
        mod_revision: r.mod_revision,
        create_revision: r.create_revision,
        lease: r.lease,
      },
    })),
    ...[...v.provision.failures].map(([id, f]) => ({
      key: keys.provisionFailures(id),
      revision: f.mod_revision,
      kv: {
        value: JSON.stringify(f.value),
        mod_revision: f.mod_revision,
        create_revision: f.create_revision,
        lease: f.lease,
      },
    })),
  ];
  step(v, { type: "relist", at: deadline - 10, revision: 90_000, kvs });
  assert.equal(v.provision.local.get(o.req_id)!.token_used, true);
  assert.deepEqual(writes(tick(v, deadline + 1)), [], "the grace");
  const [w] = writes(tick(v, deadline + JOIN_GRACE_MS));
  assert.ok(w, "closed after the grace");
  assert.equal(w.compare.some((c) => c.key === keys.joinToken("tok")), false);
});
