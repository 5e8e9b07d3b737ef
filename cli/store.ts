/**
 * The CLI's view of etcd: raw KV RPCs with a deadline on every call, so a
 * dead etcd turns into `EtcdUnreachableError` within ~2 s, and zod decoding
 * that skips (and reports) invalid records instead of crashing.
 */
import { Buffer } from "node:buffer";
import { prefixEnd } from "./txn_ops.ts";
import type {
  Etcd3,
  IKeyValue,
  ILeaseGrantRequest,
  ILeaseGrantResponse,
  ILeaseRevokeRequest,
  ILeaseRevokeResponse,
  ILeaseTimeToLiveRequest,
  ILeaseTimeToLiveResponse,
  IRangeRequest,
  IRangeResponse,
  ITxnRequest,
  ITxnResponse,
  Watcher,
} from "etcd3";
import type { z } from "zod";
import { CliError } from "./errors.ts";
import { NoGatewayError } from "./gateway_client.ts";
import {
  deadline,
  EtcdUnreachableError,
  isUnreachable,
  unreachableReason,
} from "../node/etcd_errors.ts";
import { Envelope, NodeRecord, SpecRecord } from "../node/schema.ts";
import { recordIdError } from "../node/record_ids.ts";

/** Per-call deadline: with the 1.5 s dial timeout, failures surface within ~2.5 s. */
export const CALL_TIMEOUT_MS = 1800;
/**
 * The connectivity probe a dispatch makes before writing: a serializable
 * read the member answers by itself (no consensus round, so a leader
 * election does not slow it). A healthy etcd answers in milliseconds; a
 * partitioned one never does. The probe gets what is left of
 * `PROBE_ANSWER_BY_MS` since the process started (loading the CLI takes
 * ~0.6 s on an idle machine, more on a busy one), between `PROBE_MIN_MS` and
 * `PROBE_MAX_MS`, so `dispatch` refuses within ~2 s of being started instead
 * of after the write's own 1.8 s deadline.
 */
export const PROBE_ANSWER_BY_MS = 1800;
export const PROBE_MIN_MS = 500;
export const PROBE_MAX_MS = 1000;

/** The probe's deadline when `sinceStartMs` have passed since the process started. */
export function probeTimeout(sinceStartMs: number): number {
  return Math.round(
    Math.min(
      PROBE_MAX_MS,
      Math.max(PROBE_MIN_MS, PROBE_ANSWER_BY_MS - sinceStartMs),
    ),
  );
}
/** Keys fetched per range page. */
const PAGE = 500;

/** A decoded record together with the revisions a compare needs. */
export interface Versioned<T> {
  key: string;
  value: T;
  mod_revision: number;
  create_revision: number;
  /** Lease id as a decimal string, "0" for none. */
  lease: string;
}

/** The collection of each record that names its own id (node/record_ids.ts). */
const COLLECTION_OF = new Map<z.ZodType, string>([
  [Envelope, "dispatch-queue"],
  [NodeRecord, "nodes"],
  [SpecRecord, "specs"],
]);

/** Decodes one key-value with `schema`; reports and returns null when invalid (or filed under another id). */
export function decodeKv<T>(
  kv: IKeyValue,
  schema: z.ZodType<T>,
  warn: (line: string) => void,
): Versioned<T> | null {
  const key = kv.key.toString();
  let json: unknown;
  try {
    json = JSON.parse(kv.value.toString());
  } catch {
    warn(`warning: skipping ${key}: invalid record: not JSON`);
    return null;
  }
  const parsed = schema.safeParse(json);
  const collection = COLLECTION_OF.get(schema);
  const wrongId = parsed.success && collection !== undefined
    ? recordIdError(
      collection,
      key.slice(key.lastIndexOf("/") + 1),
      parsed.data,
    )
    : null;
  if (wrongId !== null) {
    warn(`warning: skipping ${key}: invalid record: ${wrongId}`);
    return null;
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    warn(
      `warning: skipping ${key}: invalid record: ${where}${
        issue.message.split("\n")[0]
      }`,
    );
    return null;
  }
  return {
    key,
    value: parsed.data,
    mod_revision: Number(kv.mod_revision),
    create_revision: Number(kv.create_revision),
    lease: String(kv.lease ?? "0"),
  };
}

