/**
 * An in-memory model of etcd for the simulator: one revision counter, keys
 * with create/mod revision and version, transactions (nested too) whose
 * compares are evaluated like etcd's, leases on the virtual clock, and prefix
 * watches that pull from a bounded history (a watcher behind the compacted
 * revision gets an error and must re-list, as with the real etcd).
 */
import type { Compare, Op } from "../core/effects.ts";
import type { KeyChange } from "../core/events.ts";
import type { Scheduler } from "./scheduler.ts";

export interface ModelKv {
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease: string;
  /** The record as a watch change, made on first read. */
  change?: KeyChange;
}

/** One transaction of a request: compares, operations, and the keys to read back on failure. */
export interface ModelTxn {
  compare: Compare[];
  success: Op[];
  /** Keys whose current values come back when the compare fails. */
  read_on_failure?: string[];
}

export interface ModelTxnResult {
  ok: boolean;
  /** Current records of `read_on_failure` (null: absent), on failure only. */
  reads: (KeyChange | null)[];
}

/** Who wrote and why: the invariant checker's view of a commit. */
export interface CommitInfo {
  revision: number;
  writer: string;
  txn: ModelTxn;
  /** Values before the commit of every key the transaction wrote. */
  before: Map<string, ModelKv | undefined>;
}

interface Lease {
  id: string;
  ttl_ms: number;
  expires_at: number;
  keys: Set<string>;
}

/** Thrown where etcd answers with an error rather than a failed compare. */
export class ModelError extends Error {}

export class EtcdModel {
  revision = 1;
  readonly kv = new Map<string, ModelKv>();
  readonly #leases = new Map<string, Lease>();
  #nextLease = 0x1000;
  /** Changes per revision since `compacted` (inclusive of later ones). */
  readonly history: { revision: number; changes: KeyChange[] }[] = [];
  compacted = 0;
  /** False while the whole etcd is down (every request fails). */
  up = true;
  readonly #watchers = new Set<() => void>();
  onCommit: (c: CommitInfo) => void = () => {};

  constructor(readonly sched: Scheduler) {}

