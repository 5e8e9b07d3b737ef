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
import { headerRevision, keyValue, Reader, Writer } from "./proto_wire.ts";

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

/** mvccpb.Event: type (PUT 0, DELETE 1) and kv; prev_kv is not asked for. */
function event(outer: Reader): KeyChange {
  const r = outer.sub();
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

/** WatchRequest{create_request}: watch [key, range_end) from `startRevision`, with progress notifications. */
export function encodeWatchCreate(
  key: Uint8Array,
  rangeEnd: Uint8Array,
  startRevision: number,
): Uint8Array {
  const w = new Writer();
  const create = w.begin(1);
  w.bytes(1, key);
  w.bytes(2, rangeEnd);
  w.tag(3, 0);
  w.varint(startRevision);
  w.tag(4, 0);
  w.varint(1);
  w.end(create);
  return w.finish();
}