/**
 * grpc's "14 UNAVAILABLE: No connection established. Last error: Error:
 * connect ECONNREFUSED 127.0.0.1:1. Resolution note: " -> "connect
 * ECONNREFUSED 127.0.0.1:1".
 */
export function cleanReason(reason: string): string {
  const late = /Deadline exceeded after ([\d.]+s)/.exec(reason);
  if (late !== null) {
    return `no answer within ${late[1]}${
      /Waiting for LB pick/.test(reason) ? " (no connection)" : ""
    }`;
  }
  const last = /Last error: (?:\w*Error: )?(.*?)\.?\s*(?:Resolution note:.*)?$/
    .exec(reason);
  if (last !== null && last[1] !== "") return last[1];
  return reason.replace(/^\d+ [A-Z_]+: /, "").replace(
    /\.?\s*Resolution note:.*$/,
    "",
  );
}

const NOT_SENT =
  /No connection established|ECONNREFUSED|Name resolution failed|Waiting for LB pick/;

/** etcd is unreachable and the failed call surely never reached it (it changed nothing). */
export class EtcdNotReachedError extends EtcdUnreachableError {}

/** True when a failed call surely changed nothing in etcd. */
export function neverSent(err: unknown): boolean {
  return err instanceof EtcdNotReachedError;
}

/** A fail-fast etcd session of one CLI command. */
/**
 * What {@linkcode Store} uses of a client: the etcd3 library's, or for the
 * read-only commands the JSON gateway's (cli/gateway_client.ts).
 */
export interface StoreClient {
  kv: {
    range(req: IRangeRequest, o: { deadline: Date }): Promise<IRangeResponse>;
    txn(req: ITxnRequest, o: { deadline: Date }): Promise<ITxnResponse>;
  };
  leaseClient: {
    leaseTimeToLive(
      req: ILeaseTimeToLiveRequest,
      o: { deadline: Date },
    ): Promise<ILeaseTimeToLiveResponse>;
    /** Absent on the read-only JSON gateway client. */
    leaseGrant?(
      req: ILeaseGrantRequest,
      o: { deadline: Date },
    ): Promise<ILeaseGrantResponse>;
    leaseRevoke?(
      req: ILeaseRevokeRequest,
      o: { deadline: Date },
    ): Promise<ILeaseRevokeResponse>;
  };
  watch(): ReturnType<Etcd3["watch"]>;
  close(): void;
}

export class Store {
  constructor(
    readonly client: StoreClient,
    readonly endpoints: string[],
    readonly warn: (line: string) => void,
  ) {}

  /** Runs one RPC with a deadline; unreachable etcd becomes `EtcdUnreachableError`. */
  async call<T>(fn: (opts: { deadline: Date }) => Promise<T>): Promise<T> {
    try {
      return await fn(deadline(CALL_TIMEOUT_MS));
    } catch (err) {
      throw this.classify(err);
    }
  }

  /** Fails fast with `EtcdUnreachableError` unless etcd answers a trivial local read within `timeoutMs`. */
  async probe(timeoutMs = probeTimeout(performance.now())): Promise<void> {
    try {
      await this.client.kv.range({
        key: Buffer.from("\0"),
        count_only: true,
        serializable: true,
      }, deadline(timeoutMs));
    } catch (err) {
      throw this.classify(err);
    }
  }