  /** Runs a request of one or more transactions at one revision (etcd's nested txn). */
  txn(writer: string, txns: ModelTxn[]): ModelTxnResult[] {
    const results: ModelTxnResult[] = [];
    const changes: KeyChange[] = [];
    const rev = this.revision + 1;
    const infos: CommitInfo[] = [];
    for (const t of txns) {
      for (const op of t.success) {
        if (op.op === "put" && op.lease && op.lease !== "0") {
          if (!this.#leases.has(op.lease)) {
            throw new ModelError("etcdserver: requested lease not found");
          }
        }
      }
    }
    for (const t of txns) {
      if (!t.compare.every((c) => this.#holds(c))) {
        results.push({
          ok: false,
          reads: (t.read_on_failure ?? []).map((k) => this.read(k)),
        });
        continue;
      }
      const before = new Map<string, ModelKv | undefined>();
      for (const op of t.success) {
        before.set(op.key, this.kv.get(op.key));
        if (op.op === "put") this.#put(op.key, op.value, op.lease ?? "0", rev);
        else if (!this.#delete(op.key)) continue;
        changes.push(this.#change(op.key, rev));
      }
      infos.push({ revision: rev, writer, txn: t, before });
      results.push({ ok: true, reads: [] });
    }
    if (changes.length > 0) this.#commit(rev, changes);
    for (const i of infos) this.onCommit(i);
    return results;
  }

  /** The current record of a key as a watch change (null: absent). */
  read(key: string): KeyChange | null {
    const kv = this.kv.get(key);
    if (!kv) return null;
    // One change object per record version, shared by every reader (the
    // watch history, relists, read-backs): the reducer decodes it once.
    return kv.change ??= {
      key,
      revision: kv.mod_revision,
      kv: {
        value: kv.value,
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
        lease: kv.lease,
      },
    };
  }

  /** Every key under a prefix at the current revision. */
  list(prefix: string): { revision: number; kvs: KeyChange[] } {
    const kvs: KeyChange[] = [];
    for (const k of [...this.kv.keys()].sort()) {
      if (k.startsWith(prefix)) kvs.push(this.read(k)!);
    }
    return { revision: this.revision, kvs };
  }

  grant(ttl_ms: number): string {
    const id = String(this.#nextLease++);
    this.#leases.set(id, {
      id,
      ttl_ms,
      expires_at: this.sched.now + ttl_ms,
      keys: new Set(),
    });
    this.#scheduleExpiry(id, ttl_ms);
    return id;
  }

  /** Refreshes a lease; returns its TTL in ms, 0 when it is gone (as etcd answers). */
  keepalive(id: string): number {
    const l = this.#leases.get(id);
    if (!l) return 0;
    l.expires_at = this.sched.now + l.ttl_ms;
    return l.ttl_ms;
  }

  revoke(id: string): void {
    const l = this.#leases.get(id);
    if (!l) return;
    this.#leases.delete(id);
    const rev = this.revision + 1;
    const changes: KeyChange[] = [];
    for (const k of [...l.keys].sort()) {
      if (this.#delete(k)) changes.push({ key: k, revision: rev, kv: null });
    }
    if (changes.length > 0) this.#commit(rev, changes);
  }

  /** etcd renews every lease when it comes back (a restart or a new leader). */
  restoreLeases(): void {
    for (const l of this.#leases.values()) {
      l.expires_at = this.sched.now + l.ttl_ms;
    }
  }

  compact(): void {
    this.compacted = this.revision;
    this.history.length = 0;
  }

  /** Registers a callback run on every commit (watchers pull from `history`). */
  subscribe(fn: () => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /** History entries after `rev`, or null if some were compacted away. */
  since(rev: number): { revision: number; changes: KeyChange[] }[] | null {
    if (rev < this.compacted) return null;
    const h = this.history;
    // Binary search: history is ordered by revision.
    let lo = 0, hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (h[mid].revision <= rev) lo = mid + 1;
      else hi = mid;
    }
    return h.slice(lo);
  }

  #scheduleExpiry(id: string, delay: number): void {
    this.sched.after(delay, () => {
      const l = this.#leases.get(id);
      if (!l) return;
      // A down etcd expires nothing; it renews every lease when it returns.
      if (!this.up) return this.#scheduleExpiry(id, l.ttl_ms);
      if (this.sched.now >= l.expires_at) this.revoke(id);
      else this.#scheduleExpiry(id, l.expires_at - this.sched.now);
    });
  }

  #holds(c: Compare): boolean {
    if (c.range_end !== undefined) {
      const end = c.range_end;
      let any = false;
      for (const k of this.kv.keys()) {
        if (k < c.key || k >= end) continue;
        any = true;
        if (!this.#holds({ key: k, target: c.target, equals: c.equals })) {
          return false;
        }
      }
      return any || c.equals === 0;
    }
    const kv = this.kv.get(c.key);
    const actual = kv === undefined
      ? 0
      : c.target === "mod"
      ? kv.mod_revision
      : c.target === "create"
      ? kv.create_revision
      : kv.version;
    return actual === c.equals;
  }

  #put(key: string, value: string, lease: string, rev: number): void {
    const old = this.kv.get(key);
    if (old && old.lease !== "0") this.#leases.get(old.lease)?.keys.delete(key);
    this.kv.set(key, {
      value,
      create_revision: old?.create_revision ?? rev,
      mod_revision: rev,
      version: (old?.version ?? 0) + 1,
      lease,
    });
    if (lease !== "0") this.#leases.get(lease)?.keys.add(key);
  }

  #delete(key: string): boolean {
    const old = this.kv.get(key);
    if (!old) return false;
    if (old.lease !== "0") this.#leases.get(old.lease)?.keys.delete(key);
    this.kv.delete(key);
    return true;
  }

  #change(key: string, rev: number): KeyChange {
    const kv = this.kv.get(key);
    return kv ? this.read(key)! : { key, revision: rev, kv: null };
  }

  #commit(rev: number, changes: KeyChange[]): void {
    this.revision = rev;
    this.history.push({ revision: rev, changes });
    for (const w of this.#watchers) w();
  }
}
