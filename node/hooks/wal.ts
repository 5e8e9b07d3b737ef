/**
 * The audit WAL's files (SPEC §8): `<data_dir>/hooks-wal/<plugin>.jsonl` is
 * the active segment (first line a header naming its first seq, then one
 * JSON line per event); a full one is renamed to
 * `<plugin>.<first>-<last>.jsonl` and deleted once every entry in it is
 * acked. The active segment is never deleted, so a missing one at start
 * means events were lost. Appends are synchronous; the caller fsyncs once
 * per turn of the event loop, before anything appended is sent or any
 * intent's transaction leaves.
 * @module
 */
import type { Intent, SegmentInfo, WalEntry } from "./wal_state.ts";
import type { FoundSegment } from "./wal_recover.ts";

const encoder = new TextEncoder();

/** One plugin's WAL files in one directory. */
export class WalFiles {
  readonly activePath: string;
  #fd: Deno.FsFile | null = null;
  /** Bytes of the active segment that hold whole lines: a failed append is cut back to it. */
  #size = 0;
  /** A failed append left bytes after `#size` that could not be cut yet. */
  #torn = false;

  constructor(readonly dir: string, readonly plugin: string) {
    this.activePath = `${dir}/${plugin}.jsonl`;
    this.nextPath = `${this.activePath}.next`;
  }

  /**
   * The next active segment while a rotate is under way: made (header,
   * fsync) before the full one is sealed, so at every instant one of the two
   * exists and a crash mid-rotate never reads as a missing WAL.
   */
  readonly nextPath: string;

  sealedPath(seg: SegmentInfo): string {
    return `${this.dir}/${this.plugin}.${seg.first}-${seg.last}.jsonl`;
  }

  /** Reads every segment of this plugin; a torn last line (a crash mid-append) is skipped. */
  async load(): Promise<
    { sealed: FoundSegment[]; active: FoundSegment | null }
  > {
    const sealed: FoundSegment[] = [];
    let active: FoundSegment | null = null;
    const re = new RegExp(
      `^${this.plugin.replace(/[-]/g, "\\-")}\\.(\\d+)-(\\d+)\\.jsonl$`,
    );
    let names: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) names.push(e.name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      names = [];
    }
    for (const name of names) {
      const m = re.exec(name);
      if (m) {
        const info = { first: Number(m[1]), last: Number(m[2]) };
        const text = await Deno.readTextFile(`${this.dir}/${name}`);
        const { header: _h, ...parsed } = parseLines(text);
        sealed.push({ info, ...parsed });
      }
    }
    this.#finishRotate(names.includes(`${this.plugin}.jsonl`));
    try {
      const text = await Deno.readTextFile(this.activePath);
      const parsed = parseLines(text);
      const { header, ...rest } = parsed;
      active = {
        info: { first: header ?? firstSeq(parsed.entries), last: null },
        ...rest,
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    sealed.sort((a, b) => a.info.first - b.info.first);
    return { sealed, active };
  }

  /**
   * Opens the active segment for appends, creating it (with its header) if
   * absent. A torn last line (a crash mid-append) is cut off first: the next
   * append would be glued to it and both lines lost.
   */
  open(first: number): void {
    Deno.mkdirSync(this.dir, { recursive: true });
    let whole = -1;
    try {
      const size = Deno.statSync(this.activePath).size;
      whole = wholeLines(this.activePath, size);
      if (whole < size) Deno.truncateSync(this.activePath, whole);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    this.#fd = Deno.openSync(this.activePath, {
      append: true,
      create: true,
      write: true,
    });
    this.#size = Math.max(whole, 0);
    this.#torn = false;
    if (whole <= 0) {
      this.#write([], false, header(this.plugin, first));
      this.#fd.syncSync();
      syncDir(this.dir);
    }
  }

  /**
   * Appends entries (then the resolution of `resolves`, if given) and, with
   * `sync`, fsyncs: when it returns, they survive a crash. Without it the
   * caller calls {@linkcode sync} before relying on them.
   */
  append(entries: WalEntry[], resolves?: number, sync = true): void {
    const lines: unknown[] = entries.map((e) => ({
      seq: e.seq,
      kind: e.kind,
      ts: e.ts,
      payload: JSON.parse(e.payload_json),
      dedup_key: e.dedup_key,
    }));
    if (resolves !== undefined) lines.push({ resolved: resolves });
    this.#write(lines, sync);
  }

  /**
   * Appends an intent without fsyncing: the caller calls {@linkcode sync}
   * before the transaction leaves (one fsync for every intent of a turn).
   */
  appendIntent(i: Intent): void {
    this.#write([{ intent: i }], false);
  }

  /** Makes everything appended so far durable. */
  sync(): void {
    this.#fd?.syncSync();
  }

  resolve(id: number): void {
    this.#write([{ resolved: id }]);
  }

