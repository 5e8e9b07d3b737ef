/**
 * The KV.Txn call with the node's own codec (txn_codec.ts), made through the
 * etcd3 client's connection pool as the library's own calls are: the same
 * channel and TLS credentials, the auth token metadata, each host's circuit
 * breaker and the client's global retry policy (etcd_client.ts), so outages
 * look the same to the node (the pool casts grpc-js's errors to etcd3's
 * classes, which `isUnreachable` reads).
 * What it leaves out is the library's per-call object building: the request
 * as generic objects with Buffers, protobufjs, and the answer decoded into
 * objects the node read three fields of.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import { decodeTxnReply, type TxnReply } from "./txn_codec.ts";
import { etcdPool } from "./etcd_pool.ts";

/** The grpc-js client of the KV service (any grpc-js Client can make a raw unary call). */
interface GrpcClient {
  makeUnaryRequest(
    method: string,
    serialize: (m: Uint8Array) => Buffer,
    deserialize: (b: Buffer) => TxnReply,
    argument: Uint8Array,
    metadata: unknown,
    options: { deadline: Date },
    callback: (err: Error | null, value?: TxnReply) => void,
  ): unknown;
}

const METHOD = "/etcdserverpb.KV/Txn";
const serialize = (m: Uint8Array) =>
  Buffer.from(m.buffer, m.byteOffset, m.length);

/** Sends one encoded TxnRequest; resolves with the decoded TxnResponse. */
export function kvTxn(
  client: Etcd3,
  request: Uint8Array,
  timeoutMs: number,
): Promise<TxnReply> {
  const pool = etcdPool(client);
  const deadline = new Date(Date.now() + timeoutMs);
  return pool.globalPolicy.execute(() =>
    pool.withConnection(
      "KV",
      ({ client, metadata }) =>
        new Promise<TxnReply>((resolve, reject) => {
          (client as GrpcClient).makeUnaryRequest(
            METHOD,
            serialize,
            decodeTxnReply,
            request,
            metadata,
            { deadline },
            (err, value) => err ? reject(err) : resolve(value!),
          );
        }),
    )
  );
}
