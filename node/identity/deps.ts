/** What the identity paths of a node need from it. */
import type { Etcd3 } from "etcd3";
import type { Keys } from "../keys.ts";
import type { Logger } from "../shell/log.ts";
import type { CertNames } from "./cert_names.ts";

/** The node's handles, as the admin paths (init, mint, grant, join) use them. */
export interface IdentityDeps {
  client: Etcd3;
  keys: Keys;
  nodeId: string;
  dataDir: string;
  /** Endpoints handed to joining nodes: the ones this node reaches etcd at. */
  etcdEndpoints: string[];
  log: Logger;
  /** `BOI_JOIN_ADDR`, split. @default 127.0.0.1:7400 */
  joinHost: string;
  joinPort: number;
  /**
   * The names callers reach this node's HTTPS by (cert_names.ts), which its
   * own certificate carries when `cluster init --secure` issues it.
   * @default none: localhost, 127.0.0.1, the node id and host name only
   */
  httpNames?: CertNames;
  /**
   * Emits a SPEC §8 event (`cluster.mint_denied`) the way the node does: a
   * log line and the hooks plugin. @default a log line only
   */
  emitMintDenied?: (payload: { node_id: string; reason: string }) => void;
}

/** Host names a server certificate of this machine carries besides `localhost` and `127.0.0.1`. */
export function hostNames(extra: string[] = []): string[] {
  const names = new Set(["localhost", ...extra]);
  try {
    names.add(Deno.hostname());
  } catch {
    // no sys permission: localhost and the given names only
  }
  return [...names].filter((n) => !/^[0-9.]+$/.test(n) && !n.includes(":"));
}
