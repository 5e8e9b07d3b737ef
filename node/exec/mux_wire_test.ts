/** The mux frames and their batching, pure: no socket. */
import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import {
  BatchWriter,
  decodeBatch,
  encodeBatch,
  MAX_BATCH_BYTES,
  type MuxFrame,
} from "./mux_wire.ts";
import { WireError } from "./grpc_codec.ts";

const bytes = (...b: number[]) => new Uint8Array(b);
/** Comparable: plain objects, bytes (Buffer or Uint8Array) as number arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(
    Object.keys(v).map((k) => [k, plain((v as Record<string, unknown>)[k])]),
  );
}

Deno.test("mux wire: every frame kind round-trips, ids past 2^32 included", () => {
  const frames: MuxFrame[] = [
    { id: 1, open: { rpc: "Prepare", corr_id: "c1", request: bytes(1, 2) } },
    { id: 2 ** 40 + 3, message: bytes(9) },
    { id: 4, message: bytes() },
    { id: 5, end: { code: 3, details: "bad" } },
    { id: 6, end: { code: 0, details: "" } },
    { id: 7, cancel: {} },
  ];
  assert.deepEqual(plain(decodeBatch(encodeBatch(frames))), plain(frames));
});

Deno.test("mux wire: garbage and a frame without a body are WireErrors", () => {
  assert.throws(() => decodeBatch(bytes(0xff, 0xff, 0xff)), WireError);
  // frames[0] = { id: 1 } (field 1 = message {field 1 varint 1})
  assert.throws(
    () => decodeBatch(bytes(0x0a, 0x02, 0x08, 0x01)),
    (e: unknown) => e instanceof WireError && /no body/.test(e.message),
  );
});

Deno.test("mux wire: frames sent in one turn go out as one batch, later ones in the next", async () => {
  const written: MuxFrame[][] = [];
  const w = new BatchWriter((b: Buffer) => {
    written.push(decodeBatch(b));
    return true;
  });
  for (let id = 1; id <= 3; id++) w.send({ id, cancel: {} });
  await Promise.resolve(); // a microtask later: still the same batch
  w.send({ id: 4, cancel: {} });
  assert.equal(written.length, 0, "nothing written within the turn");
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(written.map((b) => b.map((f) => f.id)), [[1, 2, 3, 4]]);
  w.send({ id: 5, cancel: {} });
  w.flush();
  assert.deepEqual(written.map((b) => b.map((f) => f.id)), [[1, 2, 3, 4], [5]]);
  w.close();
});

Deno.test("mux wire: a saturated transport holds producers until it drains; close drops the rest", async () => {
  let accept = false;
  let writes = 0;
  const w = new BatchWriter(() => {
    writes++;
    return accept;
  });
  assert.equal(w.ready(), undefined, "nothing to wait for before a write");
  w.send({ id: 1, cancel: {} });
  w.flush();
  let released = false;
  const waiting = w.ready()!.then(() => released = true);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(released, false, "ready() waits while saturated");
  accept = true;
  w.drained();
  await waiting;
  assert.equal(released, true);
  assert.equal(w.ready(), undefined, "drained: nothing to wait for");
  w.send({ id: 2, cancel: {} });
  w.close();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(writes, 1, "a closed writer sends nothing");
});

Deno.test("mux wire: a turn's frames are split into batches under MAX_BATCH_BYTES; a bigger frame goes alone", async () => {
  const sizes: number[] = [];
  const w = new BatchWriter((b: Buffer) => {
    sizes.push(b.length);
    decodeBatch(b);
    return true;
  });
  const chunk = new Uint8Array(64 * 1024);
  for (let id = 1; id <= 40; id++) w.send({ id, message: chunk }); // 2.5 MiB
  w.send({ id: 41, message: new Uint8Array(MAX_BATCH_BYTES + 1) });
  w.send({ id: 42, cancel: {} });
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(sizes.length >= 4, `batches: ${sizes.join(", ")}`);
  for (const n of sizes.slice(0, -2)) {
    assert.ok(n <= MAX_BATCH_BYTES + 1024, `a batch of ${n} bytes`);
  }
  assert.ok(sizes.at(-2)! > MAX_BATCH_BYTES, "the big frame went alone");
  w.close();
});
