/**
 * The identity records of SPEC §2 and §10, one zod schema each: the cluster
 * CA, join tokens, and the admin grants that a node's caps follow.
 */
import { z } from "zod";

/** Longest join-token lifetime a node mints (and the CLI asks for): a day. */
export const MAX_TOKEN_TTL_S = 86_400;

/** `/boi/cluster/ca`: written once by `cluster init` (compare `version == 0`). */
export const CaRecord = z.object({
  cert_pem: z.string().startsWith("-----BEGIN CERTIFICATE-----"),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  /** Node that holds the key; @default absent in records written by other tools. */
  created_by: z.string().optional(),
  created_at: z.number().int().optional(),
  /** True when `cluster init --secure` issued the etcd certificates. */
  secure: z.boolean().optional(),
});
export type CaRecord = z.infer<typeof CaRecord>;

/**
 * The layout of boi's etcd records (SPEC §2–§4) that this code reads and
 * writes. A later boi that changes a record in a way this one would misread
 * raises it, and nodes of this one then refuse to start on that cluster.
 */
export const DATA_FORMAT = 1;

/** `/boi/cluster/version`: written once by `cluster init`, in the CA's transaction. */
export const ClusterVersion = z.object({
  /** The data format the cluster's records follow ({@linkcode DATA_FORMAT}). */
  format: z.number().int().positive(),
  /** The boi version that wrote it. */
  boi: z.string(),
  written_by: z.string(),
  written_at: z.number().int(),
});
export type ClusterVersion = z.infer<typeof ClusterVersion>;

/** `/boi/join-tokens/{sha256(token_id)}`, under a lease as long as the token lives. */
export const JoinTokenRecord = z.object({
  cap_hint: z.record(z.string(), z.string()),
  expires_at: z.number().int(),
  minted_by: z.string(),
});
export type JoinTokenRecord = z.infer<typeof JoinTokenRecord>;

/**
 * `/boi/cluster/admins/{node_id}`: written only by `cluster init` and
 * `cluster admin grant`, deleted by `revoke`; a node reads it at start to
 * publish `cluster_admin: "true"` in its static caps again.
 */
export const AdminGrant = z.object({
  granted_at: z.number().int(),
  granted_by: z.string(),
});
export type AdminGrant = z.infer<typeof AdminGrant>;

/** The claims of a join token (SPEC §10), all required. */
export const TokenClaims = z.object({
  token_id: z.string().regex(/^[0-9a-f]{32}$/),
  cap_hint: z.record(z.string(), z.string()),
  ca_fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  exp: z.number().int(),
});
export type TokenClaims = z.infer<typeof TokenClaims>;

/** `POST /v1/join` body. */
export const JoinRequest = z.object({
  token: z.string().min(1).max(8192),
  node_id: z.string(),
  caps: z.record(z.string(), z.string()),
  csr: z.string().startsWith("-----BEGIN CERTIFICATE REQUEST-----"),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

/** `POST /v1/join` answer. */
export const JoinAnswer = z.object({
  node_cert: z.string(),
  ca_pem: z.string(),
  etcd_endpoints: z.array(z.string()).min(1),
});
export type JoinAnswer = z.infer<typeof JoinAnswer>;
