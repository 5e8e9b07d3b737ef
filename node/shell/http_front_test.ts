import assert from "node:assert/strict";
import { connectionLimit, HttpFront } from "./http_front.ts";
import { REPO_ROOT } from "../../tests/harness/paths.ts";

const quiet = { info() {}, warn() {}, error() {} };

async function front(
  opts: { maxConnections?: number; headerTimeoutMs?: number } = {},
  handler: (req: Request) => Response | Promise<Response> = (req) =>
    new Response(`${req.method} ${new URL(req.url).host} ${req.url}\n`),
) {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "boi-front-" });
  const f = await HttpFront.listen({
    hostname: "127.0.0.1",
    port: 0,
    socketPath: `${dir}/http.sock`,
    log: quiet,
    ...opts,
  }, handler);
  return {
    f,
    port: f.addr.port,
    async [Symbol.asyncDispose]() {
      await f.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Sends raw bytes, returns everything until the server closes. */
async function raw(port: number, request: string): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  await c.write(new TextEncoder().encode(request));
  let out = "";
  const buf = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch { /* reset */ }
  c.close();
  return out;
}

/** Resolves when the server closes `c` (EOF or reset). */
async function closedByServer(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64);
  try {
    while ((await c.read(buf)) !== null) { /* nothing */ }
  } catch { /* reset */ }
}

Deno.test("front: requests pass through with the request target as sent and http:// URLs", async () => {
  await using s = await front();
  const r = await fetch(`http://127.0.0.1:${s.port}/a?b=1`, {
    method: "POST",
    body: "x".repeat(100_000),
  });
  assert.equal(
    await r.text(),
    `POST 127.0.0.1:${s.port} http://127.0.0.1:${s.port}/a?b=1\n`,
  );
  const out = await raw(
    s.port,
    "GET /x/../y HTTP/1.1\r\nhost: h:1\r\nconnection: close\r\n\r\n",
  );
  assert.match(out, /^HTTP\/1\.1 200 /);
  assert.match(out, /GET h:1 http:\/\/h:1\/x\/\.\.\/y\n$/);
});

Deno.test("front: a request head must end within the header timeout and 64 KiB", async () => {
  await using s = await front({ headerTimeoutMs: 300 });
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const t0 = Date.now();
  await closedByServer(idle);
  idle.close();
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 5000, `closed after ${took} ms`);
  assert.equal(s.f.stats.headerTimeouts, 1);
  const big = await raw(
    s.port,
    `GET / HTTP/1.1\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`,
  );
  assert.match(big, /^HTTP\/1\.1 431 /);
  // A kept-alive connection that finished its head is not timed out.
  const ka = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await ka.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: h\r\n\r\n"));
  const buf = new Uint8Array(4096);
  assert.ok((await ka.read(buf))! > 0);
  await new Promise((r) => setTimeout(r, 600));
  await ka.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: h\r\n\r\n"));
  assert.match(
    new TextDecoder().decode(buf.subarray(0, (await ka.read(buf))!)),
    /^HTTP\/1\.1 200 /,
  );
  ka.close();
});

Deno.test("front: over the limit, idle sockets make room; a busy one is not evicted for them", async () => {
  let release!: () => void;
  const slow = new Promise<void>((r) => release = r);
  await using s = await front({ maxConnections: 4 }, async (req) => {
    if (new URL(req.url).pathname === "/slow") await slow;
    return new Response("ok\n");
  });
  // One request in flight for a while, with bytes moving recently.
  const busy = fetch(`http://127.0.0.1:${s.port}/slow`).then((r) => r.text());
  await new Promise((r) => setTimeout(r, 100));
  const idle: Deno.Conn[] = [];
  for (let i = 0; i < 20; i++) {
    idle.push(await Deno.connect({ hostname: "127.0.0.1", port: s.port }));
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(s.f.stats.open <= 4, `open ${s.f.stats.open}`);
  const r = await fetch(`http://127.0.0.1:${s.port}/healthz`);
  assert.equal(await r.text(), "ok\n");
  release();
  assert.equal(await busy, "ok\n");
  assert.ok(s.f.stats.evicted >= 17, JSON.stringify(s.f.stats));
  for (const c of idle) c.close();
});

Deno.test("front: a client that goes away ends an endless response stream", async () => {
  const cancelled = Promise.withResolvers<void>();
  await using s = await front({}, () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("data: 1\n\n"));
        },
        cancel() {
          cancelled.resolve();
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    ));
  const ac = new AbortController();
  const r = await fetch(`http://127.0.0.1:${s.port}/events`, {
    signal: ac.signal,
  });
  const reader = r.body!.getReader();
  assert.ok((await reader.read()).value!.length > 0);
  ac.abort();
  await reader.cancel().catch(() => {});
  const t = setTimeout(
    () => cancelled.reject(new Error("not cancelled")),
    5000,
  );
  await cancelled.promise;
  clearTimeout(t);
  await waitOpen(s.f, 0);
});

async function waitOpen(f: HttpFront, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (f.stats.open !== n) {
    if (Date.now() > deadline) {
      throw new Error(`still ${f.stats.open} relays open, want ${n}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("front: connection limit is an eighth of the open-file limit, 8 to 512", () => {
  assert.equal(connectionLimit(256), 32);
  assert.equal(connectionLimit(1024), 128);
  assert.equal(connectionLimit(20), 8);
  assert.equal(connectionLimit(1 << 20), 512);
});

Deno.test("front: accept failing with EMFILE is logged and survived; the server answers once descriptors free up", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "boi-front-" });
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n 128 && exec "$0" "$@"',
      Deno.execPath(),
      "run",
      "-q",
      "-A",
      `${REPO_ROOT}/tests/harness/testdata/front_server.ts`,
      dir,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let port = 0;
  const pump = (async () => {
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      rest += value;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        if (l.startsWith("listening ")) port = Number(l.slice(10));
      }
    }
  })();
  const conns: Deno.Conn[] = [];
  try {
    while (port === 0) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 300; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    // The front hit EMFILE and said so, instead of dying.
    const deadline = Date.now() + 10_000;
    while (
      Date.now() < deadline &&
      !lines.some((l) => /http out of descriptors/.test(l))
    ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      lines.some((l) =>
        /http out of descriptors/.test(l) && /open files/i.test(l)
      ),
      lines.join("\n"),
    );
    // Once the flood is gone, it answers again.
    for (const c of conns.splice(0)) c.close();
    let answered = "";
    while (Date.now() < deadline + 10_000 && answered === "") {
      answered = await fetch(`http://127.0.0.1:${port}/healthz`, {
        signal: AbortSignal.timeout(1000),
      }).then((r) => r.text(), () => "");
    }
    assert.equal(answered, "ok\n", lines.join("\n"));
    const st = await Promise.race([
      child.status,
      new Promise((r) => setTimeout(() => r(null), 100)),
    ]);
    assert.equal(st, null, "the server exited");
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    child.kill("SIGKILL");
    await child.status;
    await pump.catch(() => {});
    await child.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});
