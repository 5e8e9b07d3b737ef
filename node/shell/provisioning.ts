/**
 * The shell's part of provisioning (SPEC §10): runs the core's provisioning
 * effects — mint a join token, open the request by compare under its own
 * lease, call the provisioner's Allocate; Deallocate and the guarded
 * fulfil/close writes — and reports each outcome as a `provision` event.
 * Every decision stays in node/core/provision.ts.
 */
import type { Etcd3 } from "etcd3";
import type { Keys } from "../keys.ts";
import type { NodeEvent } from "../core/events.ts";
import type {
  ProvisionOpenEffect,
  ProvisionWriteEffect,
} from "../core/provision_types.ts";
import type { ProvisionEffect } from "../core/provision_types.ts";
import type { Provisioner } from "../plugins/contracts.ts";
import { PluginCallError } from "../exec/plugin_call_error.ts";
import { PluginUnavailableError } from "../plugins/supervisor_types.ts";
import { runTxn } from "./etcd_io.ts";
import type { Logger } from "./log.ts";
import { now } from "./clock.ts";

/** What a node that provisions needs besides etcd. */
export interface ProvisionDeps {
  provisioner: Provisioner;
  /** Mints a join token for `hint` (identity/mint.ts: admin-gated by a direct read). */
  mint(
    hint: Record<string, string>,
    ttlS: number,
  ): Promise<{ token: string; token_id_sha256: string; revision: number }>;
  /** `https://host:port` of this node's join listener; null while it has none (no CA key). */
  bootstrapUrl(): string | null;
}

/** Options of {@linkcode ProvisionRunner}. */
export interface ProvisionRunnerOptions {
  client: Etcd3;
  keys: Keys;
  log: Logger;
  deps: ProvisionDeps;
  push: (ev: NodeEvent) => void;
}

/** How long a node without a join listener waits before trying to open again. */
const NO_LISTENER_RETRY_MS = 30_000;
/** After a refused mint (not admin any more, say). */
const MINT_RETRY_MS = 10_000;
/** After a failed compare or an etcd error: the view catches up first. */
const COMPARE_RETRY_MS = 1000;
/** First and longest wait before asking a lost Allocate again. */
const ALLOCATE_RETRY_MIN_MS = 500;
const ALLOCATE_RETRY_MAX_MS = 5000;
/**
 * Plugin call codes after which the call may have been carried out:
 * CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE (the plugin died mid-call).
 */
const OUTCOME_UNKNOWN = new Set([1, 4, 14]);

export class ProvisionRunner {
  constructor(readonly o: ProvisionRunnerOptions) {}

