/**
 * The secure-mode node HTTPS listener under a flood of idle connections: on
 * its own port `node:https` stopped accepting for good after one EMFILE.
 */
import assert from "node:assert/strict";
import { makeTempDir } from "../../tests/harness/mod.ts";

Deno.test("secure HTTPS: a flood of idle connections past the open-file limit does not stop the listener; TLS and the peer check still work through the relay", async () => {
  const dir = await makeTempDir("boi-https-flood-");
  const script = new URL("./testdata/https_listener.ts", import.meta.url)
    .pathname;
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
    const port = Number(line.trim().replace("listening ", ""));
    const client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)],
    });
    const get = async () => {
      try {
        const r = await fetch(`https://localhost:${port}/healthz`, {
          client,
          signal: AbortSignal.timeout(3000),
        });
        return `${r.status} ${await r.text()}`;
      } catch (e) {
        return String(e);
      }
    };
    assert.equal(await get(), "200 peer false");
    for (let i = 0; i < 300; i++) {
      try {
        socks.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        break;
      }
    }
    assert.equal(socks.length, 300, "the flood could not be opened");
    // Held a while: the listener meets its open-file limit meanwhile.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      await get(),
      "200 peer false",
      `locked out: ${await logged()}`,
    );
    for (const s of socks.splice(0)) s.close();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await get(), "200 peer false", `no answer: ${await logged()}`);
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
