/** Key layout under the configurable prefix (SPEC §2); the only place that spells keys. */

export const DEFAULT_PREFIX = "/boi/";

/** Builds and parses the keys of one prefix. */
export class Keys {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {
    if (!prefix.startsWith("/") || !prefix.endsWith("/")) {
      throw new Error(
        `key prefix must start and end with "/": got ${JSON.stringify(prefix)}`,
      );
    }
  }
  node(nodeId: string): string {
    return `${this.prefix}nodes/${nodeId}`;
  }
  caps(nodeId: string): string {
    return `${this.prefix}caps/${nodeId}`;
  }
  spec(specId: string): string {
    return `${this.prefix}specs/${specId}`;
  }
  task(taskId: string): string {
    return `${this.prefix}dispatch-queue/${taskId}`;
  }
  claim(taskId: string): string {
    return `${this.prefix}claims/${taskId}`;
  }
  dispatchPaused(): string {
    return `${this.prefix}cluster/dispatch_paused`;
  }
  /** A plugin's record (SPEC §2), bound to the node's lease. */
  plugin(nodeId: string, name: string): string {
    return `${this.prefix}plugins/${nodeId}/${name}`;
  }
  /** The per-cluster secret mutating HTTP requests carry (node/admin_secret.ts). */
  adminSecret(): string {
    return `${this.prefix}cluster/admin_secret`;
  }
  /** Present while a dispatch of several transactions writes (schema.ts `DispatchInProgress`). */
  dispatching(specId: string): string {
    return `${this.prefix}cluster/dispatching/${specId}`;
  }
  /** Present while an operator drains the node (`boi node drain`). */
  drain(nodeId: string): string {
    return `${this.prefix}cluster/drain/${nodeId}`;
  }
  /** The cluster CA record `{cert_pem, fingerprint}` (SPEC §10). */
  ca(): string {
    return `${this.prefix}cluster/ca`;
  }
  /** The cluster's data format record (SPEC §2 `cluster/version`). */
  clusterVersion(): string {
    return `${this.prefix}cluster/version`;
  }
  /** A node granted `cluster_admin` (survives the node's restarts; its caps follow it). */
  admin(nodeId: string): string {
    return `${this.prefix}cluster/admins/${nodeId}`;
  }
  /** An unused join token, by the SHA-256 of its `token_id`. */
  joinToken(idHash: string): string {
    return `${this.prefix}join-tokens/${idHash}`;
  }
  /** An open provisioning request (SPEC §10). */
  provisionReq(reqId: string): string {
    return `${this.prefix}provision-req/${reqId}`;
  }
  /** Consecutive provisioning failures and the cooldown of one requires. */
  provisionFailures(hintHash: string): string {
    return `${this.prefix}provision-failures/${hintHash}`;
  }
  /** Prefix of one collection, e.g. `dir("dispatch-queue")`. */
  dir(name: Collection): string {
    return `${this.prefix}${name}/`;
  }

  /** Splits a key into its collection and the rest, or null if foreign. */
  parse(key: string): { collection: Collection; id: string } | null {
    if (!key.startsWith(this.prefix)) return null;
    const start = this.prefix.length;
    const slash = key.indexOf("/", start);
    if (slash < 0) return null;
    // The canonical (interned) name: every node parses every watched key,
    // and its consumers compare and index by it.
    const collection = BY_NAME.get(key.slice(start, slash));
    if (collection === undefined) return null;
    return { collection, id: key.slice(slash + 1) };
  }
}

export const COLLECTIONS = [
  "nodes",
  "caps",
  "specs",
  "dispatch-queue",
  "claims",
  "cluster",
  "join-tokens",
  "provision-req",
  "provision-failures",
  "plugins",
  "hooks-hwm",
] as const;
export type Collection = typeof COLLECTIONS[number];
const BY_NAME = new Map<string, Collection>(COLLECTIONS.map((c) => [c, c]));
