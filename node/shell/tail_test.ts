/**
 * `/internal/tail` in-process: the real router and handler on a real HTTP
 * server, a fake node with a real view, and a file system that records
 * every path the handler touches.
 */
import assert from "node:assert/strict";
import { rawTarget } from "./http.ts";
import { checkTaskId, parseTailRequest } from "./tail.ts";
import { envelope, fixture, rawGet, versioned } from "./tail_test_util.ts";

export const HOSTILE = [
  "..",
  "../secret.log",
  "../../../../../../etc/passwd",
  "..%2fsecret.log",
  "%2e%2e",
  "%2e%2e%2f%2e%2e%2fsecret.log",
  "%2E%2E/secret.log",
  "%252e%252e%252fsecret.log",
  "s1/../../secret.log",
  "s1.t/../../../secret.log",
  "..\\..\\secret.log",
  "%5c..%5csecret.log",
  "/etc/passwd",
  "%2fetc%2fpasswd",
  "s1.t%00",
  "s1.t%00.log",
  "%00",
  "s1..t",
  ".s1.t",
  "s1.t.",
  "s1%2et",
  "%E2%80%A4%E2%80%A4/secret.log", // one dot leader, twice
  "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.log", // fullwidth dots and slash
  "%C0%AE%C0%AE/secret.log", // overlong UTF-8 dots
  `${"a".repeat(200)}.t`,
  `s1.${"t".repeat(64)}`,
  "S1.T",
  "s1.t;rm",
  "~root",
  "",
];

Deno.test("tail ids: the grammar of SPEC §9, nothing else", () => {
  assert.equal(checkTaskId("s1.t"), null);
  assert.equal(checkTaskId("a-b_c.0-z_"), null);
  assert.equal(checkTaskId(`${"a".repeat(63)}.${"b".repeat(63)}`), null);
  for (const bad of HOSTILE) {
    assert.notEqual(checkTaskId(bad), null, JSON.stringify(bad));
  }
  assert.match(checkTaskId("../x")!, /contains '\/'/);
  assert.match(checkTaskId("a\\b")!, /contains '\\'/);
  assert.match(checkTaskId("a\0b")!, /NUL/);
  assert.match(checkTaskId("a%2eb")!, /percent-encoded/);
  assert.match(checkTaskId("a..b")!, /'\.\.'/);
});

Deno.test("tail query: byte counts and follow, strictly", () => {
  assert.deepEqual(parseTailRequest("s.t", "since_bytes=5&max_bytes=10"), {
    task_id: "s.t",
    since_bytes: 5,
    max_bytes: 10,
    follow: false,
  });
  assert.equal(
    (parseTailRequest("s.t", "follow=1") as { follow: boolean }).follow,
    true,
  );
  for (
    const q of [
      "since_bytes=-1",
      "since_bytes=1e3",
      "since_bytes=0x10",
      "max_bytes=abc",
      "since_bytes=1&since_bytes=2",
      "follow=yes",
      "since_bytes=9999999999999999",
    ]
  ) {
    assert.ok("error" in parseTailRequest("s.t", q), q);
  }
});

Deno.test("rawTarget keeps the request target as sent", () => {
  assert.deepEqual(rawTarget("http://h:1/internal/tail/../x?a=1"), {
    path: "/internal/tail/../x",
    query: "a=1",
  });
  assert.deepEqual(rawTarget("http://h/"), { path: "/", query: "" });
});

