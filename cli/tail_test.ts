/**
 * The tail loop against a real HTTP server that plays a node: it serves a
 * growing log from `since_bytes` and cuts connections mid-stream.
 */
import assert from "node:assert/strict";
import { CliError } from "./errors.ts";
import {
  newResult,
  tailLoop,
  type TailOptions,
  type TailTarget,
} from "./tail_loop.ts";
import type { TaskState } from "../node/schema.ts";

interface FakeNode extends AsyncDisposable {
  addr: string;
  log: Uint8Array;
  append(bytes: Uint8Array): void;
  /** Task over: follows drain and end. */
  end(): void;
  requests: { since: number; follow: boolean }[];
}

/**
 * A node on a raw socket (so a cut is a real closed connection): it answers
 * from `since_bytes`, and when `cutAfter()` returns a number it closes the
 * connection after that many bytes of body.
 */
function fakeNode(cutAfter: () => number | null): FakeNode {
  let log = new Uint8Array(0);
  let ended = false;
  const requests: { since: number; follow: boolean }[] = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const enc = new TextEncoder();
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      const buf = new Uint8Array(4096);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder().decode(buf.subarray(0, n));
      }
      const u = new URL(head.split(" ")[1], "http://x");
      const since = Number(u.searchParams.get("since_bytes") ?? 0);
      const max = u.searchParams.has("max_bytes")
        ? Number(u.searchParams.get("max_bytes"))
        : Infinity;
      const follow = u.searchParams.get("follow") === "1";
      requests.push({ since, follow });
      if (since > log.length) {
        // As node/shell/tail.ts answers an offset past the end.
        const body = `since_bytes ${since} is past the end of the log\n`;
        await conn.write(enc.encode(
          `HTTP/1.1 416 Range Not Satisfiable\r\nx-boi-size: ${log.length}\r\n` +
            `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        ));
        return;
      }
      const cut = cutAfter();
      await conn.write(enc.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n" +
          "transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
      ));
      let pos = since;
      let sent = 0;
      for (;;) {
        const done = ended;
        const room = Math.min(max - sent, cut === null ? Infinity : cut - sent);
        if (room <= 0) break;
        if (pos < log.length) {
          const n = Math.min(room, log.length - pos, 997);
          await conn.write(enc.encode(`${n.toString(16)}\r\n`));
          await conn.write(log.slice(pos, pos + n));
          await conn.write(enc.encode("\r\n"));
          pos += n;
          sent += n;
          continue;
        }
        if (!follow || done) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const wasCut = cut !== null && sent >= cut && max - sent > 0;
      if (!wasCut) await conn.write(enc.encode("0\r\n\r\n"));
    } catch {
      // the client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) serve(conn);
    } catch { /* listener closed */ }
  })();
  return {
    addr: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get log() {
      return log;
    },
    append(bytes) {
      const next = new Uint8Array(log.length + bytes.length);
      next.set(log);
      next.set(bytes, log.length);
      log = next;
    },
    end() {
      ended = true;
    },
    requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  }
  return b;
}

function collector() {
  const parts: Uint8Array[] = [];
  return {
    write: (b: Uint8Array) => {
      parts.push(b.slice());
      return Promise.resolve();
    },
    bytes(): Uint8Array {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    },
  };
}

function target(
  node: FakeNode | null,
  state: TaskState,
  nodeId = "n1",
): TailTarget {
  return {
    state,
    terminal: ["DONE", "FAILED", "CANCELLED"].includes(state),
    node_id: nodeId,
    addr: node?.addr ?? null,
  };
}

const quiet = { warn: () => {}, watchMs: 200, maxBackoffMs: 50 };

Deno.test("tail: a read cut again and again resumes at its offset: no gap, no duplicate", async () => {
  // Every response is cut after 1..5000 bytes.
  await using node = fakeNode(() => 1 + Math.floor(Math.random() * 5000));
  node.append(random(60_000));
  const out = collector();
  const opts: TailOptions = { follow: false, since_bytes: 0, max_bytes: null };
  const r = await tailLoop("s.t", opts, {
    ...quiet,
    resolve: () => Promise.resolve(target(node, "DONE")),
    fetch,
    write: out.write,
    signal: new AbortController().signal,
  });
  assert.deepEqual(out.bytes(), node.log);
  assert.equal(r.offset, 60_000);
  assert.ok(node.requests.length > 5, `${node.requests.length} requests`);
  // Each request starts where the bytes written so far end.
  for (let i = 1; i < node.requests.length; i++) {
    assert.ok(node.requests[i].since >= node.requests[i - 1].since);
  }
});

Deno.test("tail --follow: a growing log with cut connections arrives whole, and the loop ends with the task", async () => {
  await using node = fakeNode(() =>
    Math.random() < 0.5 ? 1 + Math.floor(Math.random() * 3000) : null
  );
  let state: TaskState = "RUNNING";
  const out = collector();
  const writer = (async () => {
    for (let i = 0; i < 40; i++) {
      node.append(random(500 + Math.floor(Math.random() * 2000)));
      await new Promise((r) => setTimeout(r, 5));
    }
    node.end();
    state = "DONE";
  })();
  const r = await tailLoop("s.t", {
    follow: true,
    since_bytes: 0,
    max_bytes: null,
  }, {
    ...quiet,
    resolve: () => Promise.resolve(target(node, state)),
    fetch,
    write: out.write,
    signal: new AbortController().signal,
  });
  await writer;
  assert.equal(r.state, "DONE");
  assert.equal(r.offset, node.log.length);
  assert.deepEqual(out.bytes(), node.log);
});

Deno.test("tail: --since-bytes and --max-bytes pick a byte range", async () => {
  await using node = fakeNode(() => null);
  node.append(new TextEncoder().encode("0123456789abcdef"));
  const out = collector();
  const r = await tailLoop("s.t", {
    follow: true,
    since_bytes: 4,
    max_bytes: 6,
  }, {
    ...quiet,
    resolve: () => Promise.resolve(target(node, "RUNNING")),
    fetch,
    write: out.write,
    signal: new AbortController().signal,
  });
  assert.equal(new TextDecoder().decode(out.bytes()), "456789");
  assert.equal(r.offset, 10);
  assert.equal(r.written, 6);
});

Deno.test("tail: --since-bytes past the end is a usage error naming the size, not an offset beyond the file", async () => {
  await using node = fakeNode(() => null);
  node.append(new TextEncoder().encode("0123456789abcdef"));
  for (const follow of [false, true]) {
    const out = collector();
    await assert.rejects(
      tailLoop("s.t", { follow, since_bytes: 100, max_bytes: null }, {
        ...quiet,
        resolve: () => Promise.resolve(target(node, "DONE")),
        fetch,
        write: out.write,
        signal: new AbortController().signal,
      }),
      (e) =>
        e instanceof CliError && e.code === 2 &&
        e.message ===
          "tail: --since-bytes 100 is past the end of the log of s.t on node n1 (16 bytes)",
    );
    assert.equal(out.bytes().length, 0);
  }
});

Deno.test("tail: a finished task whose node is gone is 'log unavailable'", async () => {
  const out = collector();
  await assert.rejects(
    tailLoop("s.t", { follow: true, since_bytes: 0, max_bytes: null }, {
      ...quiet,
      resolve: () => Promise.resolve(target(null, "DONE", "node-x")),
      fetch,
      write: out.write,
      signal: new AbortController().signal,
    }),
    (e) =>
      e instanceof CliError &&
      e.message ===
        "log unavailable: node node-x is not live (task state DONE)",
  );
});

Deno.test("tail --follow: a task that moves to another node is followed there from offset 0", async () => {
  await using a = fakeNode(() => null);
  await using b = fakeNode(() => null);
  a.append(new TextEncoder().encode("attempt 1 on a\n"));
  b.append(new TextEncoder().encode("attempt 2 on b\n"));
  let t = target(a, "RUNNING", "a");
  const lines: string[] = [];
  const out = collector();
  setTimeout(() => {
    a.end(); // a's worker is gone; the task runs on b now
    t = target(b, "RUNNING", "b");
    setTimeout(() => {
      b.end();
      t = target(b, "DONE", "b");
    }, 100);
  }, 100);
  const r = await tailLoop("s.t", {
    follow: true,
    since_bytes: 0,
    max_bytes: null,
  }, {
    ...quiet,
    warn: (l) => lines.push(l),
    resolve: () => Promise.resolve(t),
    fetch,
    write: out.write,
    signal: new AbortController().signal,
  });
  assert.equal(
    new TextDecoder().decode(out.bytes()),
    "attempt 1 on a\nattempt 2 on b\n",
  );
  assert.equal(r.node_id, "b");
  assert.equal(r.offset, 15);
  assert.ok(
    lines.some((l) => /moved from node a to b/.test(l)),
    lines.join("\n"),
  );
});

Deno.test("tail --follow: a signal stops it with the offset of what was written", async () => {
  await using node = fakeNode(() => null);
  node.append(new TextEncoder().encode("first chunk\n"));
  const ac = new AbortController();
  const out = collector();
  const r = newResult({ follow: true, since_bytes: 0, max_bytes: null });
  await tailLoop("s.t", { follow: true, since_bytes: 0, max_bytes: null }, {
    ...quiet,
    resolve: () => Promise.resolve(target(node, "RUNNING")),
    fetch,
    write: (b) => {
      setTimeout(() => ac.abort(), 20);
      return out.write(b);
    },
    signal: ac.signal,
  }, r);
  assert.equal(r.interrupted, true);
  assert.equal(r.offset, 12);
  assert.equal(new TextDecoder().decode(out.bytes()), "first chunk\n");
});

Deno.test("tail --follow: a task that moves while a slow reader is behind still gets the rest of the old node's log before the new one", async () => {
  await using a = fakeNode(() => null);
  await using b = fakeNode(() => null);
  const first = random(8_000); // several of the fake node's 997-byte chunks
  a.append(first);
  b.append(new TextEncoder().encode("attempt 2 on b\n"));
  let t = target(a, "RUNNING", "a");
  setTimeout(() => t = target(b, "RUNNING", "b"), 50); // a stays live
  setTimeout(() => {
    b.end();
    t = target(b, "DONE", "b");
  }, 1500);
  const out = collector();
  await tailLoop("s.t", { follow: true, since_bytes: 0, max_bytes: null }, {
    ...quiet,
    resolve: () => Promise.resolve(t),
    fetch,
    // A slow reader: the follow of a is cut long before it has read a's log.
    write: async (bytes) => {
      await new Promise((r) => setTimeout(r, 60));
      await out.write(bytes);
    },
    signal: new AbortController().signal,
  });
  const got = out.bytes();
  assert.equal(got.length, first.length + 15);
  assert.deepEqual(got.subarray(0, first.length), first);
  assert.equal(
    new TextDecoder().decode(got.subarray(first.length)),
    "attempt 2 on b\n",
  );
});

Deno.test("tail --follow: a task back on a node it ran on before resumes that node's log where this run left it, not from 0", async () => {
  await using a = fakeNode(() => null);
  await using b = fakeNode(() => null);
  const enc = new TextEncoder();
  a.append(enc.encode("attempt 1 on a\n"));
  b.append(enc.encode("attempt 2 on b\n"));
  let t = target(a, "RUNNING", "a");
  setTimeout(() => {
    t = target(b, "RUNNING", "b");
    setTimeout(() => {
      a.append(enc.encode("attempt 3 on a\n")); // one log per task per node
      t = target(a, "RUNNING", "a");
      setTimeout(() => {
        a.end();
        t = target(a, "DONE", "a");
      }, 400);
    }, 400);
  }, 100);
  const out = collector();
  await tailLoop("s.t", { follow: true, since_bytes: 0, max_bytes: null }, {
    ...quiet,
    resolve: () => Promise.resolve(t),
    fetch,
    write: out.write,
    signal: new AbortController().signal,
  });
  assert.equal(
    new TextDecoder().decode(out.bytes()),
    "attempt 1 on a\nattempt 2 on b\nattempt 3 on a\n",
  );
});
