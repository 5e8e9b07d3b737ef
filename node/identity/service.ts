/**
 * The node's identity endpoints (SPEC §10–§11), asked by the CLI:
 * `POST /internal/cluster/init`, `POST /internal/tokens`,
 * `POST /internal/cluster/admins/{node_id}/grant|revoke`; and the join
 * listener, which runs while this node holds the CA key.
 */
import { ID_PATTERN } from "../schema.ts";
import { setAdmin } from "./admin.ts";
import type { IdentityDeps } from "./deps.ts";
import { IdentityError } from "./errors.ts";
import { initCluster } from "./init.ts";
import {
  type JoinServer,
  readLimited,
  startJoinServer,
} from "./join_server.ts";
import { mintToken } from "./mint.ts";
import { DEFAULT_TOKEN_TTL_S } from "./token.ts";

/** Path prefix of the identity endpoints on the node's HTTP. */
export const IDENTITY_PATHS = ["/internal/cluster/", "/internal/tokens"];

/** The identity side of one node. */
export class IdentityService {
  #join: JoinServer | null = null;
  constructor(readonly deps: IdentityDeps) {}

  /** Starts the join listener if this node holds the CA key (at start and after init). */
  async startJoin(): Promise<void> {
    if (this.#join !== null) return;
    try {
      this.#join = await startJoinServer(this.deps);
    } catch (e) {
      this.deps.log.error("join listener failed to start", {
        join_addr: `${this.deps.joinHost}:${this.deps.joinPort}`,
        error: String(e),
      });
    }
  }

  /** `host:port` of the join listener, or null when not listening. */
  get joinAddr(): string | null {
    return this.#join?.addr ?? null;
  }

  async close(): Promise<void> {
    await this.#join?.close();
    this.#join = null;
  }

  /** Handles one identity request, or returns null when the path is not one. */
  handle(req: Request, path: string): Promise<Response> | null {
    if (!IDENTITY_PATHS.some((p) => path.startsWith(p))) return null;
    if (req.method !== "POST") {
      return Promise.resolve(json(405, { error: "POST only" }));
    }
    return this.#route(req, path).catch((e) => {
      if (e instanceof IdentityError) {
        return json(e.status, { error: e.message, code: e.code });
      }
      this.deps.log.error("identity request failed", {
        path,
        error: String(e),
      });
      return json(500, { error: (e as Error).message.split("\n")[0] });
    });
  }

  async #route(req: Request, path: string): Promise<Response> {
    const text = await readLimited(req, 16 * 1024);
    let body: Record<string, unknown> = {};
    try {
      const v = JSON.parse(text === null || text === "" ? "{}" : text);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) body = v;
    } catch {
      throw new IdentityError("InvalidArgument", "body is not JSON");
    }
    if (path === "/internal/cluster/init") {
      const result = await initCluster(this.deps, {
        secure: body.secure === true,
      });
      await this.startJoin();
      return json(200, { ...result, join_addr: this.joinAddr });
    }
    if (path === "/internal/tokens") {
      const caps = body.caps ?? {};
      if (typeof caps !== "object" || caps === null || Array.isArray(caps)) {
        throw new IdentityError(
          "InvalidArgument",
          "caps must be an object of strings",
        );
      }
      const ttl = body.ttl_s ?? DEFAULT_TOKEN_TTL_S;
      const { revision: _, ...minted } = await mintToken(
        this.deps,
        caps as Record<string, string>,
        Number(ttl),
      );
      return json(200, minted);
    }
    const m = /^\/internal\/cluster\/admins\/([^/]+)\/(grant|revoke)$/.exec(
      path,
    );
    if (m !== null) {
      if (!ID_PATTERN.test(m[1])) {
        throw new IdentityError(
          "InvalidArgument",
          `node id must match ${ID_PATTERN.source}: got ${
            JSON.stringify(m[1])
          }`,
        );
      }
      const r = await setAdmin(
        this.deps.client,
        this.deps.keys,
        this.deps.nodeId,
        m[1],
        m[2] === "grant",
      );
      this.deps.log.info(`cluster_admin ${m[2]}`, {
        target: m[1],
        changed: r.changed,
      });
      return json(200, {
        node_id: m[1],
        cluster_admin: m[2] === "grant",
        changed: r.changed,
      });
    }
    return json(404, { error: "not found" });
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
