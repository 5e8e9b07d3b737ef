/**
 * The protobuf wire primitives of the node's hand codecs for etcd
 * (watch_codec.ts, txn_codec.ts): a reader, a growable writer, and the two
 * messages both answers carry (ResponseHeader's revision, mvccpb.KeyValue).
 * @module
 */
import type { KeyChange } from "../core/events.ts";

const utf8In = new TextDecoder();
const TWO_32 = 4294967296;
const utf8Out = new TextEncoder();

/** Bytes of `v`'s varint (v < 2^35 here: lengths). */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** A cursor over one message's bytes. */
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
      if (this.pos >= this.end) throw new Error("protobuf: truncated varint");
      const byte = b[this.pos++];
      if (shift < 28) v |= (byte & 0x7f) << shift;
      else if (shift === 28) v |= (byte & 0x0f) << 28;
      if ((byte & 0x80) === 0) return v >>> 0;
      shift += 7;
      if (shift > 63) throw new Error("protobuf: varint too long");
    }
  }

  /** A varint as its low and high 32 bits. */
  long(): [number, number] {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw new Error("protobuf: truncated varint");
      const byte = b[this.pos++];
      const bits = byte & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (shift - 32);
      if ((byte & 0x80) === 0) return [lo >>> 0, hi >>> 0];
      shift += 7;
      if (shift > 63) throw new Error("protobuf: varint too long");
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
    if (this.pos > this.end) throw new Error("protobuf: truncated field");
    return [start, this.pos];
  }

  /** The length-delimited field at the cursor, as a reader of its own. */
  sub(): Reader {
    const [s, e] = this.bytes();
    return new Reader(this.buf, s, e);
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
        throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new Error("protobuf: truncated field");
  }
}

/** A growable protobuf writer: varints, and length-delimited fields written in place. */
export class Writer {
  buf = new Uint8Array(256);
  pos = 0;

  #room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** A non-negative integer below 2^53 as a varint. */
  varint(v: number): void {
    this.#room(10);
    const b = this.buf;
    while (v >= 0x80) {
      b[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[this.pos++] = v;
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** An int64 given as its decimal string (lease ids use all 63 bits). */
  decimal(field: number, text: string): void {
    const n = Number(text);
    if (Number.isSafeInteger(n) && n >= 0) {
      if (n === 0) return;
      this.tag(field, 0);
      this.varint(n);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(text));
    this.tag(field, 0);
    this.#room(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /**
   * A string field as UTF-8, encoded straight into the buffer behind room for
   * its length (guessed from the UTF-16 length: exact for ASCII, so the bytes
   * move only when a non-ASCII string's length needs a longer varint).
   */
  string(field: number, s: string): void {
    this.tag(field, 2);
    this.#room(10 + s.length * 3);
    const guess = varintSize(s.length);
    const at = this.pos;
    const { written } = utf8Out.encodeInto(
      s,
      this.buf.subarray(at + guess),
    );
    const size = varintSize(written);
    if (size !== guess) {
      this.buf.copyWithin(at + size, at + guess, at + guess + written);
    }
    this.varint(written);
    this.pos = at + size + written;
  }

  /** A bytes field. */
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.#room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /**
   * Starts a length-delimited field whose length {@linkcode end} writes, in
   * its shortest varint: room for 2 bytes is kept (a message under 16 KiB),
   * and the body moves only when its length needs 1 byte, or more than 2.
   */
  begin(field: number): number {
    this.tag(field, 2);
    this.#room(2);
    const at = this.pos;
    this.pos += 2;
    return at;
  }

  end(at: number): void {
    const len = this.pos - at - 2;
    const size = varintSize(len);
    if (size !== 2) {
      this.#room(size);
      this.buf.copyWithin(at + size, at + 2, this.pos);
      this.pos += size - 2;
    }
    const b = this.buf;
    let v = len;
    for (let i = 0; i < size - 1; i++) {
      b[at + i] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[at + size - 1] = v;
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** ResponseHeader: only `revision` (field 3) is kept. */
export function headerRevision(outer: Reader): number {
  const r = outer.sub();
  let revision = 0;
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === (3 << 3)) revision = r.number();
    else r.skip(tag & 7);
  }
  return revision;
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
        key = utf8In.decode(buf.subarray(s, e));
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
        if (!deleted) value = utf8In.decode(buf.subarray(s, e));
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
