/**
 * The compares and ops of the CLI's etcd transactions, over the etcd3
 * library's request types (node/core/txns.ts builds the node's).
 */
import { Buffer } from "node:buffer";
import type { ICompare, IRequestOp } from "etcd3";

/** `version(key) == n`: `n = 0` means "the key does not exist". */
export function versionIs(key: string, n: number): ICompare {
  return {
    key: Buffer.from(key),
    target: "Version",
    result: "Equal",
    version: n,
  };
}

/**
 * No key under `prefix`: etcd compares every key of the range, and an empty
 * range as one absent key (version 0).
 */
export function noneUnder(prefix: string): ICompare {
  const end = Buffer.from(prefix);
  end[end.length - 1]++; // the prefixes here end in "." or "/": no carry
  return {
    key: Buffer.from(prefix),
    range_end: end,
    target: "Version",
    result: "Equal",
    version: 0,
  };
}

/** `lease(key) == lease`: the key is there, bound to that lease. */
export function leaseIs(key: string, lease: string): ICompare {
  return { key: Buffer.from(key), target: "Lease", result: "Equal", lease };
}

/** `mod_revision(key) == rev`: nobody wrote the key since we read it. */
export function modIs(key: string, rev: number): ICompare {
  return {
    key: Buffer.from(key),
    target: "Mod",
    result: "Equal",
    mod_revision: rev,
  };
}

/** Puts `value` as compact JSON. */
export function putOp(key: string, value: unknown): IRequestOp {
  return putRawOp(key, JSON.stringify(value));
}

/** Puts already serialized text, bound to `lease` if given. */
export function putRawOp(
  key: string,
  text: string,
  lease?: string,
): IRequestOp {
  return {
    request_put: { key: Buffer.from(key), value: Buffer.from(text), lease },
  };
}

export function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

/** The range end that selects every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
