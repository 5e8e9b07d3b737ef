import assert from "node:assert/strict";
import {
  FLUSH_CAP_BYTES,
  type FlushEntry,
  PendingFlush,
} from "./pending_flush.ts";
import { Logger } from "./log.ts";

function entry(i: number, error: string): FlushEntry {
  return {
    task_id: `s1.t${i}`,
    fence: 100 + i,
    attempt: 1,
    code: 1,
    signal: null,
    error,
    lost: false,
    started_at: 1,
    finished_at: 2,
    parked_at: 3,
  };
}

Deno.test("SPEC §6: the pending-flush cap is 100 MB, which is also within 100 MiB", () => {
  assert.equal(FLUSH_CAP_BYTES, 100_000_000);
});

Deno.test("SPEC §6: the pending-flush file never grows past its cap in bytes, whatever the results' text (UTF-8, not UTF-16 units); the oldest go first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-flush-" });
  try {
    const path = `${dir}/node-a.jsonl`;
    const cap = 2000;
    const evicted: string[] = [];
    const f = new PendingFlush(
      path,
      new Logger({}, "error"),
      cap,
      (e) => evicted.push(e.task_id),
    );
    await f.load();
    // 150 characters of two bytes each: a line is ~400 bytes but ~250 units.
    const text = "ü".repeat(150);
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      await f.append(entry(i, text));
      const size = (await Deno.stat(path)).size;
      seen.push(`${i}:${size}`);
      assert.ok(size <= cap, `file ${size} bytes over the cap ${cap}: ${seen}`);
      assert.equal(f.bytes, size, `bytes kept ${f.bytes}, file ${size}`);
    }
    assert.ok(evicted.length > 0, "something was evicted");
    assert.equal(evicted[0], "s1.t0");
    const kept = f.entries.map((e) => e.task_id);
    assert.equal(kept.at(-1), "s1.t11");
    assert.deepEqual((await f.load()).map((e) => e.task_id), kept);
    assert.equal(f.bytes, (await Deno.stat(path)).size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pending flush: an entry appended and fsynced is durable even when the eviction's rewrite fails (a full disk): append resolves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-flush-" });
  try {
    const path = `${dir}/node-a.jsonl`;
    const f = new PendingFlush(path, new Logger({}, "error"), 600, () => {});
    await f.load();
    await f.append(entry(0, "first"));
    // The rewrite's temporary file cannot be made: every rewrite fails.
    await Deno.mkdir(`${path}.tmp`);
    await f.append(entry(1, "x".repeat(500)));
    const lines = (await Deno.readTextFile(path)).trim().split("\n");
    assert.equal(lines.length, 2, "the new line is in the file");
    assert.equal(JSON.parse(lines[1]).task_id, "s1.t1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pending flush: a torn last line (a crash mid-write) is dropped at load, so the next append is not fused to it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-flush-" });
  try {
    const path = `${dir}/node-a.jsonl`;
    const whole = JSON.stringify(entry(0, "kept")) + "\n";
    const torn = JSON.stringify(entry(1, "torn")).slice(0, 40);
    await Deno.writeTextFile(path, whole + torn);
    const f = new PendingFlush(path, new Logger({}, "error"), 1_000_000);
    assert.deepEqual((await f.load()).map((e) => e.task_id), ["s1.t0"]);
    await f.append(entry(2, "after"));
    const again = new PendingFlush(path, new Logger({}, "error"), 1_000_000);
    assert.deepEqual((await again.load()).map((e) => e.task_id), [
      "s1.t0",
      "s1.t2",
    ]);
    assert.equal(again.bytes, (await Deno.stat(path)).size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pending flush: a torn tail that load() cannot write back is rewritten before the next append, so that append survives a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-flush-" });
  try {
    const path = `${dir}/node-a.jsonl`;
    const whole = JSON.stringify(entry(0, "kept")) + "\n";
    await Deno.writeTextFile(
      path,
      whole + JSON.stringify(entry(1, "t")).slice(0, 40),
    );
    await Deno.mkdir(`${path}.tmp`); // the write-back cannot make its file
    const f = new PendingFlush(path, new Logger({}, "error"), 1_000_000);
    assert.deepEqual((await f.load()).map((e) => e.task_id), ["s1.t0"]);
    await assert.rejects(
      f.append(entry(2, "refused")),
      "no rewrite: no append",
    );
    await Deno.remove(`${path}.tmp`);
    await f.append(entry(3, "after"));
    const again = new PendingFlush(path, new Logger({}, "error"), 1_000_000);
    assert.deepEqual((await again.load()).map((e) => e.task_id), [
      "s1.t0",
      "s1.t3",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Mounts a tmpfs of `bytes` at a new directory; null when this user may not mount (the test says so). */
async function smallDisk(bytes: number): Promise<string | null> {
  const dir = await Deno.makeTempDir({ prefix: "boi-flush-disk-" });
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stderr: String(e) }));
  if (out.success) return dir;
  await Deno.remove(dir);
  return null;
}

Deno.test("pending flush: an append the disk cuts half-way (ENOSPC) is cut back, so the next acknowledged append survives a restart", async (t) => {
  const disk = await smallDisk(64 * 1024);
  if (disk === null) {
    console.warn(
      "SKIPPED: mounting a 64 KiB tmpfs needs root (mount -t tmpfs)",
    );
    t.step({
      name: "SKIPPED: cannot mount a tmpfs here",
      ignore: true,
      fn() {},
    });
    return;
  }
  try {
    const path = `${disk}/node-a.jsonl`;
    const f = new PendingFlush(path, new Logger({}, "error"), 1_000_000);
    await f.load();
    await f.append(entry(0, "first")); // one page of the disk
    // Fill the disk, then give one 4 KiB page back: an 8 KB line gets part
    // of the way in and then ENOSPC.
    const filler = await Deno.open(`${disk}/filler`, {
      write: true,
      create: true,
    });
    const chunk = new Uint8Array(4096);
    let size = 0;
    for (;;) {
      try {
        size += await filler.write(chunk);
      } catch {
        break;
      }
    }
    await filler.truncate(size - 4096);
    filler.close();
    await assert.rejects(f.append(entry(1, "x".repeat(8000))));
    await Deno.remove(`${disk}/filler`);
    await f.append(entry(2, "after the disk has room again"));
    const again = new PendingFlush(path, new Logger({}, "error"), 1_000_000);
    assert.deepEqual((await again.load()).map((e) => e.task_id), [
      "s1.t0",
      "s1.t2",
    ]);
  } finally {
    // Lazy: a descriptor Deno's async file ops still hold a moment after
    // close (the append that failed) made a plain umount fail with EBUSY
    // once in CI, and then the directory could not be removed.
    await new Deno.Command("umount", { args: ["-l", disk] }).output();
    await Deno.remove(disk, { recursive: true });
  }
});

/** `strace` from PATH, or null: the durability check below watches the syscalls. */
function strace(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/strace`).isFile) return `${dir}/strace`;
    } catch { /* not here */ }
  }
  return null;
}

Deno.test({
  name:
    "pending flush: the file's creation and each rewrite's rename are made durable with an fsync of its directory",
  async fn() {
    // No skip: scripts/setup.sh installs strace with the other test tools.
    assert.ok(
      strace() !== null,
      "strace is missing: run scripts/setup.sh (apt-get install strace)",
    );
    const dir = await Deno.makeTempDir({ prefix: "boi-flush-" });
    try {
      const mod = new URL("./pending_flush.ts", import.meta.url).href;
      const logMod = new URL("./log.ts", import.meta.url).href;
      const code = `
        import { PendingFlush } from ${JSON.stringify(mod)};
        import { Logger } from ${JSON.stringify(logMod)};
        const e = ${JSON.stringify(entry(0, "x"))};
        const f = new PendingFlush(${
        JSON.stringify(`${dir}/n.jsonl`)
      }, new Logger({}, "error"));
        await f.load();
        await f.append(e);
        console.log("appended");
        await f.remove(e.task_id, e.fence);
        console.log("removed");`;
      const out = await new Deno.Command(strace()!, {
        args: [
          "-f",
          "-qq",
          "-e",
          "trace=openat,fsync,close,write",
          "-e",
          "signal=none",
          "-o",
          `${dir}/trace`,
          Deno.execPath(),
          "eval",
          "-q",
          code,
        ],
        cwd: new URL("../..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      assert.equal(
        stdout,
        "appended\nremoved\n",
        new TextDecoder().decode(out.stderr),
      );
      const lines = (await Deno.readTextFile(`${dir}/trace`)).split("\n");
      // An open of the directory itself, then an fsync before the next open
      // (Deno syncs a dup of the fd it opened, so fd numbers do not match).
      let dirOpen = false;
      let dirSyncs = 0;
      for (const l of lines) {
        const open = l.match(/openat\(AT_FDCWD, "([^"]+)"/);
        if (open) dirOpen = open[1] === dir;
        if (dirOpen && /fsync\(\d+\)\s+= 0/.test(l)) {
          dirSyncs++;
          dirOpen = false;
        }
      }
      assert.ok(
        dirSyncs >= 2,
        `${dirSyncs} fsyncs of ${dir} (want one for the creation, one for the rename)`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