Deno.test("tail: hostile ids are 400 and nothing outside the logs root is touched", async () => {
  await using f = await fixture();
  const results: string[] = [];
  for (const id of HOSTILE) {
    const r = await rawGet(f.port, `/internal/tail/${id}`);
    results.push(`${id} -> ${r.status}`);
    assert.equal(r.status, 400, `${JSON.stringify(id)}: ${r.status} ${r.body}`);
    assert.ok(!r.body.includes("SECRET"), id);
  }
  // Raw bytes no client would send unencoded: NUL, unicode dots, a space.
  for (
    const target of [
      "/internal/tail/s1.t\0",
      "/internal/tail/\u2024\u2024/secret.log",
      "/internal/tail/s1 .t",
    ]
  ) {
    const r = await rawGet(f.port, target);
    assert.equal(r.status, 400, `${JSON.stringify(target)}: ${r.body}`);
  }
  // Dot segments before the tail route are not resolved either.
  for (
    const target of [
      "/internal/x/../tail/s1.t",
      "/internal/%2e%2e/internal/tail/s1.t",
      "/./internal/tail/s1.t",
    ]
  ) {
    assert.equal((await rawGet(f.port, target)).status, 400, target);
  }
  // Symlinks out of the root: refused after realPath, never opened.
  for (const id of ["s1.link", "s2.t"]) {
    const r = await rawGet(f.port, `/internal/tail/${id}`);
    assert.equal(r.status, 400, `${id}: ${r.body}`);
    assert.match(r.body, /leaves the logs root/);
  }
  const opened = f.touched.filter((t) => t.op === "open");
  assert.ok(
    f.touched.every((t) => t.path.startsWith(`${f.root}/logs`)),
    JSON.stringify(f.touched),
  );
  assert.deepEqual(opened, [], "no file was opened at all");
  // And a good id still works.
  const ok = await rawGet(f.port, "/internal/tail/s1.t");
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "hello\nworld\n");
  assert.deepEqual(f.touched.filter((t) => t.op === "open"), [{
    op: "open",
    path: `${f.root}/logs/s1/s1.t.log`,
  }]);
});

Deno.test("tail: offsets, max_bytes and headers", async () => {
  await using f = await fixture();
  const r = await fetch(
    `${f.url}/internal/tail/s1.t?since_bytes=6&max_bytes=3`,
  );
  assert.equal(r.status, 200);
  assert.equal(await r.text(), "wor");
  assert.equal(r.headers.get("x-boi-offset"), "6");
  assert.equal(r.headers.get("x-boi-end-offset"), "9");
  assert.equal(r.headers.get("x-boi-size"), "12");
  assert.equal(r.headers.get("x-boi-task-state"), "RUNNING");
  assert.equal(r.headers.get("x-boi-node-id"), "n1");
  const atEnd = await fetch(`${f.url}/internal/tail/s1.t?since_bytes=12`);
  assert.equal(await atEnd.text(), "");
  assert.equal(atEnd.headers.get("x-boi-end-offset"), "12");
  // Past the end: refused with the size, never an offset beyond the file.
  for (const q of ["since_bytes=100", "since_bytes=13&follow=1"]) {
    const past = await fetch(`${f.url}/internal/tail/s1.t?${q}`);
    assert.equal(past.status, 416, q);
    assert.equal(
      await past.text(),
      `since_bytes ${
        q.slice(12).split("&")[0]
      } is past the end of the log of s1.t on node n1: it has 12 bytes\n`,
    );
    assert.equal(past.headers.get("x-boi-size"), "12");
    assert.equal(past.headers.get("x-boi-end-offset"), null);
  }
  const unknown = await fetch(`${f.url}/internal/tail/s1.nope`);
  assert.equal(unknown.status, 404);
  assert.match(await unknown.text(), /unknown task s1\.nope/);
  // CORS only for the dashboards of live nodes.
  const cors = await fetch(`${f.url}/internal/tail/s1.t`, {
    headers: { origin: "http://127.0.0.1:1" },
  });
  await cors.body?.cancel();
  assert.equal(
    cors.headers.get("access-control-allow-origin"),
    "http://127.0.0.1:1",
  );
  const evil = await fetch(`${f.url}/internal/tail/s1.t`, {
    headers: { origin: "http://evil.example" },
  });
  await evil.body?.cancel();
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
});

