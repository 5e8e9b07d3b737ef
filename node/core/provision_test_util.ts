/** Helpers of provision_test.ts: a view of an admin node with a provisioner, and the shell's part played by hand. */
import assert from "node:assert/strict";
import { Keys } from "../keys.ts";
import { EVENT_PAYLOADS } from "../hooks/event_schemas.ts";
import { testEnvelope } from "../test_envelope.ts";
import { applyEffects, applyEvent } from "./apply.ts";
import type { Effect, EmitEffect, TxnEffect } from "./effects.ts";
import type { KeyChange, NodeEvent } from "./events.ts";
import { handle } from "./handlers.ts";
import { hintHash } from "./provision_note.ts";
import type {
  ProvisionOpenEffect,
  ProvisionWriteEffect,
} from "./provision_types.ts";
import { emptyView, type MutableView } from "./view.ts";

export const keys = new Keys("/boi/");
let rev = 100;

export const HINT = { "x-test-pool": "mac" };
export const HASH = hintHash(HINT);
export const CFG = {
  deadline_ms: 2000,
  cooldown_ms: 10_000,
  failure_limit: 3,
  req_ttl_s: 30,
};

export function put(key: string, value: unknown, lease = "0"): KeyChange {
  rev++;
  return {
    key,
    revision: rev,
    kv: {
      value: typeof value === "string" ? value : JSON.stringify(value),
      mod_revision: rev,
      create_revision: rev,
      lease,
    },
  };
}

export function node(id: string, caps: Record<string, string>, startedAt = 0) {
  return [
    put(keys.node(id), {
      node_id: id,
      addr: "x:1",
      version: "0",
      started_at: startedAt,
      pid: 1,
    }, "9"),
    put(keys.caps(id), {
      static: { os: "linux", arch: "x86_64", ...caps },
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
    }),
  ];
}

/** `mac-1` (caps `HINT`) joins at 1500 and claims `s1.t0` at 1600: a fitting node for the request. */
export function macJoinsAndClaims(v: MutableView): void {
  step(v, { type: "changes", at: 1500, changes: node("mac-1", HINT, 1400) });
  step(v, {
    type: "changes",
    at: 1600,
    changes: [put(keys.claim("s1.t0"), {
      node_id: "mac-1",
      lease_id: "9",
      claimed_at: 1550,
      attempt: 1,
    }, "9")],
  });
}

/** An admin node `adm` (with a provisioner unless `provision: null`) and 5 tasks needing a mac. */
export function adminView(
  opts: { admin?: boolean; provision?: typeof CFG | null } = {},
): MutableView {
  const v = emptyView({
    node_id: "adm",
    workers_max: 4,
    static_caps: { os: "linux", arch: "x86_64" },
    spill_after_ms: 1000,
    spill_step_ms: 100,
    retry_backoff_ms: 1000,
    cancel_grace_ms: 1000,
    claim_failure_window_ms: 300_000,
    claim_failure_limit: 3,
    claim_failure_cooldown_ms: 300_000,
    provision: opts.provision === undefined ? CFG : opts.provision,
  });
  applyEvent(v, keys, {
    type: "lease_granted",
    at: 0,
    lease_id: "7",
    valid_until: 1e15,
  });
  const changes: KeyChange[] = [
    put(keys.spec("s1"), {
      spec_id: "s1",
      yaml: "",
      sha256: "x",
      dispatched_by: "t",
      dispatched_at: 0,
      task_ids: [],
    }),
    put(keys.node("adm"), {
      node_id: "adm",
      addr: "x:1",
      version: "0",
      started_at: 0,
      pid: 1,
    }, "7"),
    put(keys.caps("adm"), {
      static: {
        os: "linux",
        arch: "x86_64",
        ...(opts.admin === false ? {} : { cluster_admin: "true" }),
      },
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
    }),
  ];
  for (let i = 0; i < 5; i++) {
    changes.push(
      put(keys.task(`s1.t${i}`), testEnvelope(`s1.t${i}`, { requires: HINT })),
    );
  }
  step(v, { type: "changes", at: 0, changes });
  return v;
}

export function step(v: MutableView, ev: NodeEvent): Effect[] {
  for (const w of applyEvent(v, keys, ev)) throw new Error(w);
  const effects = handle(v, keys, ev);
  applyEffects(v, effects, ev.at);
  // Every provisioning event matches its payload schema (docs/events.md).
  for (const e of effects) {
    if (e.kind !== "emit" || !e.event.startsWith("provision.")) continue;
    const schema = EVENT_PAYLOADS[e.event as keyof typeof EVENT_PAYLOADS];
    const r = schema.safeParse(e.payload);
    assert.ok(r.success, `${e.event}: ${JSON.stringify(r.error?.issues)}`);
  }
  // Task transactions commit at once (this file is about provisioning).
  for (const e of effects) {
    if (e.kind !== "txn") continue;
    applyEvent(v, keys, {
      type: "txn_done",
      at: ev.at,
      effect: e,
      ok: true,
      revision: ++rev,
      error: null,
    });
  }
  return effects;
}

export const tick = (v: MutableView, at: number) =>
  step(v, { type: "tick", at });
export const opens = (es: Effect[]) =>
  es.filter((e): e is ProvisionOpenEffect =>
    e.kind === "provision" && e.action === "open"
  );
export const writes = (es: Effect[]) =>
  es.filter((e): e is ProvisionWriteEffect =>
    e.kind === "provision" && e.action === "write"
  );
export const emits = (es: Effect[], event: string) =>
  es.filter((e): e is EmitEffect => e.kind === "emit" && e.event === event);

/** Plays the shell's part of an open: the txn lands, Allocate answers. */
export function opened(
  v: MutableView,
  e: ProvisionOpenEffect,
  at: number,
): Effect[] {
  const out = openLanded(v, e, at);
  out.push(...step(v, {
    type: "provision",
    at,
    req_id: e.req_id,
    step: "allocated",
    allocation_id: `alloc-${e.req_id}`,
  }));
  return out;
}

/** The open's txn landed (token "tok"); Allocate is still in flight. */
export function openLanded(
  v: MutableView,
  e: ProvisionOpenEffect,
  at: number,
): Effect[] {
  const out = step(v, {
    type: "changes",
    at,
    changes: [
      put(keys.provisionReq(e.req_id), e.record, "55"),
      put(keys.provisionFailures(e.hint_hash), e.failures),
    ],
  });
  out.push(...step(v, {
    type: "provision",
    at,
    req_id: e.req_id,
    step: "opened",
    revision: rev,
    token_id_sha256: "tok",
    token_revision: rev - 1,
  }));
  return out;
}

/** Plays the shell's part of a write: the ops land, the outcome is reported. */
export function written(
  v: MutableView,
  e: ProvisionWriteEffect,
  at: number,
): Effect[] {
  const changes: KeyChange[] = e.success.map((op) =>
    op.op === "put" ? put(op.key, op.value, op.lease) : (rev++, {
      key: op.key,
      revision: rev,
      kv: null,
    })
  );
  step(v, { type: "changes", at, changes });
  return step(v, {
    type: "provision",
    at,
    req_id: e.req_id,
    step: "written",
    ok: true,
    effect: e,
    error: null,
  });
}

export const txnsOf = (es: Effect[]) =>
  es.filter((e): e is TxnEffect => e.kind === "txn");