  #write(lines: unknown[], sync = true, raw?: Uint8Array): void {
    const fd = this.#fd;
    if (fd === null) throw new Error("hooks WAL is not open");
    if (this.#torn) {
      fd.truncateSync(this.#size); // still failing: so does this append
      this.#torn = false;
    }
    const data = raw ??
      encoder.encode(lines.map((l) => JSON.stringify(l) + "\n").join(""));
    try {
      writeAllSync(fd, data);
    } catch (err) {
      // Part of it may be written (a full disk): cut it, or the next line
      // would be glued to the fragment and a restart would lose both.
      try {
        fd.truncateSync(this.#size);
      } catch {
        this.#torn = true;
      }
      throw err;
    }
    this.#size += data.length;
    if (sync) fd.syncSync();
  }

  /**
   * Seals the active segment as `seg` and starts a new one at `next`: the new
   * one is made aside first, then two renames. A crash between them leaves
   * the sealed segment and `nextPath` (load() finishes the rotate); before
   * the first, a stale `nextPath` (load() deletes it). Until the first
   * rename the active file stays open and named, so a failure there (a full
   * disk) leaves the WAL as it was: appends go on and the caller may try
   * again. A failure after it (EIO on a rename) closes the WAL, as its file
   * is then the sealed segment.
   */
  rotate(seg: SegmentInfo, next: number): void {
    const fd = this.#fd;
    if (fd === null) throw new Error("hooks WAL is not open");
    fd.syncSync(); // what it holds is durable before it is sealed
    try {
      const f = Deno.openSync(this.nextPath, {
        write: true,
        create: true,
        truncate: true,
      });
      try {
        writeAllSync(f, header(this.plugin, next));
        f.syncSync();
      } finally {
        f.close();
      }
      syncDir(this.dir); // the new file's entry is durable before the seal
      Deno.renameSync(this.activePath, this.sealedPath(seg));
    } catch (err) {
      try {
        Deno.removeSync(this.nextPath);
      } catch {
        // not made, or the disk refuses even this: load() deletes it
      }
      throw err;
    }
    this.#fd = null;
    fd.close();
    // The seal is durable before the new file takes the active name: a file
    // system that kept the second rename alone would drop the segment.
    syncDir(this.dir);
    Deno.renameSync(this.nextPath, this.activePath);
    syncDir(this.dir);
    this.open(next);
  }

  /** What a crash mid-rotate left (see rotate()): the new segment in place, or a stale one gone. */
  #finishRotate(hasActive: boolean): void {
    try {
      if (hasActive) Deno.removeSync(this.nextPath);
      else Deno.renameSync(this.nextPath, this.activePath);
      syncDir(this.dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Deletes a fully acked sealed segment. */
  remove(seg: SegmentInfo): void {
    try {
      Deno.removeSync(this.sealedPath(seg));
      syncDir(this.dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  close(): void {
    this.#fd?.syncSync();
    this.#fd?.close();
    this.#fd = null;
  }
}

function header(plugin: string, first: number): Uint8Array {
  return encoder.encode(
    JSON.stringify({ wal: 1, plugin, first_seq: first }) + "\n",
  );
}

function firstSeq(entries: WalEntry[]): number {
  return entries.length > 0 ? entries[0].seq : 1;
}

/** Entries of a segment's text; the header's first seq if there is one. */
export function parseLines(
  text: string,
): {
  entries: WalEntry[];
  corrupt: number;
  header: number | null;
  intents: Intent[];
  resolved: number[];
} {
  const lines = text.split("\n");
  // The text after the last newline never finished its append: not acknowledged, not lost.
  lines.pop();
  const entries: WalEntry[] = [];
  let corrupt = 0;
  let hdr: number | null = null;
  const intents: Intent[] = [];
  const resolved: number[] = [];
  for (const line of lines) {
    if (line === "") continue;
    try {
      const o = JSON.parse(line);
      if (o.intent && typeof o.intent.id === "number") {
        intents.push(o.intent);
        continue;
      }
      if (typeof o.resolved === "number") {
        resolved.push(o.resolved);
        continue;
      }
      if (o.wal === 1 && typeof o.first_seq === "number") {
        hdr = o.first_seq;
        continue;
      }
      if (
        typeof o.seq !== "number" || typeof o.kind !== "string" ||
        typeof o.ts !== "number" || typeof o.dedup_key !== "string"
      ) throw new Error("bad entry");
      entries.push({
        seq: o.seq,
        kind: o.kind,
        ts: o.ts,
        payload_json: JSON.stringify(o.payload ?? {}),
        dedup_key: o.dedup_key,
      });
    } catch {
      corrupt++;
    }
  }
  return { entries, corrupt, header: hdr, intents, resolved };
}

/**
 * Bytes of the file up to and with its last newline. Read from the end, a
 * block at a time: load() has just read the whole segment, and a torn line
 * is at most one entry long.
 */
function wholeLines(path: string, size: number): number {
  const f = Deno.openSync(path, { read: true });
  try {
    const block = new Uint8Array(4096);
    for (let end = size; end > 0;) {
      const start = Math.max(0, end - block.length);
      f.seekSync(start, Deno.SeekMode.Start);
      const n = readFullSync(f, block.subarray(0, end - start));
      const nl = block.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return 0;
  } finally {
    f.close();
  }
}

function readFullSync(f: Deno.FsFile, buf: Uint8Array): number {
  let off = 0;
  while (off < buf.length) {
    const n = f.readSync(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}

function writeAllSync(f: Deno.FsFile, data: Uint8Array): void {
  for (let off = 0; off < data.length;) off += f.writeSync(data.subarray(off));
}

/** Makes a create or rename durable (best effort: not every platform can fsync a directory). */
function syncDir(dir: string): void {
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch {
    // unsupported here
  }
}
