/**
 * etcd's Txn request and response (etcdserverpb.TxnRequest / TxnResponse,
 * etcd 3.4's rpc.proto), encoded and decoded by hand for the node's
 * compare-guarded writes (etcd_io.ts `runTxn`, `runTxns`). Through the etcd3
 * library a Txn is built as generic objects (every key and value a Buffer,
 * every int64 a string), encoded by protobufjs and its answer decoded back
 * into objects the caller reads three fields of; here the request goes from
 * the core's `Compare`/`Op` lists straight to bytes, and the answer straight
 * to what `TxnOutcome` needs: the revision, whether each (nested)
 * transaction succeeded, and the KeyValues its failure branch read.
 * @module
 */
import type { Compare, Op } from "../core/effects.ts";
import type { KeyChange } from "../core/events.ts";
import { headerRevision, keyValue, Reader, Writer } from "./proto_wire.ts";

/** One transaction: its compares (all "equal"), the ops if they hold, the keys read if not. */
export interface TxnSpec {
  compare: readonly Compare[];
  success: readonly Op[];
  readKeys?: readonly string[];
}

/** A decoded TxnResponse: its revision, outcome, and per response op its range reads or nested answer. */
export interface TxnReply {
  revision: number;
  succeeded: boolean;
  /** One per response op, in order: a range's KeyValues, a nested transaction's reply, or null. */
  responses: (KeyChange[] | TxnReply | null)[];
}

// Compare.CompareTarget and the oneof field that carries its value.
const TARGET = { version: 0, create: 1, mod: 2 } as const;
const TARGET_FIELD = { version: 4, create: 5, mod: 6 } as const;

function writeTxn(w: Writer, t: TxnSpec): void {
  for (const c of t.compare) {
    const at = w.begin(1);
    // result EQUAL is 0, proto3's default: not written.
    if (TARGET[c.target] !== 0) {
      w.tag(2, 0);
      w.varint(TARGET[c.target]);
    }
    w.string(3, c.key);
    // The oneof value is written even when 0 (version 0: "absent").
    w.tag(TARGET_FIELD[c.target], 0);
    w.varint(c.equals);
    if (c.range_end !== undefined) w.string(64, c.range_end);
    w.end(at);
  }
  for (const op of t.success) {
    const at = w.begin(2);
    if (op.op === "put") {
      const put = w.begin(2);
      w.string(1, op.key);
      w.string(2, op.value);
      if (op.lease !== undefined) w.decimal(3, op.lease);
      w.end(put);
    } else {
      const del = w.begin(3);
      w.string(1, op.key);
      w.end(del);
    }
    w.end(at);
  }
  for (const key of t.readKeys ?? []) {
    const at = w.begin(3);
    const range = w.begin(1);
    w.string(1, key);
    w.end(range);
    w.end(at);
  }
}

/** TxnRequest of one transaction. */
export function encodeTxn(t: TxnSpec): Uint8Array {
  const w = new Writer();
  writeTxn(w, t);
  return w.finish();
}

/**
 * TxnRequest with no compare whose success branch is one nested transaction
 * per entry: each commits or fails on its own compares, at one revision.
 */
export function encodeNestedTxns(txns: readonly TxnSpec[]): Uint8Array {
  const w = new Writer();
  for (const t of txns) {
    const op = w.begin(2);
    const nested = w.begin(4);
    writeTxn(w, t);
    w.end(nested);
    w.end(op);
  }
  return w.finish();
}

/** Decodes a TxnResponse. Throws on malformed bytes. */
export function decodeTxnReply(buf: Uint8Array): TxnReply {
  return txnReply(new Reader(buf));
}

function txnReply(r: Reader): TxnReply {
  const out: TxnReply = { revision: 0, succeeded: false, responses: [] };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) out.revision = headerRevision(r);
    else if (tag === (2 << 3)) out.succeeded = r.uint32() !== 0;
    else if (tag === ((3 << 3) | 2)) out.responses.push(responseOp(r));
    else r.skip(tag & 7);
  }
  return out;
}

/** ResponseOp: a range's KeyValues (field 1), a nested txn's reply (4); put and delete answers are not read. */
function responseOp(outer: Reader): KeyChange[] | TxnReply | null {
  const r = outer.sub();
  let out: KeyChange[] | TxnReply | null = null;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) out = rangeKvs(r.sub());
    else if (tag === ((4 << 3) | 2)) out = txnReply(r.sub());
    else r.skip(tag & 7);
  }
  return out;
}

function rangeKvs(r: Reader): KeyChange[] {
  const kvs: KeyChange[] = [];
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === ((2 << 3) | 2)) kvs.push(keyValue(r.sub(), false));
    else r.skip(tag & 7);
  }
  return kvs;
}
