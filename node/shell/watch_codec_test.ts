import assert from "node:assert/strict";
import { decodeWatchResponse, encodeWatchCreate } from "./watch_codec.ts";

/** A minimal protobuf writer for building WatchResponses by hand. */
function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const field = (f: number, w: number) => varint(BigInt((f << 3) | w));
const int = (f: number, v: bigint) => [...field(f, 0), ...varint(v)];
const bytes = (f: number, b: number[]) => [
  ...field(f, 2),
  ...varint(BigInt(b.length)),
  ...b,
];
const text = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("watch codec: header, events, 63-bit leases, unknown fields skipped", () => {
  const kv = (key: string, value: string, lease: bigint) => [
    ...bytes(1, text(key)),
    ...int(2, 7n),
    ...int(3, 2n ** 40n),
    ...int(4, 3n),
    ...bytes(5, text(value)),
    ...int(6, lease),
    ...int(99, 5n), // a field this decoder does not know
  ];
  const msg = Uint8Array.from([
    ...bytes(1, [...int(1, 2n ** 63n - 1n), ...int(3, 2n ** 40n + 1n)]),
    ...int(2, 0n),
    ...bytes(11, [
      ...int(1, 0n),
      ...bytes(2, kv("/boi/a", "é", 2n ** 63n - 1n)),
    ]),
    ...bytes(11, [...int(1, 1n), ...bytes(2, kv("/boi/b", "", 0n))]),
    ...[(12 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8], // fixed64, unknown
    ...[(13 << 3) | 5, 1, 2, 3, 4], // fixed32, unknown
  ]);
  const m = decodeWatchResponse(msg);
  assert.equal(m.revision, 2 ** 40 + 1);
  assert.equal(m.created, false);
  assert.equal(m.canceled, false);
  assert.deepEqual(m.changes, [
    {
      key: "/boi/a",
      revision: 2 ** 40,
      kv: {
        value: "é",
        mod_revision: 2 ** 40,
        create_revision: 7,
        lease: "9223372036854775807",
      },
    },
    { key: "/boi/b", revision: 2 ** 40, kv: null },
  ]);
});

Deno.test("watch codec: created / canceled with the compact revision and reason", () => {
  const m = decodeWatchResponse(Uint8Array.from([
    ...int(2, 3n),
    ...int(3, 1n),
    ...int(4, 1n),
    ...int(5, 41n),
    ...bytes(6, text("compacted")),
  ]));
  assert.deepEqual(
    [m.watch_id, m.created, m.canceled, m.compact_revision, m.cancel_reason],
    [3, true, true, 41, "compacted"],
  );
});

Deno.test("watch codec: truncated bytes throw instead of inventing a change", () => {
  const whole = [
    ...bytes(11, [...int(1, 0n), ...bytes(2, [...bytes(1, text("/k"))])]),
  ];
  assert.throws(
    () => decodeWatchResponse(Uint8Array.from(whole.slice(0, -1))),
    /truncated/,
  );
});

Deno.test("watch codec: the create request", () => {
  const got = encodeWatchCreate(
    Uint8Array.from([0x61]),
    Uint8Array.from([0x62]),
    300,
  );
  // WatchRequest{1: WatchCreateRequest{1: "a", 2: "b", 3: 300, 4: true}}
  assert.deepEqual([...got], [
    0x0a,
    11,
    0x0a,
    1,
    0x61,
    0x12,
    1,
    0x62,
    0x18,
    0xac,
    0x02,
    0x20,
    1,
  ]);
});