  /** Turns an RPC failure into `EtcdUnreachableError` or a one-line `CliError`. */
  classify(err: unknown): Error {
    if (
      err instanceof EtcdUnreachableError || err instanceof CliError ||
      err instanceof NoGatewayError
    ) {
      return err;
    }
    const reason = unreachableReason(err);
    const http = /Received HTTP status code (\d+)/.exec(reason);
    if (http !== null) {
      return new EtcdNotReachedError(
        this.endpoints,
        `not an etcd server (HTTP ${http[1]})`,
      );
    }
    if (isUnreachable(err)) {
      const why = cleanReason(reason);
      // grpc never handed the call to a connection: etcd saw nothing.
      return NOT_SENT.test(reason)
        ? new EtcdNotReachedError(this.endpoints, why)
        : new EtcdUnreachableError(this.endpoints, why);
    }
    return new CliError(`etcd error: ${reason}`);
  }

  /** Every key under `prefix`, read page by page at one revision. */
  async rangePrefix(
    prefix: string,
  ): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const start = Buffer.from(prefix);
    const end = prefixEnd(start);
    const kvs: IKeyValue[] = [];
    let key = start;
    let revision = 0;
    for (;;) {
      const res = await this.call((o) =>
        this.client.kv.range({
          key,
          range_end: end,
          limit: PAGE,
          revision: revision || undefined,
        }, o)
      );
      if (revision === 0) revision = Number(res.header.revision);
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) break;
      key = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    return { kvs, revision };
  }

  /** Every valid record under `prefix`. */
  async list<T>(
    prefix: string,
    schema: z.ZodType<T>,
  ): Promise<{ items: Versioned<T>[]; revision: number }> {
    const { kvs, revision } = await this.rangePrefix(prefix);
    const items = kvs.map((kv) => decodeKv(kv, schema, this.warn)).filter((
      x,
    ): x is Versioned<T> => x !== null);
    return { items, revision };
  }

  /** One key, or null when absent (or invalid, with a warning). */
  async get<T>(
    key: string,
    schema: z.ZodType<T>,
  ): Promise<{ item: Versioned<T> | null; revision: number; exists: boolean }> {
    const res = await this.call((o) =>
      this.client.kv.range({ key: Buffer.from(key) }, o)
    );
    const kv = res.kvs[0];
    return {
      item: kv ? decodeKv(kv, schema, this.warn) : null,
      revision: Number(res.header.revision),
      exists: kv !== undefined,
    };
  }

  async txn(req: ITxnRequest): Promise<ITxnResponse> {
    return await this.call((o) => this.client.kv.txn(req, o));
  }

  /** A lease of `ttlS` seconds, never kept alive: it bounds how long a multi-chunk dispatch may take. */
  async grantLease(ttlS: number): Promise<string> {
    const grant = this.client.leaseClient.leaseGrant;
    if (!grant) throw new Error("this etcd client cannot grant leases");
    const res = await this.call((o) =>
      grant.call(this.client.leaseClient, { TTL: ttlS }, o)
    );
    return String(res.ID);
  }

  /** Revokes a lease; a failure is left to its TTL. */
  async revokeLease(id: string): Promise<void> {
    const revoke = this.client.leaseClient.leaseRevoke;
    if (!revoke) return;
    await this.call((o) => revoke.call(this.client.leaseClient, { ID: id }, o))
      .catch(() => {});
  }

  /** Remaining TTL in seconds of a lease, or null if it is gone or unknown. */
  async leaseTtl(lease: string): Promise<number | null> {
    if (lease === "0" || lease === "") return null;
    const res = await this.call((o) =>
      this.client.leaseClient.leaseTimeToLive({ ID: lease }, o)
    );
    const ttl = Number(res.TTL);
    return ttl >= 0 ? ttl : null;
  }

  /** Watches `prefix` from `fromRevision` on; resolves once etcd accepted the watch. */
  async watchPrefix(prefix: string, fromRevision: number): Promise<Watcher> {
    const pending = this.client.watch().prefix(prefix).startRevision(
      String(fromRevision),
    ).create();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new EtcdUnreachableError(this.endpoints, "watch was not accepted"),
          ),
        CALL_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([pending, timeout]);
    } catch (err) {
      // The watcher may still connect later: cancel it when it does.
      pending.then((w) => w.cancel()).catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.client.close();
  }
}
