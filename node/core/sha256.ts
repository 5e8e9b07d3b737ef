/**
 * SHA-256 in plain JavaScript, for HRW scores (SPEC §5.3): every node scores
 * every task against every member, and `node:crypto`'s createHash costs
 * 3.5–5 µs per short key in Deno (a hash object, Buffer copies, an op per
 * update) against ~1.1 µs here (measured). Only the first 8 bytes are returned.
 */

// Int32Array, not Uint32Array: every value read stays a small integer (a
// Uint32Array read above 2^31 is a heap double), so V8 keeps the rounds in
// int32 arithmetic. The bits are the same.
const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

const W = new Int32Array(64);
const H = new Int32Array(8);

function block(m: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) {
    const j = off + i * 4;
    W[i] = (m[j] << 24) | (m[j + 1] << 16) | (m[j + 2] << 8) | m[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const a = W[i - 15], b = W[i - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = H[0], b = H[1], c = H[2], d = H[3];
  let e = H[4], f = H[5], g = H[6], h = H[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^
      ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^
      ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] += a;
  H[1] += b;
  H[2] += c;
  H[3] += d;
  H[4] += e;
  H[5] += f;
  H[6] += g;
  H[7] += h;
}

const IV = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);
const encoder = new TextEncoder();
let buf = new Uint8Array(256);

/** Hashes the UTF-8 of `text` into H (its first two words are all HRW uses). */
function digest(text: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit; padding at most 72 more.
  const need = text.length * 3 + 72;
  if (buf.length < need) buf = new Uint8Array(need * 2);
  // Task and node ids are ASCII: copy their code units without the
  // TextEncoder op (a third of the hash's cost for a short id); anything
  // else goes through the encoder from its first non-ASCII unit on.
  let n = 0;
  for (; n < text.length; n++) {
    const c = text.charCodeAt(n);
    if (c >= 0x80) break;
    buf[n] = c;
  }
  if (n < text.length) {
    n += encoder.encodeInto(text.slice(n), buf.subarray(n)).written;
  }
  // Padding: 0x80, zeros, then the bit length in the last 8 bytes.
  const end = ((n + 9 + 63) >>> 6) << 6;
  buf.fill(0, n, end);
  buf[n] = 0x80;
  const bits = n * 8;
  buf[end - 5] = Math.floor(bits / 2 ** 32) & 0xff;
  buf[end - 4] = (bits >>> 24) & 0xff;
  buf[end - 3] = (bits >>> 16) & 0xff;
  buf[end - 2] = (bits >>> 8) & 0xff;
  buf[end - 1] = bits & 0xff;
  H.set(IV);
  for (let off = 0; off < end; off += 64) block(buf, off);
}

/** The first 8 bytes of SHA-256(UTF-8 of `text`), big-endian, as an unsigned 64-bit integer. */
export function sha256Prefix64(text: string): bigint {
  digest(text);
  return (BigInt(H[0] >>> 0) << 32n) | BigInt(H[1] >>> 0);
}

/**
 * The first 53 bits of SHA-256(UTF-8 of `text`) as a safe integer: ordered
 * like {@linkcode sha256Prefix64} wherever the two differ in it (the top 53
 * of 64 bits), and a number compares without allocating a BigInt.
 */
export function sha256Prefix53(text: string): number {
  digest(text);
  return (H[0] >>> 0) * 2 ** 21 + (H[1] >>> 11);
}
