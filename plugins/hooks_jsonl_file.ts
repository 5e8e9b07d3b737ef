/**
 * hooks_jsonl's file: one handle kept open (reopened after an error), and
 * every batch of lines written with one write and at most one fsync.
 * Opening per event (open + write + close) was most of the sink's CPU per
 * event in the bench.
 * @module
 */

/** The part of `Deno.FsFile` the appender uses. */
export interface AppendFile {
  write(p: Uint8Array): Promise<number>;
  sync(): Promise<void>;
  stat(): Promise<{ size: number }>;
  read(p: Uint8Array): Promise<number | null>;
  seek(offset: number, whence: Deno.SeekMode): Promise<number>;
  close(): void;
}

/** Opens `path` for reading and appending (created if missing). */
export type OpenAppend = (path: string) => Promise<AppendFile>;

const openAppend: OpenAppend = (path) =>
  Deno.open(path, { read: true, append: true, create: true });

/** Appends line batches to one file; see the module doc. */
export class JsonlAppender {
  #f: AppendFile | null = null;
  #encoder = new TextEncoder();

  constructor(
    readonly path: string,
    /** @default Deno.open for read + append + create */
    private readonly open: OpenAppend = openAppend,
  ) {}

  /**
   * Writes `text` (whole lines) and, if `sync`, fsyncs it before resolving.
   * On a failure the handle is dropped, so the next batch reopens the file.
   */
  async append(text: string, sync: boolean): Promise<void> {
    const f = this.#f ?? await this.#reopen();
    try {
      let buf = this.#encoder.encode(text);
      while (buf.length > 0) buf = buf.subarray(await f.write(buf));
      if (sync) await f.sync();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  close(): void {
    try {
      this.#f?.close();
    } catch {
      // already closed
    }
    this.#f = null;
  }

  /**
   * A line torn by a crash or a failed write is ended first, so the next
   * line is not glued to it (keysInFile skips the torn one).
   */
  async #reopen(): Promise<AppendFile> {
    const f = await this.open(this.path);
    try {
      const { size } = await f.stat();
      if (size > 0) {
        const last = new Uint8Array(1);
        await f.seek(size - 1, Deno.SeekMode.Start);
        if (await f.read(last) === 1 && last[0] !== 0x0a) {
          await f.write(this.#encoder.encode("\n"));
        }
      }
    } catch (e) {
      f.close();
      throw e;
    }
    this.#f = f;
    return f;
  }
}