  run(e: ProvisionEffect): void {
    const step = { opened: false };
    const p = e.action === "open" ? this.#open(e, step) : this.#write(e);
    p.catch((err) => {
      this.o.log.error("provisioning step failed", {
        req_id: e.req_id,
        action: e.action,
        error: String(err),
      });
      // Every effect ends in an event, or the core would wait on it forever.
      const error = `unexpected: ${(err as Error).message}`;
      if (e.action === "write") {
        this.#push({
          req_id: e.req_id,
          step: "written",
          ok: false,
          effect: e,
          error,
        });
      } else if (step.opened) {
        this.#push({ req_id: e.req_id, step: "allocate_failed", error });
      } else this.#refuse(e.req_id, error, COMPARE_RETRY_MS);
    });
  }

  #push(ev: Record<string, unknown> & { req_id: string; step: string }): void {
    this.o.push({ type: "provision", at: now(), ...ev } as NodeEvent);
  }

  #refuse(req_id: string, error: string, retry_after_ms: number): void {
    this.#push({ req_id, step: "open_refused", error, retry_after_ms });
  }

  async #open(
    e: ProvisionOpenEffect,
    step: { opened: boolean },
  ): Promise<void> {
    const { client, keys, log, deps } = this.o;
    const url = deps.bootstrapUrl();
    if (url === null) {
      return this.#refuse(
        e.req_id,
        "no join listener here (this node does not hold the CA key): a provisioned node could not join",
        NO_LISTENER_RETRY_MS,
      );
    }
    let minted;
    try {
      minted = await deps.mint(e.hint, e.token_ttl_s);
    } catch (err) {
      return this.#refuse(
        e.req_id,
        `token mint: ${(err as Error).message}`,
        MINT_RETRY_MS,
      );
    }
    const tokenKey = keys.joinToken(minted.token_id_sha256);
    // By compare on the revision that minted it: a token someone consumed
    // (a join) or replaced is not ours to delete any more.
    const revokeToken = () =>
      runTxn(
        client,
        [{ key: tokenKey, target: "mod", equals: minted.revision }],
        [{ op: "delete", key: tokenKey }],
      ).catch(() => {});
    const reqKey = keys.provisionReq(e.req_id);
    const record = { ...e.record, token_id_sha256: minted.token_id_sha256 };
    let lease: string | null = null;
    let revision: number;
    try {
      // The request's own lease: a dead admin's request goes away with it.
      lease = await client.lease(e.ttl_s, { autoKeepAlive: false }).grant();
      const res = await runTxn(client, e.compare, [
        { op: "put", key: reqKey, value: JSON.stringify(record), lease },
        {
          op: "put",
          key: keys.provisionFailures(e.hint_hash),
          value: JSON.stringify(e.failures),
        },
      ]);
      if (!res.ok) {
        await client.leaseClient.leaseRevoke({ ID: lease }).catch(() => {});
        await revokeToken();
        return this.#refuse(
          e.req_id,
          "compare failed: another admin opened one, or the failure record moved",
          COMPARE_RETRY_MS,
        );
      }
      revision = res.revision;
    } catch (err) {
      // No answer: the request may have committed. Unrevoked, it would hold
      // "one open request per requires" for its whole TTL with nobody
      // fulfilling it; revoked, it goes with its lease.
      if (lease !== null) {
        await client.leaseClient.leaseRevoke({ ID: lease }).catch(() => {});
      }
      await revokeToken();
      return this.#refuse(
        e.req_id,
        `etcd: ${(err as Error).message}`,
        COMPARE_RETRY_MS,
      );
    }
    log.info("provision request opened", {
      req_id: e.req_id,
      hint: e.hint,
      deadline_at: e.record.deadline_at,
    });
    step.opened = true;
    this.#push({
      req_id: e.req_id,
      step: "opened",
      revision,
      token_id_sha256: minted.token_id_sha256,
      token_revision: minted.revision,
    });
    const answer = await this.#allocate(e, minted.token, url);
    if ("error" in answer) {
      return this.#push({
        req_id: e.req_id,
        step: "allocate_failed",
        error: answer.error,
      });
    }
    const { allocation_id } = answer;
    log.info("allocated", { req_id: e.req_id, allocation_id });
    this.#push({ req_id: e.req_id, step: "allocated", allocation_id });
    // The allocation id into the record, by compare on the request as we
    // wrote it; if it moved meanwhile, the core's next write carries it.
    await runTxn(client, [{ key: reqKey, target: "mod", equals: revision }], [
      {
        op: "put",
        key: reqKey,
        value: JSON.stringify({ ...record, allocation_id }),
        lease,
      },
    ]).catch((err) =>
      log.warn("allocation id not recorded", {
        req_id: e.req_id,
        error: String(err),
      })
    );
  }

  /**
   * Allocate, asked again with the same request_id while its outcome is
   * unknown (SPEC §7: Allocate is idempotent per request_id). An answer lost
   * to a timeout or a crash may stand for a machine: failing at once would
   * leave it unknown to boi, and the next attempt's new request_id would ask
   * for a second one. Gives up at the request's deadline.
   */
  async #allocate(
    e: ProvisionOpenEffect,
    join_token: string,
    bootstrap_url: string,
  ): Promise<{ allocation_id: string } | { error: string }> {
    const { log, deps } = this.o;
    let unknown = false;
    let wait = ALLOCATE_RETRY_MIN_MS;
    for (let attempt = 1;; attempt++) {
      try {
        const r = await deps.provisioner.allocate({
          request_id: e.req_id,
          hint: e.hint,
          join_token,
          bootstrap_url,
          deadline_ms: e.deadline_ms,
        });
        return { allocation_id: r.allocation_id };
      } catch (err) {
        const error = (err as Error).message.split("\n")[0];
        // Not sent (no plugin to send it to) says nothing about an earlier try.
        const notSent = err instanceof PluginUnavailableError;
        const lost = err instanceof PluginCallError &&
          OUTCOME_UNKNOWN.has(err.code);
        unknown ||= lost;
        if (!unknown || !(lost || notSent)) {
          if (unknown) {
            // The provisioner says no now, but an earlier try's answer was
            // lost: that try may have made a machine boi cannot name.
            log.error(
              "Allocate failed after a try whose outcome is unknown: the provisioner may hold a machine for this request that boi cannot take back",
              { req_id: e.req_id, attempt, error },
            );
          } else {log.warn("Allocate failed", {
              req_id: e.req_id,
              attempt,
              error,
            });}
          return { error };
        }
        if (now() + wait >= e.record.deadline_at) {
          log.error(
            "Allocate outcome unknown at the deadline: the provisioner may hold a machine for this request that boi cannot take back",
            { req_id: e.req_id, attempts: attempt, error },
          );
          return {
            error:
              `outcome unknown after ${attempt} tries (request_id ${e.req_id}): ${error}`,
          };
        }
        log.warn("Allocate outcome unknown: asking again", {
          req_id: e.req_id,
          attempt,
          retry_in_ms: wait,
          error,
        });
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, ALLOCATE_RETRY_MAX_MS);
      }
    }
  }

  async #write(e: ProvisionWriteEffect): Promise<void> {
    const { client } = this.o;
    // An empty write is the confirmation of a close that committed unseen
    // (provision.ts, confirmed): nothing to send.
    const empty = e.compare.length === 0 && e.success.length === 0;
    let ok = true;
    try {
      if (!empty) ok = (await runTxn(client, e.compare, e.success)).ok;
    } catch (err) {
      await new Promise((r) => setTimeout(r, COMPARE_RETRY_MS));
      return this.#push({
        req_id: e.req_id,
        step: "written",
        ok: false,
        effect: e,
        error: String(err),
      });
    }
    // Only after the close committed: its token is revoked, so the machine
    // cannot join meanwhile, and a close re-decided (a node joined) keeps it.
    if (ok && e.deallocate !== null) await this.#deallocate(e, e.deallocate);
    // A failed compare is decided again from the view: give the watch time
    // to bring what moved (else the same stale decision goes out per round trip).
    if (!ok) await new Promise((r) => setTimeout(r, COMPARE_RETRY_MS));
    this.#push({
      req_id: e.req_id,
      step: "written",
      ok,
      effect: e,
      error: null,
    });
  }

  async #deallocate(e: ProvisionWriteEffect, allocation_id: string) {
    const { log, deps } = this.o;
    try {
      await deps.provisioner.deallocate({ allocation_id });
      log.info("deallocated", { req_id: e.req_id, allocation_id });
    } catch (err) {
      // The request is closed anyway: a provisioner that cannot take its
      // node back must not keep the requires from being tried again.
      log.error("Deallocate failed", {
        req_id: e.req_id,
        allocation_id,
        error: (err as Error).message.split("\n")[0],
      });
    }
  }
}
