/**
 * The flood the TLS listeners' tests run: a listener script (it prints
 * `listening <host:port>`) under `ulimit -n 128`, 300 idle connections held
 * 1.5 s, and one HTTPS request that must be answered before, during and
 * after. On their own ports the join listener's accept loop died and took
 * the node with it, and `node:https` stopped accepting for good.
 */
import assert from "node:assert/strict";
import { makeTempDir } from "../../tests/harness/mod.ts";

/** What {@linkcode floodCheck} runs and asks. */
export interface FloodCheck {
  /** Under testdata/: it gets a data dir as its argument. */
  script: string;
  /** The CA's PEM, relative to that data dir. */
  caFile: string;
  /** The request sent before, during and after. */
  path: string;
  /** `<status> <body>` it must answer; a body is compared by its start. */
  answer: string;
}

/** Runs the flood and its checks; the listener is killed at the end. */
export async function floodCheck(c: FloodCheck): Promise<void> {
  const dir = await makeTempDir("boi-flood-");
  const script = new URL(`./testdata/${c.script}`, import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 128 && exec "${Deno.execPath()}" run -A "${script}" "${dir}" 2>"${dir}/err"`,
    ],
    stdout: "piped",
  }).spawn();
  const logged = () => Deno.readTextFile(`${dir}/err`).catch(() => "");
  const socks: Deno.Conn[] = [];
  const pause = () => new Promise((r) => setTimeout(r, 1500));
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
      caCerts: [await Deno.readTextFile(`${dir}/${c.caFile}`)],
    });
    const ask = async () => {
      try {
        const r = await fetch(`https://localhost:${port}${c.path}`, {
          client,
          signal: AbortSignal.timeout(3000),
        });
        const answer = `${r.status} ${await r.text()}`;
        return answer.startsWith(c.answer) ? c.answer : answer;
      } catch (e) {
        return String(e);
      }
    };
    assert.equal(await ask(), c.answer);
    for (let i = 0; i < 300; i++) {
      try {
        socks.push(await Deno.connect({ hostname: host, port: Number(port) }));
      } catch {
        break;
      }
    }
    assert.equal(socks.length, 300, "the flood could not be opened");
    await pause(); // the listener meets its open-file limit meanwhile
    assert.equal(await ask(), c.answer, `locked out; log: ${await logged()}`);
    for (const s of socks.splice(0)) s.close();
    await pause();
    assert.equal(await ask(), c.answer, `no answer; log: ${await logged()}`);
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
}
