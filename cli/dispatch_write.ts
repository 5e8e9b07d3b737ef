/**
 * Writing a dispatch to etcd: the envelopes in transactions of at most 128
 * ops and 1 MB, each comparing the spec key, and the spec record (the commit
 * marker) in the last one; on a failure, the chunks already written are
 * taken back.
 */
import { Buffer } from "node:buffer";
import type { IRequestOp, ITxnResponse } from "etcd3";
import type { Keys } from "../node/keys.ts";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { MAX_STORED_BYTES, type ParsedSpec } from "../node/spec.ts";
import { CliError } from "./context.ts";
import {
  type DispatchInProgress,
  ENVELOPE_HEADROOM_BYTES,
  RECORD_MAX_BYTES,
} from "../node/schema.ts";
import { neverSent, type Store } from "./store.ts";
import {
  deleteOp,
  leaseIs,
  modIs,
  noneUnder,
  putRawOp,
  versionIs,
} from "./txn_ops.ts";

/** etcd's limit on operations per transaction (compares and puts each). */
export const MAX_TXN_OPS = 128;
/**
 * Envelopes per transaction: besides its puts' compares, each compares the
 * spec key and (a dispatch of several) the marker; the last also puts the
 * record and deletes the marker, so compares and ops stay within 128.
 */
export const PUTS_PER_TXN = MAX_TXN_OPS - 3;
/** Budget per transaction, well under etcd's default 1.5 MiB request limit. */
export const MAX_TXN_BYTES = 1_000_000;
/** Largest envelope a dispatch stores: what a node accepts, less what nodes add to it. */
export const MAX_ENVELOPE_BYTES = RECORD_MAX_BYTES["dispatch-queue"] -
  ENVELOPE_HEADROOM_BYTES;
const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** 6 chars of [a-z2-7]; 256 is a multiple of 32, so `byte & 31` is unbiased. */
export function randomSuffix(
  bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(6)),
): string {
  return [...bytes.subarray(0, 6)].map((b) => SUFFIX_ALPHABET[b & 31]).join(
    "",
  );
}

/** One key/value to create. */
export interface Put {
  key: string;
  value: string;
}

/** The puts of one transaction; the last chunk also carries the spec record. */
export interface Chunk {
  puts: Put[];
  withSpec: boolean;
}

/**
 * Splits the writes of a dispatch into transactions of at most 128 ops and
 * `maxBytes`, the spec record in the last one; throws if a record cannot fit
 * or the whole dispatch would store more than `maxStored` bytes.
 */
export function planChunks(
  keys: Keys,
  parsed: ParsedSpec,
  maxBytes = MAX_TXN_BYTES,
  maxStored = MAX_STORED_BYTES,
): Chunk[] {
  const specKey = keys.spec(parsed.spec_id);
  const specBytes = 2 * specKey.length + byteLength(
    JSON.stringify(parsed.record),
  );
  if (specBytes > maxBytes) {
    throw new CliError(
      `spec ${parsed.spec_id} is too large to store: its record is ${specBytes} bytes, at most ${maxBytes}`,
    );
  }
  const chunks: Chunk[] = [];
  let cur: Put[] = [];
  // Every transaction also compares the spec key: count it once.
  let bytes = specKey.length;
  let stored = byteLength(specKey) + specBytes - 2 * specKey.length;
  for (const e of parsed.envelopes) {
    const put = { key: keys.task(e.task_id), value: JSON.stringify(e) };
    const size = 2 * byteLength(put.key) + byteLength(put.value);
    stored += size - byteLength(put.key);
    if (stored > maxStored) {
      throw new CliError(
        `spec ${parsed.spec_id} would store more than ${maxStored} bytes in etcd (${parsed.envelopes.length} tasks, ${
          Math.round(size / 1024)
        } KiB each): make the spec-level requires smaller or split the spec`,
      );
    }
    const envelope = byteLength(put.value);
    if (envelope > MAX_ENVELOPE_BYTES) {
      throw new CliError(
        `task ${e.task_id} is too large to store: its envelope is ${envelope} bytes, at most ${MAX_ENVELOPE_BYTES} (nodes add up to ${ENVELOPE_HEADROOM_BYTES} as it runs)`,
      );
    }
    if (size + specKey.length > maxBytes) {
      throw new CliError(
        `task ${e.task_id} is too large to store: ${size} bytes, at most ${maxBytes}`,
      );
    }
    if (cur.length === PUTS_PER_TXN || bytes + size > maxBytes) {
      chunks.push({ puts: cur, withSpec: false });
      cur = [];
      bytes = specKey.length;
    }
    cur.push(put);
    bytes += size;
  }
  if (bytes + specBytes - specKey.length > maxBytes) {
    chunks.push({ puts: cur, withSpec: false });
    cur = [];
  }
  chunks.push({ puts: cur, withSpec: true });
  return chunks;
}

