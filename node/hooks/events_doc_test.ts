import assert from "node:assert/strict";
import { renderEventsDoc } from "./events_doc.ts";
import { EVENT_KINDS } from "./event_schemas.ts";

const DOC = new URL("../../docs/events.md", import.meta.url);

Deno.test("docs/events.md is rendered from the payload schemas (regenerate: see events_doc.ts)", async () => {
  const text = await Deno.readTextFile(DOC);
  const fmt = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = fmt.stdin.getWriter();
  await w.write(new TextEncoder().encode(renderEventsDoc() + "\n"));
  await w.close();
  const rendered = new TextDecoder().decode((await fmt.output()).stdout);
  assert.equal(text, rendered);
});

Deno.test("every SPEC §8 kind is documented, 22 of them", async () => {
  const text = await Deno.readTextFile(DOC);
  assert.equal(EVENT_KINDS.length, 22);
  for (const k of EVENT_KINDS) assert.ok(text.includes(`### \`${k}\``), k);
});
