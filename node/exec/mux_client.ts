/**
 * Core's end of the `mux` transport (proto minor 1): one long-lived `Mux`
 * stream per plugin connection carries every call but Handshake, so a task's
 * Prepare, Spawn and Cleanup cost a few frames in shared batches instead of
 * three gRPC calls (HTTP/2 streams, headers, trailers, deadline timers).
 *
 * The stream opens on the first call and again after it ends; when it breaks,
 * every call it carried fails with the stream's status, as plain calls would
 * when their channel breaks. Deadlines and cancellation are core's: a call
 * past its deadline fails DEADLINE_EXCEEDED here and the plugin gets a
 * cancel frame, which aborts its handler's signal.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import { BatchWriter, decodeBatch, type MuxFrame } from "./mux_wire.ts";
import { Deadlines } from "./deadlines.ts";

/** Receives the answer of one multiplexed call. */
export interface MuxSink {
  /** One response (unary) or stream item, still encoded. */
  message(bytes: Uint8Array): void;
  /** The call ended: code 0 is OK, else a gRPC status code. */
  end(code: number, details: string): void;
}

const identity = (b: Buffer) => b;

/** The Mux stream of one plugin connection; see the module doc. */
export class MuxChannel {
  #call: grpc.ClientDuplexStream<Buffer, Buffer> | null = null;
  #writer: BatchWriter | null = null;
  readonly #calls = new Map<number, MuxSink>();
  #nextId = 1;
  #closed = false;
  /** The deadlines of this channel's unary calls, on one timer (mux_calls.ts). */
  readonly deadlines = new Deadlines();

  constructor(
    private readonly client: grpc.Client,
    /** The service's Mux method path, e.g. `/boi.pool.v1.Pool/Mux`. */
    private readonly path: string,
    /** Sent as `boi-corr-id` of the stream itself. */
    private readonly corr_id: string,
  ) {}

  /** No new calls: they fail UNAVAILABLE at once. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls in flight (for tests and diagnostics). */
  get inFlight(): number {
    return this.#calls.size;
  }

  /** Starts a call; returns its id (for {@linkcode cancel}). */
  open(
    rpc: string,
    corr_id: string,
    request: Uint8Array,
    sink: MuxSink,
  ): number {
    const id = this.#nextId++;
    if (this.#closed) {
      queueMicrotask(() =>
        sink.end(grpc.status.UNAVAILABLE, "the plugin connection is closed")
      );
      return id;
    }
    this.#calls.set(id, sink);
    this.#ensure().send({ id, open: { rpc, corr_id, request } });
    return id;
  }

  /** The caller gave up on call `id`: forget it and tell the plugin. */
  cancel(id: number): void {
    if (!this.#calls.delete(id)) return;
    this.#writer?.send({ id, cancel: {} });
    if (this.#closed && this.#calls.size === 0) this.#cancelStream();
  }

  /**
   * No new calls (they fail UNAVAILABLE); the ones in flight still get their
   * answers (a pool's streams their exits), as on a closed gRPC channel.
   * The stream ends with the last of them.
   */
  close(): void {
    this.#closed = true;
    if (this.#calls.size === 0) this.#cancelStream();
  }

  #cancelStream(): void {
    const call = this.#call;
    this.#finish(grpc.status.CANCELLED, "the plugin connection was closed");
    call?.cancel();
  }

  #ensure(): BatchWriter {
    if (this.#writer) return this.#writer;
    const metadata = new grpc.Metadata();
    metadata.set("boi-corr-id", this.corr_id);
    const call = this.client.makeBidiStreamRequest<Buffer, Buffer>(
      this.path,
      identity,
      identity,
      metadata,
      {},
    );
    const writer = new BatchWriter((b) => call.write(b));
    this.#call = call;
    this.#writer = writer;
    call.on("drain", () => writer.drained());
    call.on("data", (b: Buffer) => {
      if (this.#call !== call) return;
      let frames: MuxFrame[];
      try {
        frames = decodeBatch(b);
      } catch (e) {
        call.cancel();
        this.#finish(grpc.status.INTERNAL, `bad mux batch: ${e}`);
        return;
      }
      for (const f of frames) this.#deliver(f);
    });
    // "status" comes once, after the last "data"; "error" repeats a non-OK
    // one and must be listened to (an unheard "error" event throws).
    call.on("error", () => {});
    call.on("status", (s: grpc.StatusObject) => {
      if (this.#call !== call) return;
      // Every call still open was cut, whatever the stream's own status
      // (grpc-js says UNAVAILABLE or INTERNAL "RST_STREAM" for a plugin that
      // died, depending on the moment): UNAVAILABLE, an outcome unknown, so
      // a caller can tell it from an error the plugin answered (INTERNAL).
      this.#finish(
        grpc.status.UNAVAILABLE,
        s.code === grpc.status.OK
          ? "the plugin ended the mux stream"
          : `mux stream: ${grpc.status[s.code] ?? s.code}: ${s.details}`,
      );
    });
    return writer;
  }

  #deliver(f: MuxFrame): void {
    const sink = this.#calls.get(f.id);
    if (!sink) return; // cancelled here, or a frame for nobody
    if ("message" in f) sink.message(f.message);
    else if ("end" in f) {
      this.#calls.delete(f.id);
      sink.end(f.end.code, f.end.details);
      if (this.#closed && this.#calls.size === 0) this.#cancelStream();
    }
  }

  /** The stream is over: fail what it carried; the next call opens a new one. */
  #finish(code: number, details: string): void {
    this.#writer?.close();
    this.#writer = null;
    this.#call = null;
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const sink of calls) sink.end(code, details);
    this.deadlines.stop(); // every call it timed has ended
  }
}