const encoder = new TextEncoder();

/** UTF-8 bytes of `s`; ids and most values are ASCII, one byte per char, so the encode is skipped for them. */
function byteLength(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return encoder.encode(s).length;
  }
  return s.length;
}

/**
 * How long a dispatch of several transactions may take, first to last: the
 * TTL of the lease its marker (`cluster/dispatching/{spec_id}`) is bound to,
 * never kept alive. While the marker is there nodes leave its envelopes
 * alone; each later transaction requires it, so a dispatcher that was
 * suspended or cut off past the TTL fails and takes its dispatch back
 * instead of committing a spec whose first tasks nodes may have deleted
 * (node/core/retire_orphans.ts). Etcd's clock, so a suspended laptop counts.
 * Long, since it costs nothing: orphans wait for the node's grace (an hour)
 * anyway, and an overloaded etcd may take a while for a large spec.
 */
export const DISPATCH_LEASE_TTL_S = 600;

/** Options of {@linkcode writeSpec}. */
export interface WriteSpecOptions {
  /**
   * The transactions, when the caller planned them already (to refuse a
   * spec too large before touching etcd): a 5,000-task plan costs ~35 ms.
   * @default planChunks(keys, parsed)
   */
  chunks?: Chunk[];
  /** @default DISPATCH_LEASE_TTL_S */
  leaseTtlS?: number;
}

