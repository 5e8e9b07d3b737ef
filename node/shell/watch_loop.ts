/**
 * List-then-watch of the whole key prefix (SPEC §1): a consistent list, then
 * a watch from the next revision; on compaction or a cancelled watch it
 * re-lists and resumes, so no event is lost silently. Retries with backoff
 * while etcd is unreachable.
 */
import type { Etcd3 } from "etcd3";
import type { PrefixWatch } from "./watch_stream.ts";
import { isUnreachable } from "../etcd_errors.ts";
import type { NodeEvent } from "../core/mod.ts";
import { listPrefix, watchPrefix } from "./etcd_io.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import type { Logger } from "./log.ts";
import { now } from "./clock.ts";

export interface WatchLoopDeps {
  client: Etcd3;
  prefix: string;
  log: Logger;
  health: EtcdHealth;
  push: (ev: NodeEvent) => void;
  stopping: () => boolean;
}

export class WatchLoop {
  #watcher: PrefixWatch | null = null;

  constructor(readonly deps: WatchLoopDeps) {}

  /** Resolves once the first list is in and the watch is open. */
  async start(): Promise<void> {
    const { client, prefix, log, health, push } = this.deps;
    for (let delay = 100;; delay = Math.min(delay * 2, 2000)) {
      if (this.deps.stopping()) return;
      try {
        const { revision, kvs } = await listPrefix(client, prefix);
        push({ type: "relist", at: now(), revision, kvs });
        this.#watcher = await watchPrefix(
          client,
          prefix,
          revision + 1,
          (changes) => {
            health.mark(true);
            push({ type: "changes", at: now(), changes });
          },
          (err) => this.#onError(err),
        );
        log.info("watching", {
          prefix,
          from_revision: revision + 1,
          keys: kvs.length,
        });
        return;
      } catch (err) {
        if (!isUnreachable(err)) {
          log.warn("list/watch failed", { error: String(err) });
        }
        health.mark(false, err);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async stop(): Promise<void> {
    await this.#watcher?.cancel().catch(() => {});
  }

  /** Compaction or a cancelled watch: re-list, rebuild the view, resume. */
  #onError(err: Error): void {
    if (this.deps.stopping()) return;
    this.deps.log.warn("watch lost: re-listing", { error: err.message });
    const w = this.#watcher;
    this.#watcher = null;
    w?.cancel().catch(() => {});
    this.start();
  }
}
