/**
 * Reads of boi's records straight from etcd, validated with the wire schemas,
 * so tests check what is stored rather than what a command prints.
 */
import type { Etcd3, IKeyValue } from "etcd3";
import type { z } from "zod";
import { DEFAULT_PREFIX, Keys } from "../../node/keys.ts";
import {
  CapsRecord,
  Claim,
  Envelope,
  NodeRecord,
  SpecRecord,
} from "../../node/schema.ts";

/** Anything with a client: a handle from `startEtcd` or `startEtcdCluster`. */
export interface HasClient {
  client(): Etcd3;
}

/** A record with the key metadata that transactions compare on. */
export interface Stored<T> {
  key: string;
  value: T;
  mod_revision: number;
  /** For a claim this is the fence (SPEC §4). */
  create_revision: number;
  version: number;
  /** Lease id as a decimal string; "0" when the key has no lease. */
  lease: string;
}

function decode<S extends z.ZodType>(
  schema: S,
  kv: IKeyValue,
): Stored<z.infer<S>> {
  const key = kv.key.toString();
  const text = kv.value.toString();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `${key}: value is not JSON (${(e as Error).message}): ${
        text.slice(0, 300)
      }`,
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `${key}: value does not match the schema: ${parsed.error.message}\nvalue: ${
        text.slice(0, 1000)
      }`,
    );
  }
  return {
    key,
    value: parsed.data,
    mod_revision: Number(kv.mod_revision),
    create_revision: Number(kv.create_revision),
    version: Number(kv.version),
    lease: kv.lease,
  };
}

async function readOne<S extends z.ZodType>(
  etcd: HasClient,
  schema: S,
  key: string,
): Promise<Stored<z.infer<S>> | null> {
  const res = await etcd.client().get(key).exec();
  return res.kvs.length === 0 ? null : decode(schema, res.kvs[0]);
}

async function readAll<S extends z.ZodType>(
  etcd: HasClient,
  schema: S,
  dir: string,
): Promise<Stored<z.infer<S>>[]> {
  const res = await etcd.client().getAll().prefix(dir).sort("Key", "Ascend")
    .exec();
  return res.kvs.map((kv) => decode(schema, kv));
}

/** The envelope of `taskId` (SPEC §3), or null; throws if the stored value is invalid. */
export function readEnvelope(
  etcd: HasClient,
  taskId: string,
  prefix: string = DEFAULT_PREFIX,
): Promise<Stored<Envelope> | null> {
  return readOne(etcd, Envelope, new Keys(prefix).task(taskId));
}

/** Options of {@linkcode listEnvelopes}. */
export interface ListEnvelopesOptions {
  /** @default "/boi/" */
  prefix?: string;
  /** Only this spec's tasks. */
  specId?: string;
}

/** Every envelope under the prefix (optionally one spec's), sorted by task id. */
export async function listEnvelopes(
  etcd: HasClient,
  options: ListEnvelopesOptions = {},
): Promise<Stored<Envelope>[]> {
  const keys = new Keys(options.prefix ?? DEFAULT_PREFIX);
  const dir = options.specId === undefined
    ? keys.dir("dispatch-queue")
    : `${keys.dir("dispatch-queue")}${options.specId}.`;
  return await readAll(etcd, Envelope, dir);
}

/** The claim of `taskId`, or null when no node holds it. */
export function readClaim(
  etcd: HasClient,
  taskId: string,
  prefix: string = DEFAULT_PREFIX,
): Promise<Stored<Claim> | null> {
  return readOne(etcd, Claim, new Keys(prefix).claim(taskId));
}

/** The registration of `nodeId`, or null when its lease is gone. */
export function readNode(
  etcd: HasClient,
  nodeId: string,
  prefix: string = DEFAULT_PREFIX,
): Promise<Stored<NodeRecord> | null> {
  return readOne(etcd, NodeRecord, new Keys(prefix).node(nodeId));
}

/** Every registered node, sorted by id. */
export function listNodes(
  etcd: HasClient,
  prefix: string = DEFAULT_PREFIX,
): Promise<Stored<NodeRecord>[]> {
  return readAll(etcd, NodeRecord, new Keys(prefix).dir("nodes"));
}

/** The capability record of `nodeId`, or null. */
export function readCaps(
  etcd: HasClient,
  nodeId: string,
  prefix: string = DEFAULT_PREFIX,
): Promise<Stored<CapsRecord> | null> {
  return readOne(etcd, CapsRecord, new Keys(prefix).caps(nodeId));
}

/** The spec record of `specId`, or null. */
export function readSpec(
  etcd: HasClient,
  specId: string,
  prefix: string = DEFAULT_PREFIX,
): Promise<Stored<SpecRecord> | null> {
  return readOne(etcd, SpecRecord, new Keys(prefix).spec(specId));
}

/** A fresh key prefix (`/t-<random>/`) so tests can share one etcd without seeing each other. */
export function uniquePrefix(label = "t"): string {
  return `/${label}-${crypto.randomUUID().slice(0, 8)}/`;
}