/** Writes a parsed spec; `ok: false` on an id collision (then nothing is left written). */
export async function writeSpec(
  store: Store,
  keys: Keys,
  parsed: ParsedSpec,
  opts: WriteSpecOptions = {},
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const chunks = opts.chunks ?? planChunks(keys, parsed);
  const leaseTtlS = opts.leaseTtlS ?? DISPATCH_LEASE_TTL_S;
  const specKey = keys.spec(parsed.spec_id);
  const marker = keys.dispatching(parsed.spec_id);
  const written: { keys: string[]; revision: number }[] = [];
  // One transaction commits all at once: only several need the marker.
  const lease = chunks.length > 1 ? await store.grantLease(leaseTtlS) : null;
  const recordText = JSON.stringify(parsed.record);
  const tooSlow = (undone: boolean) =>
    new CliError(
      `dispatch of ${parsed.spec_id} took more than ${leaseTtlS} s from its first transaction to its last (the lease of its marker expired: suspended or cut off meanwhile): ${
        undone
          ? "taken back, nothing is left written; dispatch again"
          : "its tasks could not all be taken back (they have no spec record: nodes ignore them, then delete them)"
      }`,
    );
  try {
    for (const [i, chunk] of chunks.entries()) {
      const compare = [
        versionIs(specKey, 0),
        ...chunk.puts.map((p) => versionIs(p.key, 0)),
      ];
      // No task of this spec id at all before the first: an unfinished
      // dispatch's envelopes with other task ids would otherwise be taken
      // in under this record, run, and (BLOCKED on deps never written) keep
      // the spec open for good (review finding).
      if (i === 0) compare.push(noneUnder(`${keys.task(parsed.spec_id)}.`));
      const success: IRequestOp[] = chunk.puts.map((p) =>
        putRawOp(p.key, p.value)
      );
      if (lease === null) {
        // One transaction: no marker of its own, but none of another
        // dispatch of the same id still writing either.
        compare.push(versionIs(marker, 0));
      } else {
        if (i === 0) {
          compare.push(versionIs(marker, 0));
          const m: DispatchInProgress = {
            spec_id: parsed.spec_id,
            dispatched_by: parsed.record.dispatched_by,
            transactions: chunks.length,
          };
          success.push(putRawOp(marker, JSON.stringify(m), lease));
        } else compare.push(leaseIs(marker, lease));
        if (chunk.withSpec) success.push(deleteOp(marker));
      }
      if (chunk.withSpec) success.push(putRawOp(specKey, recordText));
      const failure = [
        specKey,
        marker,
        ...chunk.puts.slice(0, 1).map((p) => p.key),
      ].map((k) => ({ request_range: { key: Buffer.from(k) } }));
      let res: ITxnResponse;
      try {
        res = await store.txn({ compare, success, failure });
      } catch (err) {
        if (lease !== null && /lease not found/i.test(String(err))) {
          throw tooSlow(await rollback(store, written));
        }
        return await afterFailure(store, parsed, written, chunk, err);
      }
      if (!res.succeeded) {
        const kv = (n: number) => res.responses[n]?.response_range?.kvs?.[0];
        // The client asks another member again when an answer is lost
        // (node/etcd_client.ts): a retry of a transaction that did apply
        // finds its own writes. That is success, not a collision, and
        // nothing may be taken back. Proof it is ours: the record byte for
        // byte (it names the dispatcher), or, before it, the chunk's first
        // envelope byte for byte under the marker on this dispatch's lease
        // (only this dispatch's first transaction made that marker, and
        // while it is there nobody else writes this spec id's tasks; two
        // CLIs dispatching one explicit id in the same millisecond write
        // equal envelopes).
        const sameFirst = chunk.puts.length > 0 &&
          kv(2)?.value?.toString() === chunk.puts[0].value;
        const own = chunk.withSpec
          ? kv(0)?.value?.toString() === recordText ? kv(0) : undefined
          : sameFirst && String(kv(1)?.lease) === lease
          ? kv(2)
          : undefined;
        if (own !== undefined) {
          written.push({
            keys: chunk.puts.map((p) => p.key),
            revision: Number(own.mod_revision),
          });
          continue;
        }
        const undone = await rollback(store, written);
        const there = (n: number) => kv(n) !== undefined;
        if (lease !== null && i > 0 && !there(0) && !there(1)) {
          // An envelope equal to ours may be this chunk, applied before the
          // lease ran out: not provably ours, so not deleted, and said so.
          throw tooSlow(undone && !sameFirst);
        }
        return {
          ok: false,
          reason: there(0)
            ? `spec ${parsed.spec_id} already exists`
            : there(1) && (lease === null || i === 0)
            ? `spec ${parsed.spec_id} already exists: a dispatch of it is still writing`
            : `spec ${parsed.spec_id} already exists: tasks of an unfinished dispatch of it (with no spec record) are still in etcd; nodes delete them after BOI_ORPHAN_GRACE_S, then dispatch again`,
        };
      }
      written.push({
        keys: chunk.puts.map((p) => p.key),
        revision: Number(res.header.revision),
      });
    }
    return { ok: true };
  } finally {
    if (lease !== null) await store.revokeLease(lease);
  }
}

/**
 * A transaction failed. If etcd said no (not an outage), undo the chunks
 * written so far. If etcd is unreachable, undoing would fail too: say what
 * may be left (tasks without a spec record, which nodes ignore) and give up.
 */
async function afterFailure(
  store: Store,
  parsed: ParsedSpec,
  written: { keys: string[]; revision: number }[],
  chunk: Chunk,
  err: unknown,
): Promise<never> {
  if (!(err instanceof EtcdUnreachableError)) {
    if (!(await rollback(store, written))) {
      store.warn(
        `warning: dispatch of ${parsed.spec_id} failed; tasks already written could not be removed (they have no spec record, so nodes ignore them, then delete them after BOI_ORPHAN_GRACE_S)`,
      );
    }
    throw err;
  }
  if (chunk.withSpec && !neverSent(err)) {
    store.warn(
      `warning: spec ${parsed.spec_id} may or may not be committed: check with "status ${parsed.spec_id}"`,
    );
  } else if (written.length > 0 || !neverSent(err)) {
    store.warn(
      `warning: dispatch of ${parsed.spec_id} did not finish; tasks already written have no spec record, so nodes ignore them (and delete them after BOI_ORPHAN_GRACE_S)`,
    );
  }
  throw err;
}

/** Deletes chunks written so far, each guarded by its mod revision. */
async function rollback(
  store: Store,
  written: { keys: string[]; revision: number }[],
): Promise<boolean> {
  let ok = true;
  for (const w of written) {
    try {
      const res = await store.txn({
        compare: w.keys.map((k) => modIs(k, w.revision)),
        success: w.keys.map((k) => deleteOp(k)),
      });
      if (!res.succeeded) ok = false;
    } catch {
      ok = false;
    }
  }
  return ok;
}
