/**
 * The pending-flush file (SPEC §6): results that could not be written while
 * etcd was unreachable, fsynced before they count as kept, replayed oldest
 * first once etcd answers. An entry only ever becomes a write under its fence.
 */
import { dirname } from "node:path";
import { FlushEntry } from "../schema.ts";
import type { Logger } from "./log.ts";

export { FlushEntry };

/**
 * SPEC §6 "Cap 100 MB": 10^8 bytes, so the file stays within the cap whether
 * MB is read as 10^6 or 2^20 bytes. @default 100_000_000
 */
export const FLUSH_CAP_BYTES = 100_000_000;

const encoder = new TextEncoder();

async function writeAll(f: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) {
    off += await f.write(data.subarray(off));
  }
}

/**
 * Makes a file's creation or rename in `dir` durable: the fsync of a file
 * keeps its data, not its name (power loss could lose a result that was
 * acknowledged as kept, or bring back the file it replaced).
 */
async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

export class PendingFlush {
  #entries: FlushEntry[] = [];
  #bytes = 0;
  /** The file's name is durable in its directory (it was there at load, or synced since). */
  #named = false;
  #lock: Promise<void> = Promise.resolve();
  /**
   * The file may end in a fragment (an append that failed half-way and
   * could not be cut, or a torn tail load() could not write back): the next
   * append rewrites the good entries first, or its line would fuse with the
   * fragment and a restart would skip both, an acknowledged result lost.
   */
  #torn = false;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly capBytes = FLUSH_CAP_BYTES,
    /** Told of each entry evicted by the cap: its result will never be written. */
    private readonly onEvict: (e: FlushEntry) => void = () => {},
  ) {}

  /** Reads what a previous incarnation left; bad lines are logged and skipped. */
  async load(): Promise<FlushEntry[]> {
    let text = "";
    try {
      text = await Deno.readTextFile(this.path);
      this.#named = true;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    this.#entries = [];
    let bad = 0;
    for (const [i, line] of text.split("\n").entries()) {
      if (line.trim() === "") continue;
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        raw = undefined;
      }
      const r = FlushEntry.safeParse(raw);
      if (r.success) {
        this.#entries.push(r.data);
        continue;
      }
      bad++;
      this.log.error("pending flush: bad line skipped", {
        path: this.path,
        line: i + 1,
      });
    }
    this.#bytes = encoder.encode(text).length;
    // A torn last line (a crash or a full disk mid-write) would fuse with
    // the next append and take that entry with it: write the good ones back.
    if (bad > 0 || (text !== "" && !text.endsWith("\n"))) {
      await this.#serial(() => this.#rewrite()).catch((err) => {
        this.#torn = true;
        this.log.error("pending flush: cannot write the good lines back", {
          path: this.path,
          error: String(err),
        });
      });
    }
    return [...this.#entries];
  }

  get entries(): readonly FlushEntry[] {
    return this.#entries;
  }
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends and fsyncs; resolves only once the entry is durable. */
  append(entry: FlushEntry): Promise<void> {
    return this.#serial(async () => {
      // The cap is in bytes of the file: UTF-8, not the string's length.
      const line = encoder.encode(JSON.stringify(entry) + "\n");
      if (this.#torn) {
        await this.#rewrite(); // throws if it still cannot: not acknowledged
        this.#torn = false;
      }
      const f = await Deno.open(this.path, { append: true, create: true });
      try {
        const before = (await f.stat()).size;
        try {
          await writeAll(f, line);
        } catch (err) {
          // Part of the line may be written (a full disk): cut it off.
          await f.truncate(before).catch(() => this.#torn = true);
          throw err;
        }
        await f.sync();
      } finally {
        f.close();
      }
      if (!this.#named) {
        await syncDir(this.#dir);
        this.#named = true;
      }
      this.#entries.push(entry);
      this.#bytes += line.length;
      // Durable from here: a failed rewrite (a full disk) must not say
      // otherwise, or the caller would park the same result again.
      if (this.#bytes > this.capBytes) {
        await this.#evict().catch((err) =>
          this.log.error("pending flush: eviction could not rewrite the file", {
            error: String(err),
          })
        );
      }
    });
  }

  /** Removes an entry once it is committed or superseded. */
  remove(taskId: string, fence: number): Promise<void> {
    return this.#serial(async () => {
      this.#entries = this.#entries.filter((e) =>
        !(e.task_id === taskId && e.fence === fence)
      );
      await this.#rewrite();
    });
  }

  async #evict(): Promise<void> {
    while (this.#bytes > this.capBytes && this.#entries.length > 0) {
      const gone = this.#entries.shift()!;
      this.#bytes -= encoder.encode(JSON.stringify(gone) + "\n").length;
      this.log.error(
        "CRITICAL pending flush over its cap: oldest result evicted, never written",
        {
          task_id: gone.task_id,
          fence: gone.fence,
          cap_bytes: this.capBytes,
        },
      );
      this.onEvict(gone);
    }
    await this.#rewrite();
  }

  /** Atomic replace: write a temporary file, fsync, rename over the old one. */
  async #rewrite(): Promise<void> {
    const data = encoder.encode(
      this.#entries.map((e) => JSON.stringify(e) + "\n").join(""),
    );
    const tmp = `${this.path}.tmp`;
    const f = await Deno.open(tmp, {
      write: true,
      create: true,
      truncate: true,
    });
    try {
      await writeAll(f, data);
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, this.path);
    await syncDir(this.#dir);
    this.#named = true;
    this.#bytes = data.length;
  }

  get #dir(): string {
    return dirname(this.path);
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#lock.then(fn);
    this.#lock = next.catch(() => {});
    return next;
  }
}
