/**
 * The wire format of etcd's Watch stream (etcdserverpb.WatchRequest and
 * WatchResponse, etcd 3.4's rpc.proto and mvccpb's kv.proto), encoded and
 * decoded by hand for the node's prefix watch (watch_stream.ts). Every node
 * receives every key change of the cluster (docs/scaling.md), so the decoder
 * goes straight from the bytes to the core's `KeyChange` records: revisions
 * as numbers, keys and values as strings, the lease as its decimal string,
 * with none of the generic decoder's per-field object building and 64-bit
 * string conversions.
 */
import type { KeyChange } from "../core/events.ts";

/** One WatchResponse, as much of it as the watch needs. */
export interface WatchMessage {
  /** header.revision: the store's revision when etcd sent this response. */
  revision: number;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  /** Set when the watch was cancelled because its start revision is compacted. */
  compact_revision: number;
  cancel_reason: string;
  /** A part of a response split by etcd (only when the request asked for it). */
  fragment: boolean;
  /** The events in order; a delete is `kv: null` at the delete's revision. */
  changes: KeyChange[];
}

const utf8 = new TextDecoder();
const TWO_32 = 4294967296;

/** A cursor over one message's bytes (also txn_codec.ts's). */
export class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  /** A varint that fits in 32 bits (tags, lengths, enums, bools). */
  uint32(): number {
    const b = this.buf;
    let v = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error("watch: truncated varint");
      const byte = b[this.pos++];
      if (shift < 28) v |= (byte & 0x7f) << shift;
      else if (shift === 28) v |= (byte & 0x0f) << 28;
      if ((byte & 0x80) === 0) return v >>> 0;
      shift += 7;
      if (shift > 63) throw new Error("watch: varint too long");
    }
  }

  /** A varint as its low and high 32 bits. */
  long(): [number, number] {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error("watch: truncated varint");
      const byte = b[this.pos++];
      const bits = byte & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (shift - 32);
      if ((byte & 0x80) === 0) return [lo >>> 0, hi >>> 0];
      shift += 7;
      if (shift > 63) throw new Error("watch: varint too long");
    }
  }

  /** An int64 that is a revision or an id etcd hands out from 1 up: exact below 2^53. */
  number(): number {
    const [lo, hi] = this.long();
    return hi * TWO_32 + lo;
  }

  /** An int64 as its exact decimal string (lease ids use all 63 bits). */
  decimal(): string {
    const [lo, hi] = this.long();
    if (hi < 0x200000) return String(hi * TWO_32 + lo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
  }

  /** The extent of a length-delimited field: [start, end). */
  bytes(): [number, number] {
    const len = this.uint32();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error("watch: truncated field");
    return [start, this.pos];
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.long();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.bytes();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`watch: unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new Error("watch: truncated field");
  }
}

/** Decodes one WatchResponse. Throws on malformed bytes (the stream then fails and reconnects). */
export function decodeWatchResponse(buf: Uint8Array): WatchMessage {
  const r = new Reader(buf);
  const m: WatchMessage = {
    revision: 0,
    watch_id: 0,
    created: false,
    canceled: false,
    compact_revision: 0,
    cancel_reason: "",
    fragment: false,
    changes: [],
  };
  while (r.pos < r.end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) m.revision = headerRevision(r);
    else if (field === 2 && wire === 0) m.watch_id = r.number();
    else if (field === 3 && wire === 0) m.created = r.uint32() !== 0;
    else if (field === 4 && wire === 0) m.canceled = r.uint32() !== 0;
    else if (field === 5 && wire === 0) m.compact_revision = r.number();
    else if (field === 6 && wire === 2) {
      const [s, e] = r.bytes();
      m.cancel_reason = utf8.decode(buf.subarray(s, e));
    } else if (field === 7 && wire === 0) m.fragment = r.uint32() !== 0;
    else if (field === 11 && wire === 2) m.changes.push(event(r));
    else r.skip(wire);
  }
  return m;
}

/** ResponseHeader: only `revision` (field 3) is kept. */
function headerRevision(outer: Reader): number {
  const [s, e] = outer.bytes();
  const r = new Reader(outer.buf, s, e);
  let revision = 0;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === (3 << 3)) revision = r.number();
    else r.skip(tag & 7);
  }
  return revision;
}

/** mvccpb.Event: type (PUT 0, DELETE 1) and kv; prev_kv is not asked for. */
function event(outer: Reader): KeyChange {
  const [s, e] = outer.bytes();
  const r = new Reader(outer.buf, s, e);
  let deleted = false;
  let kv: [number, number] | null = null;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === (1 << 3)) deleted = r.uint32() === 1;
    else if (tag === ((2 << 3) | 2)) kv = r.bytes();
    else r.skip(tag & 7);
  }
  if (kv === null) throw new Error("watch: event without kv");
  return keyValue(new Reader(outer.buf, kv[0], kv[1]), deleted);
}

/** mvccpb.KeyValue → KeyChange (as etcd_io.ts's `toChange` builds it from the library's objects). */
export function keyValue(r: Reader, deleted: boolean): KeyChange {
  const buf = r.buf;
  let key = "";
  let value = "";
  let create = 0;
  let mod = 0;
  let lease = "0";
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | 2: {
        const [s, e] = r.bytes();
        key = utf8.decode(buf.subarray(s, e));
        break;
      }
      case 2 << 3:
        create = r.number();
        break;
      case 3 << 3:
        mod = r.number();
        break;
      case (5 << 3) | 2: {
        const [s, e] = r.bytes();
        if (!deleted) value = utf8.decode(buf.subarray(s, e));
        break;
      }
      case 6 << 3:
        lease = r.decimal();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return {
    key,
    revision: mod,
    kv: deleted
      ? null
      : { value, mod_revision: mod, create_revision: create, lease },
  };
}

/** Protobuf writer for the one request the watch sends. */
class Writer {
  readonly parts: number[] = [];

  varint(v: number | bigint): this {
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this.parts.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.parts.push(Number(n));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** WatchRequest{create_request}: watch [key, range_end) from `startRevision`, with progress notifications. */
export function encodeWatchCreate(
  key: Uint8Array,
  rangeEnd: Uint8Array,
  startRevision: number,
): Uint8Array {
  const create = new Writer()
    .bytes(1, key)
    .bytes(2, rangeEnd)
    .tag(3, 0).varint(startRevision)
    .tag(4, 0).varint(1)
    .finish();
  return new Writer().bytes(1, create).finish();
}
