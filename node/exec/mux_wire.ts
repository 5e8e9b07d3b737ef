/**
 * The `mux` transport's frames (proto minor 1, `common.proto`): one
 * long-lived `Mux` stream per plugin carries every call but Handshake, each
 * call a run of frames with the same id, and each side sends what one
 * event-loop turn produced as one MuxBatch. Shared by core (mux_client.ts)
 * and the SDK (plugins/sdk/mux_server.ts), so both speak one encoding.
 *
 * Batches are encoded with the generated `MuxBatch` codec (proto/gen; the
 * Mux RPC's serializers pass bytes through): a batch that does not decode is
 * a WireError naming the broken field.
 * @module
 */
import type { Buffer } from "node:buffer";
import { clearImmediate, setImmediate } from "node:timers";
import * as common from "../../proto/gen/boi/common/v1/common.ts";
import { decodeMessage, encodeMessage, WireError } from "./grpc_codec.ts";

/** The capability both sides announce at Handshake to use the Mux stream. */
export const MUX_CAPABILITY = "mux";
/** The RPC every service has for it (proto minor 1). */
export const MUX_RPC = "Mux";

/** One frame of call `id`; exactly one body. */
export type MuxFrame =
  | { id: number; open: common.MuxOpen }
  | { id: number; message: Uint8Array }
  | { id: number; end: common.MuxEnd }
  | { id: number; cancel: common.MuxCancel };

const CANCEL: common.MuxCancel = {};

/** Encodes one batch of frames. */
export function encodeBatch(frames: MuxFrame[]): Buffer {
  const out: common.MuxFrame[] = new Array(frames.length);
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    out[i] = {
      id: f.id,
      body: "open" in f
        ? { $case: "open", open: f.open }
        : "message" in f
        ? { $case: "message", message: f.message }
        : "end" in f
        ? { $case: "end", end: f.end }
        : { $case: "cancel", cancel: CANCEL },
    };
  }
  return encodeMessage(common.MuxBatch, { frames: out }) as Buffer;
}

const BATCH = { type: "boi.common.v1.MuxBatch" } as const;

/** Decodes one batch; throws WireError for bytes that are not a MuxBatch. */
export function decodeBatch(buf: Uint8Array): MuxFrame[] {
  const { frames } = decodeMessage(common.MuxBatch, buf, BATCH);
  return frames.map((f): MuxFrame => {
    const { id, body } = f;
    switch (body?.$case) {
      case "open":
        return { id, open: body.open };
      case "message":
        return { id, message: body.message };
      case "end":
        return { id, end: body.end };
      case "cancel":
        return { id, cancel: body.cancel };
      default:
        throw new WireError(`MuxFrame ${id}: no body set`);
    }
  });
}

/**
 * Payload bytes one batch carries at most before it is written (a frame
 * that alone is bigger goes alone): well under grpc-js's default 4 MiB
 * limit on a received message, which would break the stream and fail every
 * call on it, where a plain call would have carried each item by itself.
 */
export const MAX_BATCH_BYTES = 1 << 20;

/**
 * The largest message one call may carry over the Mux stream: grpc-js's
 * default for a plain call. A bigger one fails its own call
 * RESOURCE_EXHAUSTED at the plugin (`mux_server.ts`), as a plain call fails,
 * instead of breaking the stream for every call on it: one 5 MiB stdout item
 * killed every running task of its node (review of c1cc25c).
 */
export const MAX_MESSAGE_BYTES = 4 << 20;

/**
 * What core's plugin channel accepts in one received message: a batch of
 * one frame of {@linkcode MAX_MESSAGE_BYTES} and its framing, with room.
 */
export const MAX_RECEIVE_BYTES = 16 << 20;

/** What a frame adds to its batch (payload plus a generous header allowance). */
function frameBytes(f: MuxFrame): number {
  if ("open" in f) return 64 + f.open.request.length + f.open.rpc.length;
  if ("message" in f) return 16 + f.message.length;
  if ("end" in f) return 16 + f.end.details.length;
  return 16;
}

/**
 * Collects the frames one side sends and writes them as one batch at the
 * end of the current event-loop turn: `setImmediate`, not a microtask, so
 * calls that start a few awaits apart still share a batch, and not
 * `setTimeout(0)`, which costs ~2 ms here (measured: p50 2.1 ms against
 * 0.002 ms), on every hop of every call. `ready()` lets a producer
 * (a stream handler) wait while the transport is saturated.
 */
export class BatchWriter {
  #frames: MuxFrame[] = [];
  #bytes = 0;
  #timer: ReturnType<typeof setImmediate> | null = null;
  #blocked: PromiseWithResolvers<void> | null = null;
  #closed = false;

  constructor(
    /** Writes one encoded batch; false when the transport wants a pause. */
    private readonly write: (batch: Buffer) => boolean,
  ) {}

  /** Queues `frame` for the next batch. */
  send(frame: MuxFrame): void {
    if (this.#closed) return;
    const size = frameBytes(frame);
    if (this.#frames.length > 0 && this.#bytes + size > MAX_BATCH_BYTES) {
      this.flush();
    }
    this.#frames.push(frame);
    this.#bytes += size;
    this.#timer ??= setImmediate(this.flush);
  }

  /**
   * Resolves when the transport takes more; undefined while it does (no
   * promise per stream item in the common case).
   */
  ready(): Promise<void> | undefined {
    return this.#blocked?.promise;
  }

  /** The transport drained: producers may go on. */
  drained(): void {
    this.#blocked?.resolve();
    this.#blocked = null;
  }

  /** Drops what is queued and everything sent later; releases waiting producers. */
  close(): void {
    this.#closed = true;
    this.#frames = [];
    this.#bytes = 0;
    if (this.#timer !== null) clearImmediate(this.#timer);
    this.#timer = null;
    this.drained();
  }

  /** Writes what is queued now (the timer would, a moment later). */
  flush = (): void => {
    if (this.#timer !== null) clearImmediate(this.#timer);
    this.#timer = null;
    if (this.#closed || this.#frames.length === 0) return;
    const frames = this.#frames;
    this.#frames = [];
    this.#bytes = 0;
    if (!this.write(encodeBatch(frames)) && this.#blocked === null) {
      this.#blocked = Promise.withResolvers<void>();
    }
  };
}