Deno.test("tail follow: streams appended bytes, ends by itself when the task ends, then has everything", async () => {
  await using f = await fixture();
  const path = `${f.dataDir}/logs/s1/s1.t.log`;
  const res = await fetch(`${f.url}/internal/tail/s1.t?follow=1&since_bytes=6`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let got = dec.decode((await reader.read()).value);
  assert.equal(got, "world\n");
  const file = await Deno.open(path, { append: true });
  await file.write(new TextEncoder().encode("more\n"));
  got += dec.decode((await reader.read()).value);
  assert.equal(got, "world\nmore\n");
  // The worker writes its last bytes, then the task ends (as the node does it).
  await file.write(new TextEncoder().encode("last\n"));
  file.close();
  f.view.workers.delete("s1.t");
  f.view.tasks.set(
    "s1.t",
    versioned(envelope("s1.t", {
      state: "DONE",
      claimant_node_id: null,
      ran_on: "n1",
    })),
  );
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    got += dec.decode(value);
  }
  assert.equal(got, "world\nmore\nlast\n");
});

Deno.test("tail follow: a client that goes away ends the stream; shutdown ends the rest", async () => {
  await using f = await fixture();
  const metrics = () => fetch(`${f.url}/metrics`).then((r) => r.text());
  const ac = new AbortController();
  const res = await fetch(`${f.url}/internal/tail/s1.t?follow=1`, {
    signal: ac.signal,
  });
  await res.body!.getReader().read();
  assert.match(await metrics(), /^boi_tail_streams 1$/m);
  ac.abort();
  for (let i = 0; i < 100; i++) {
    if (/^boi_tail_streams 0$/m.test(await metrics())) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(await metrics(), /^boi_tail_streams 0$/m);
  const open = await fetch(`${f.url}/internal/tail/s1.t?follow=1`);
  const rd = open.body!.getReader();
  await rd.read();
  f.obs.close();
  assert.equal((await rd.read()).done, true);
});

Deno.test("tail: a task that ran here and wrote nothing has an empty log; without its spec's directory the log is gone", async () => {
  await using f = await fixture();
  const done = { state: "DONE" as const, claimant_node_id: null, ran_on: "n1" };
  // The worker runner creates a log on the first output: none for a silent task.
  f.view.tasks.set("s1.quiet", versioned(envelope("s1.quiet", done)));
  const r = await fetch(`${f.url}/internal/tail/s1.quiet`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), "");
  assert.equal(r.headers.get("x-boi-size"), "0");
  assert.equal(r.headers.get("x-boi-task-state"), "DONE");
  // Retention removed the spec's directory: say so, as before.
  f.view.tasks.set("s9.quiet", versioned(envelope("s9.quiet", done)));
  const gone = await fetch(`${f.url}/internal/tail/s9.quiet`);
  assert.equal(gone.status, 404);
  assert.match(await gone.text(), /no log of s9\.quiet on node n1/);
});

Deno.test("tail: an earlier attempt's log here does not hide the latest attempt's on another node; with that node gone it is served", async () => {
  await using f = await fixture();
  const peer = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new Response("attempt 2\n", {
        headers: {
          "x-boi-node-id": "n2",
          "x-boi-hop-seen": req.headers.get("x-boi-hop") ?? "",
        },
      }),
  );
  try {
    // s1.t ran here first (its log is here); its lease expired and n2 runs it now.
    f.view.workers.delete("s1.t");
    f.view.tasks.set(
      "s1.t",
      versioned(envelope("s1.t", { claimant_node_id: "n2", attempts: 2 })),
    );
    f.view.nodes.set(
      "n2",
      versioned({
        node_id: "n2",
        addr: `127.0.0.1:${peer.addr.port}`,
        version: "0",
        started_at: 0,
        pid: 2,
      }),
    );
    const r = await fetch(`${f.url}/internal/tail/s1.t`);
    assert.equal(await r.text(), "attempt 2\n");
    assert.equal(r.headers.get("x-boi-via"), "n1");
    // A forwarded request is answered from here, whatever the view says.
    const hop = await fetch(`${f.url}/internal/tail/s1.t`, {
      headers: { "x-boi-hop": "n2" },
    });
    assert.equal(await hop.text(), "hello\nworld\n");
    // n2 is gone: the earlier attempt's log is better than nothing.
    f.view.nodes.delete("n2");
    const gone = await fetch(`${f.url}/internal/tail/s1.t`);
    assert.equal(gone.status, 200);
    assert.equal(await gone.text(), "hello\nworld\n");
  } finally {
    await peer.shutdown();
  }
});
