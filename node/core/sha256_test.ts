import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Prefix64 } from "./sha256.ts";

const viaCrypto = (data: Uint8Array) => {
  const d = createHash("sha256").update(data).digest();
  return new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0);
};

Deno.test("sha256Prefix64 equals node:crypto's SHA-256 at every length around the block edges", () => {
  const enc = new TextEncoder();
  assert.equal(
    sha256Prefix64("").toString(16),
    "e3b0c44298fc1c14",
  );
  assert.equal(
    sha256Prefix64("abc").toString(16),
    "ba7816bf8f01cfea",
  );
  for (let n = 0; n <= 300; n++) {
    let text = "";
    for (let i = 0; i < n; i++) {
      text += String.fromCharCode(32 + ((i * 31 + n) % 95));
    }
    assert.equal(
      sha256Prefix64(text),
      viaCrypto(enc.encode(text)),
      `length ${n}`,
    );
  }
  // Multi-byte UTF-8, and a long one after it (the buffer grows).
  for (const text of ["spec-é漢.task\x1fnode-ü", "漢".repeat(400), "x"]) {
    assert.equal(sha256Prefix64(text), viaCrypto(enc.encode(text)));
  }
});
