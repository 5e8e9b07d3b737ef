/**
 * The CLI reads the log from the node etcd names and nowhere else: a node
 * whose view is newer (it saw the next attempt's claim) must not forward the
 * CLI's offsets, counted in its own log, to the next attempt's node.
 */
import assert from "node:assert/strict";
import { tailLoop } from "../../cli/tail_loop.ts";
import { envelope, fixture, versioned } from "./tail_test_util.ts";

Deno.test("tail -f resolved to n1 while n1 already saw n2 claim attempt 2: n2's log once, from its start", async () => {
  await using f = await fixture(); // n1: attempt 1's log, "hello\nworld\n" (12 bytes)
  const log2 = new TextEncoder().encode(
    "attempt-2 line A on n2\nattempt-2 line B on n2\n",
  );
  // n2 answers as node/shell/tail.ts does: from since_bytes, 416 past the end.
  const n2 = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const since = Number(
        new URL(req.url).searchParams.get("since_bytes") ?? 0,
      );
      const headers = { "x-boi-node-id": "n2", "x-boi-size": `${log2.length}` };
      return since > log2.length
        ? new Response(`since_bytes ${since} is past the end\n`, {
          status: 416,
          headers,
        })
        : new Response(log2.slice(since), { headers });
    },
  );
  try {
    f.view.workers.delete("s1.t");
    f.view.tasks.set(
      "s1.t",
      versioned(
        envelope("s1.t", { claimant_node_id: "n2", attempts: 2, ran_on: "n1" }),
      ),
    );
    f.view.nodes.set(
      "n2",
      versioned({
        node_id: "n2",
        addr: `127.0.0.1:${n2.addr.port}`,
        version: "0",
        started_at: 0,
        pid: 2,
      }),
    );
    // The CLI's etcd read (just before n2's claim) names n1 at first.
    const n1t = {
      state: "PENDING" as const,
      terminal: false,
      node_id: "n1",
      addr: `127.0.0.1:${f.port}`,
    };
    const n2t = {
      state: "DONE" as const,
      terminal: true,
      node_id: "n2",
      addr: `127.0.0.1:${n2.addr.port}`,
    };
    let calls = 0;
    const parts: Uint8Array[] = [];
    const lines: string[] = [];
    // The run that printed n1's 12 bytes resumes with --since-bytes 12.
    await tailLoop("s1.t", { follow: true, since_bytes: 12, max_bytes: null }, {
      resolve: () => Promise.resolve(calls++ === 0 ? n1t : n2t),
      fetch,
      write: (b) => (parts.push(b.slice()), Promise.resolve()),
      warn: (l) => lines.push(l),
      signal: new AbortController().signal,
      watchMs: 50,
      maxBackoffMs: 20,
    });
    const got = new TextDecoder().decode(
      new Uint8Array(parts.flatMap((p) => [...p])),
    );
    // Before: n1 forwarded since_bytes=12 to n2, whose first 12 bytes were
    // skipped, then n2's log again from 0 once the CLI saw the move.
    assert.equal(got, new TextDecoder().decode(log2), JSON.stringify(lines));
  } finally {
    await n2.shutdown();
  }
});
