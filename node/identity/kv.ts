/** Direct etcd reads of the identity code: one key, with its mod revision and lease. */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import type { z } from "zod";

/** One stored key, parsed with its schema; `value` is null when it fails validation. */
export interface Read<T> {
  value: T | null;
  text: string;
  mod: number;
  lease: string;
}

/** Reads `key` at the latest revision (linearizable), or null when absent. */
export async function readKey<T>(
  client: Etcd3,
  key: string,
  schema: z.ZodType<T>,
): Promise<Read<T> | null> {
  const res = await client.kv.range({ key: Buffer.from(key) }, {
    deadline: new Date(Date.now() + 5000),
  });
  const kv = res.kvs[0];
  if (!kv) return null;
  const text = kv.value.toString();
  let value: T | null = null;
  try {
    const p = schema.safeParse(JSON.parse(text));
    if (p.success) value = p.data;
  } catch { /* not JSON: value stays null */ }
  return {
    value,
    text,
    mod: Number(kv.mod_revision),
    lease: String(kv.lease ?? "0"),
  };
}

/** Keys under a prefix (no values needed). */
export async function listKeys(
  client: Etcd3,
  prefix: string,
): Promise<string[]> {
  return await client.getAll().prefix(prefix).keys();
}
