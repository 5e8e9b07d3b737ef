/**
 * The join listener under a flood of idle connections: Deno.serve's own TLS
 * listener had no connection limit, and its accept loop died on EMFILE with
 * a rejection that ended the admin node (the one holding the CA key).
 */
import assert from "node:assert/strict";
import { makeTempDir } from "../../tests/harness/mod.ts";

Deno.test("join listener: a flood of idle connections past the open-file limit neither ends the node nor locks out /v1/ca", async () => {
  const dir = await makeTempDir("boi-join-flood-");
  const script = new URL("./testdata/join_listener.ts", import.meta.url)
    .pathname;
  // 128 descriptors: 300 idle connections would run the process out of them.
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 128 && exec "${Deno.execPath()}" run -A "${script}" "${dir}" 2>"${dir}/err"`,
    ],
    stdout: "piped",
  }).spawn();
  const logged = () => Deno.readTextFile(`${dir}/err`).catch(() => "");
  const socks: Deno.Conn[] = [];
  try {
    const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let line = "";
    while (!line.includes("\n")) {
      const { done, value } = await out.read();
      assert.ok(!done, `the listener did not start: ${await logged()}`);
      line += value;
    }
    out.releaseLock();
    const [host, port] = line.trim().replace("listening ", "").split(":");
    const client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(`${dir}/ca/ca.crt`)],
    });
    const ca = async () => {
      try {
        const r = await fetch(`https://localhost:${port}/v1/ca`, {
          client,
          signal: AbortSignal.timeout(3000),
        });
        await r.body?.cancel();
        return r.status;
      } catch (e) {
        return String(e);
      }
    };
    assert.equal(await ca(), 200);
    for (let i = 0; i < 300; i++) {
      try {
        socks.push(await Deno.connect({ hostname: host, port: Number(port) }));
      } catch {
        break;
      }
    }
    assert.equal(socks.length, 300, "the flood could not be opened");
    // Held a while: the listener meets its open-file limit meanwhile.
    await new Promise((r) => setTimeout(r, 1500));
    // During the flood: an idle connection is evicted for a new one.
    assert.equal(await ca(), 200, `locked out; its log: ${await logged()}`);
    for (const s of socks.splice(0)) s.close();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      await ca(),
      200,
      `no answer after; its log: ${await logged()}`,
    );
    assert.doesNotMatch(await logged(), /panicked|Uncaught/);
    client.close();
  } finally {
    for (const s of socks) s.close();
    try {
      child.kill("SIGKILL");
    } catch { /* it ended by itself: the assertions above say why */ }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
