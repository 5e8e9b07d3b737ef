/**
 * The `spec_cache` capability between core's GrpcWorkspace and real SDK
 * plugin processes (plugins/test_spec_recorder.ts, started by hand): the
 * handler sees the whole YAML on every call, the bytes core sends (counted
 * by a proxy on the socket) stay small for repeated Prepares of one spec, a lost cache costs one resend and
 * no failed call, and a plugin without the capability gets the YAML every time.
 */
import assert from "node:assert/strict";
import { CORE_CAPABILITIES, PluginConnection } from "./grpc_client.ts";
import { GrpcWorkspace } from "./grpc_workspace.ts";
import { specCacheSession } from "./spec_cache_client.ts";
import { SPEC_CACHE_CAPABILITY, specDigest } from "./spec_cache_wire.ts";
import { PROTO_MAJOR, PROTO_MINOR } from "../../proto/mod.ts";
import { pluginArgv, PluginProcess, tempDir } from "../../plugins/test_util.ts";

/** What the recorder's prepare handler was handed, one entry per call. */
interface Seen {
  spec_id: string;
  task_id: string;
  length: number;
  digest: string;
}

/** A spec of about `kib` KiB of YAML (the bench's 5,000-task specs are ~160). */
function bigSpec(name: string, kib: number): string {
  const lines = [`name: ${name}`, "tasks:"];
  for (let i = 0; lines.join("\n").length < kib * 1024; i++) {
    lines.push(`  - id: t${i}`, `    run: [echo, "task ${i} of ${name}"]`);
  }
  return lines.join("\n") + "\n";
}

/**
 * A Unix-socket proxy between core and the plugin that counts the bytes core
 * sends: what the wire carried, whichever transport and framing.
 */
class CountingProxy {
  toPlugin = 0;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();

  constructor(readonly path: string, target: string) {
    const listener = Deno.listen({ transport: "unix", path });
    this.#listener = listener;
    (async () => {
      for await (const c of listener) {
        this.#conns.add(c);
        Deno.connect({ transport: "unix", path: target }).then((up) => {
          this.#conns.add(up);
          const count = new TransformStream<Uint8Array, Uint8Array>({
            transform: (chunk, ctl) => {
              this.toPlugin += chunk.byteLength;
              ctl.enqueue(chunk);
            },
          });
          c.readable.pipeThrough(count).pipeTo(up.writable).catch(() => {});
          up.readable.pipeTo(c.writable).catch(() => {});
        }, () => c.close());
      }
    })().catch(() => {});
  }

  close(): void {
    this.#listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed by its pipe already
      }
    }
  }
}

class Recorder {
  readonly socket: string;
  readonly record: string;
  p: PluginProcess;

  constructor(readonly dir: string, readonly env: Record<string, string>) {
    this.socket = `${dir}/ws.sock`;
    this.record = `${dir}/seen.jsonl`;
    this.p = this.#spawn();
  }

  #spawn(): PluginProcess {
    return new PluginProcess(
      pluginArgv("test_spec_recorder.ts", [], { socket: this.socket }),
      {
        BOI_PLUGIN_SOCKET: this.socket,
        BOI_PLUGIN_KIND: "workspace",
        BOI_RECORDER_FILE: this.record,
        ...this.env,
      },
    );
  }

  /** SIGKILLs the process (its cache is gone) and starts a new one on the same socket. */
  async restart(): Promise<void> {
    this.p.child.kill("SIGKILL");
    await this.p.exit().catch(() => {});
    this.p = this.#spawn();
    await this.p.ready();
  }

  async seen(): Promise<Seen[]> {
    const text = await Deno.readTextFile(this.record).catch(() => "");
    return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  }
}

