/**
 * `/boi/hooks-hwm/{plugin}/{node_id}` (SPEC §2, §8): the acked high-water
 * mark of one (node, plugin), read at start and written by CAS on its last
 * revision. It never goes down: a lost race re-reads and keeps the higher.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import { deadline } from "../etcd_errors.ts";
import { runTxn } from "../shell/etcd_io.ts";
import { HwmRecord } from "../schema.ts";
import type { HookLog } from "./delivery.ts";

/** The stored HWM of one (node, plugin) and its CAS writes. */
export class HwmStore {
  /** The stored seq and the revision it was stored at (0: absent). */
  seq = 0;
  #rev = 0;
  #writing: Promise<void> | null = null;

  constructor(
    readonly client: Etcd3,
    readonly key: string,
    readonly log: HookLog,
  ) {}

  /** Reads the stored HWM, retrying until etcd answers; an invalid record counts as 0. */
  async read(): Promise<void> {
    for (let delay = 100;; delay = Math.min(delay * 2, 2000)) {
      try {
        const res = await this.client.kv.range(
          { key: Buffer.from(this.key) },
          deadline(3000),
        );
        const kv = res.kvs[0];
        const rec = kv
          ? HwmRecord.safeParse(safeJson(kv.value.toString()))
          : null;
        if (kv && !rec?.success) {
          // Replay everything the WAL still holds; the next write replaces it (CAS on its revision).
          this.log.log(
            "error",
            "hooks: invalid HWM record, replaying the whole WAL",
            {
              key: this.key,
              value: kv.value.toString().slice(0, 200),
            },
          );
        }
        this.seq = rec?.success ? rec.data.seq : 0;
        this.#rev = kv ? Number(kv.mod_revision) : 0;
        return;
      } catch (err) {
        this.log.log("warn", "hooks: cannot read the HWM yet", {
          key: this.key,
          error: (err as Error).message,
        });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Stores `seq` if it is higher than what is stored; resolves true once it
   * is (false: etcd away or a lost race, the next call tries again). One
   * write at a time.
   */
  write(seq: number): Promise<boolean> {
    if (this.#writing) return this.#writing.then(() => false);
    if (seq <= this.seq) return Promise.resolve(false);
    let stored = false;
    this.#writing = (async () => {
      try {
        const res = await runTxn(
          this.client,
          [{ key: this.key, target: "mod", equals: this.#rev }],
          [{
            op: "put",
            key: this.key,
            value: JSON.stringify({ seq, acked_at: Date.now() }),
          }],
        );
        if (res.ok) {
          this.seq = seq;
          this.#rev = res.revision;
          stored = true;
          return;
        }
        // Someone else wrote it (an earlier incarnation's late write): adopt a higher one.
        const cur = await this.client.kv.range({ key: Buffer.from(this.key) });
        const kv = cur.kvs[0];
        const rec = kv
          ? HwmRecord.safeParse(safeJson(kv.value.toString()))
          : null;
        this.seq = Math.max(this.seq, rec?.success ? rec.data.seq : 0);
        this.#rev = kv ? Number(kv.mod_revision) : 0;
      } catch {
        // etcd away: the next round tries again
      } finally {
        this.#writing = null;
      }
    })();
    return this.#writing.then(() => stored);
  }

  /** Waits for a write in flight. */
  async idle(): Promise<void> {
    await this.#writing;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