async function withRecorder(
  env: Record<string, string>,
  coreCapabilities: readonly string[],
  fn: (
    r: Recorder,
    conn: PluginConnection,
    ws: GrpcWorkspace,
    proxy: CountingProxy,
  ) => Promise<void>,
): Promise<void> {
  const dir = await tempDir("boi-speccache-");
  const r = new Recorder(dir, env);
  const proxy = new CountingProxy(`${dir}/proxy.sock`, r.socket);
  const conn = new PluginConnection("workspace", proxy.path);
  try {
    await r.p.ready();
    await conn.handshake({
      core_version: "test",
      proto_major: PROTO_MAJOR,
      proto_minor: PROTO_MINOR,
      capabilities: [...coreCapabilities],
    });
    await fn(r, conn, new GrpcWorkspace({ connection: conn }), proxy);
  } finally {
    conn.close();
    proxy.close();
    await r.p.closeStdin().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

const REPEATS = 20;

/** Prepares `REPEATS` tasks of one spec; returns the bytes core sent meanwhile. */
async function repeatedPrepares(
  proxy: CountingProxy,
  ws: GrpcWorkspace,
  spec_id: string,
  yaml: string,
): Promise<number> {
  const before = proxy.toPlugin;
  for (let i = 0; i < REPEATS; i++) {
    await ws.prepare({
      spec_id,
      task_id: `${spec_id}.t${i}`,
      spec_yaml: yaml,
      hints: {},
    });
  }
  return proxy.toPlugin - before;
}

function assertAllFull(seen: Seen[], spec_id: string, yaml: string, n: number) {
  const mine = seen.filter((s) => s.spec_id === spec_id);
  assert.equal(mine.length, n, `prepare calls of ${spec_id}`);
  for (const s of mine) {
    assert.deepEqual(
      { length: s.length, digest: s.digest },
      { length: yaml.length, digest: specDigest(yaml) },
      `${s.task_id}: the handler got another spec_yaml than core's`,
    );
  }
}

Deno.test("spec_cache: the handler sees the full spec_yaml on every Prepare; core sends the 200 KiB YAML once, not 20 times", async () => {
  await withRecorder({}, CORE_CAPABILITIES, async (r, conn, ws, proxy) => {
    assert.ok(conn.negotiated.includes(SPEC_CACHE_CAPABILITY));
    assert.equal(conn.transport, "mux");
    const yaml = bigSpec("big", 200);
    const sent = await repeatedPrepares(proxy, ws, "big-aaaaaa", yaml);
    assertAllFull(await r.seen(), "big-aaaaaa", yaml, REPEATS);
    console.log(
      `${REPEATS} Prepares of a ${yaml.length}-byte spec: core sent ${sent} bytes`,
    );
    // One full copy plus small frames; without the cache it is ≥ 20 copies.
    assert.ok(sent < 2 * yaml.length, `sent ${sent} bytes`);
    assert.deepEqual(specCacheSession(conn, 32)?.stats, {
      full: 1,
      cached: REPEATS - 1,
      misses: 0,
    });

    // An empty spec is sent as such, never confused with "use the cache".
    for (const t of ["e.t1", "e.t2"]) {
      await ws.prepare({ spec_id: "e", task_id: t, spec_yaml: "", hints: {} });
    }
    assertAllFull(await r.seen(), "e", "", 2);
    // The same spec id with other YAML (dispatched again) goes in full.
    await ws.prepare({
      spec_id: "big-aaaaaa",
      task_id: "big-aaaaaa.again",
      spec_yaml: "name: big\n",
      hints: {},
    });
    const last = (await r.seen()).at(-1)!;
    assert.equal(last.digest, specDigest("name: big\n"));
  });
});

Deno.test("spec_cache: a plugin restarted under the same socket (its cache lost) is resent the YAML once; no Prepare fails", async () => {
  // Plain RPCs (core announces no mux): the channel reconnects to the new
  // process by itself, the way an attached sidecar's restart looks before
  // core notices it, so core still believes the spec was sent.
  await withRecorder({}, [SPEC_CACHE_CAPABILITY], async (r, conn, ws) => {
    assert.equal(conn.transport, "unary");
    const yaml = bigSpec("restart", 50);
    const prep = (t: string) =>
      ws.prepare({
        spec_id: "restart",
        task_id: `restart.${t}`,
        spec_yaml: yaml,
        hints: {},
      });
    await prep("t1");
    await prep("t2");
    await r.restart();
    await prep("t3"); // a miss, then the full resend
    await prep("t4"); // cached again
    assertAllFull(await r.seen(), "restart", yaml, 4);
    assert.deepEqual(specCacheSession(conn, 32)?.stats, {
      full: 2,
      cached: 3,
      misses: 1,
    });
  });
});

Deno.test("spec_cache: a spec evicted from the plugin's bounded cache is resent once", async () => {
  await withRecorder(
    { BOI_RECORDER_SPEC_CACHE: "1" },
    CORE_CAPABILITIES,
    async (r, conn, ws) => {
      const a = bigSpec("a", 4);
      const b = bigSpec("b", 4);
      const prep = (spec_id: string, yaml: string, t: string) =>
        ws.prepare({
          spec_id,
          task_id: `${spec_id}.${t}`,
          spec_yaml: yaml,
          hints: {},
        });
      await prep("a", a, "1");
      await prep("b", b, "1"); // evicts a from the plugin's cache of 1
      await prep("a", a, "2"); // core still remembers a: a miss, then full
      await prep("a", a, "3"); // cached
      assertAllFull(await r.seen(), "a", a, 3);
      assertAllFull(await r.seen(), "b", b, 1);
      assert.deepEqual(specCacheSession(conn, 32)?.stats, {
        full: 3,
        cached: 2,
        misses: 1,
      });
    },
  );
});

for (
  const [what, env] of [
    ["a 1.0 plugin (proto minor 0)", { BOI_RECORDER_PROTO_MINOR: "0" }],
    ["a 1.1 plugin that does not announce spec_cache", {
      BOI_RECORDER_SPEC_CACHE: "off",
    }],
  ] as const
) {
  Deno.test(`spec_cache: ${what} gets the full spec_yaml on the wire every call`, async () => {
    await withRecorder(env, CORE_CAPABILITIES, async (r, conn, ws, proxy) => {
      assert.ok(!conn.negotiated.includes(SPEC_CACHE_CAPABILITY));
      assert.equal(specCacheSession(conn, 32), null);
      const yaml = bigSpec("old", 200);
      const sent = await repeatedPrepares(proxy, ws, "old", yaml);
      assertAllFull(await r.seen(), "old", yaml, REPEATS);
      assert.ok(sent >= REPEATS * yaml.length, `sent ${sent} bytes`);
    });
  });
}
