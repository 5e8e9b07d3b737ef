/**
 * Observability end to end (real etcd, real nodes, the real CLI): tail
 * across nodes with cut-and-resume, follow to the end, tail through
 * `ran_on`, hostile ids, log retention, and `/metrics` against what the
 * test did. The dashboard in a real browser is in dashboard_test.ts.
 */
import assert from "node:assert/strict";
import {
  cli,
  makeTempDir,
  type NodeProc,
  rawGet,
  readEnvelope,
  REPO_ROOT,
  waitFor,
} from "../harness/mod.ts";
import { childEnv } from "../harness/paths.ts";
import type { Envelope } from "../../node/schema.ts";
import { dispatch, logPath, startCluster, waitTerminal } from "./cluster.ts";

const NODES = ["node-a", "node-b", "node-c"];

/** The CLI as a child process whose stdout is read as raw bytes, as it comes. */
function spawnCli(etcd: { endpoint: string }, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-P=cli", "cli.ts", ...args, "--etcd", etcd.endpoint],
    cwd: REPO_ROOT,
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parts.push(value);
      total += value.length;
    }
  })();
  return {
    child,
    get bytes() {
      return total;
    },
    stdout(): Uint8Array {
      return concat(parts);
    },
    async done() {
      const [status, err] = await Promise.all([child.status, stderr, pump]);
      return { code: status.code, stdout: concat(parts), stderr: err };
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function offsetOf(stderr: string): number {
  const m = /^tail: offset (\d+)/m.exec(stderr);
  assert.ok(m, `no "tail: offset N" line on stderr:\n${stderr}`);
  return Number(m[1]);
}

async function runningEnvelope(
  etcd: Parameters<typeof readEnvelope>[0],
  id: string,
): Promise<Envelope> {
  return await waitFor(`${id} RUNNING`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "RUNNING" ? e.value : undefined;
  });
}

Deno.test("three nodes: tail from a non-claimant within 1 s, cut and resume byte for byte, --follow ends with the task, ran_on, /metrics counts, a dead node is 'log unavailable'", async (t) => {
  await using c = await startCluster(NODES);
  const tmp = await makeTempDir("boi-tail-e2e-");
  const stop = `${tmp}/stop`;
  // Raw bytes first (not UTF-8), then a line every 50 ms until the test says stop.
  const { task_ids: [id] } = await dispatch(
    c,
    `name: stream
tasks:
  - id: t
    run: |
      printf '\\377\\376\\000raw\\n'
      i=0
      while [ ! -e ${stop} ]; do i=$((i+1)); echo "tick $i"; sleep 0.05; done
      echo "bye after $i ticks"
`,
  );
  // Six quick tasks beside it, for the metrics.
  const quickSpec = await dispatch(
    c,
    `name: met\ntasks:\n${
      Array.from({ length: 6 }, (_, i) => `  - { id: t${i}, run: "echo ${i}" }`)
        .join("\n")
    }\n`,
  );
  const quick = await waitTerminal(c, quickSpec.spec_id);
  assert.ok(quick.every((t) => t.state === "DONE" && t.attempts === 1));
  const env = await runningEnvelope(c.etcd, id);
  const claimant = c.node(env.claimant_node_id!);
  const others = [...c.nodes.values()].filter((n) => n !== claimant);
  const file = logPath(claimant, env);

  // 1. Any node answers for any task: a node that is not the claimant
  // forwards to it, and the first bytes arrive within 1 s. (One plain request
  // first: a node's first forward also starts its HTTP client.)
  for (const other of others) {
    const warm = await fetch(`${other.url}/internal/tail/${id}?max_bytes=1`);
    assert.equal(warm.status, 200, await warm.text());
    const t0 = performance.now();
    const res = await fetch(`${other.url}/internal/tail/${id}?follow=1`);
    if (res.status !== 200) assert.fail(`${res.status}: ${await res.text()}`);
    assert.equal(res.headers.get("x-boi-node-id"), claimant.nodeId);
    assert.equal(res.headers.get("x-boi-via"), other.nodeId);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const ms = performance.now() - t0;
    await reader.cancel();
    assert.ok(first.value && first.value.length > 0);
    console.log(
      `first bytes from ${other.nodeId} (not the claimant) after ${
        ms.toFixed(0)
      } ms`,
    );
    assert.ok(ms < 1000, `first bytes after ${ms} ms`);
  }

  // 2. Cut a follow after its first chunk (SIGINT), resume from the offset it
  // printed: chunk1 + chunk2 is the file's prefix, byte for byte.
  const f1 = spawnCli(c.etcd, ["tail", id, "--follow"]);
  await waitFor("first chunk of tail --follow", () => f1.bytes > 20, {
    timeoutMs: 20_000, // a CLI start on a loaded machine
    intervalMs: 10,
  });
  f1.child.kill("SIGINT");
  const cut = await f1.done();
  assert.equal(cut.code, 130, cut.stderr);
  const off = offsetOf(cut.stderr);
  assert.equal(off, cut.stdout.length, "the offset is what was printed");
  const r2 = spawnCli(c.etcd, ["tail", id, "--since-bytes", String(off)]);
  const second = await r2.done();
  assert.equal(second.code, 0, second.stderr);
  assert.ok(second.stdout.length > 0, "the log kept growing");
  const joined = concat([cut.stdout, second.stdout]);
  const onDisk = await Deno.readFile(file);
  assert.deepEqual(joined, onDisk.subarray(0, joined.length));
  assert.equal(offsetOf(second.stderr), joined.length);
  assert.deepEqual([...joined.subarray(0, 3)], [0xff, 0xfe, 0x00]);

  // The same at the HTTP level: drop the connection, resume at the offset.
  {
    const ac = new AbortController();
    const res = await fetch(`${claimant.url}/internal/tail/${id}?follow=1`, {
      signal: ac.signal,
    });
    const chunk1 = (await res.body!.getReader().read()).value!;
    ac.abort();
    const res2 = await fetch(
      `${claimant.url}/internal/tail/${id}?since_bytes=${chunk1.length}`,
    );
    assert.equal(res2.headers.get("x-boi-offset"), String(chunk1.length));
    const chunk2 = new Uint8Array(await res2.arrayBuffer());
    const both = concat([chunk1, chunk2]);
    const now = await Deno.readFile(file);
    assert.deepEqual(both, now.subarray(0, both.length));
  }

  // 3. tail --follow ends by itself when the task ends, with everything.
  const f3 = spawnCli(c.etcd, ["tail", id, "--follow"]);
  await waitFor("tail --follow printing", () => f3.bytes > 0, {
    timeoutMs: 20_000, // a CLI start on a loaded machine
    intervalMs: 10,
  });
  const stopAt = performance.now();
  await Deno.writeTextFile(stop, "");
  const full = await f3.done();
  const endedAfter = performance.now() - stopAt;
  assert.equal(full.code, 0, full.stderr);
  const [done] = await waitTerminal(c, env.spec_id);
  assert.equal(done.state, "DONE");
  assert.equal(done.attempts, 1);
  const final = await Deno.readFile(file);
  assert.deepEqual(full.stdout, final);
  assert.match(
    new TextDecoder().decode(final.subarray(-30)),
    /bye after \d+ ticks\n$/,
  );
  assert.equal(offsetOf(full.stderr), final.length);
  console.log(
    `tail --follow exited ${
      endedAfter.toFixed(0)
    } ms after the task was told to stop (${final.length} bytes)`,
  );
  assert.ok(endedAfter < 10_000);

  // 4. A finished task: found through ran_on (the claimant is cleared).
  assert.equal(done.claimant_node_id, null);
  assert.equal(done.ran_on, claimant.nodeId);
  const after = spawnCli(c.etcd, ["tail", id]);
  const a = await after.done();
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual(a.stdout, final);
  const json = await cli(c.etcd, ["tail", id, "--json", "--max-bytes", "7"]);
  assert.equal(json.code, 0, json.explain());
  assert.deepEqual(
    { ...json.json<Record<string, unknown>>(), log: undefined },
    {
      task_id: id,
      node_id: claimant.nodeId,
      state: "DONE",
      since_bytes: 0,
      offset: 7,
      bytes: 7,
      log: undefined,
    },
  );

  await t.step(
    "/metrics: Prometheus text, the SPEC §12 catalog, counters match what ran",
    async () => {
      const N = quick.length + 1;
      const scrape = async (n: NodeProc) =>
        parseProm(await (await fetch(`${n.url}/metrics`)).text());
      // Every node's view has caught up with the six DONE tasks.
      const parsed = await waitFor("every node sees N DONE", async () => {
        const all = await Promise.all([...c.nodes.values()].map(scrape));
        const ok = all.every((p) =>
          p.samples.some((s) =>
            s.name === "boi_tasks" && s.labels.state === "DONE" && s.value === N
          )
        );
        return ok ? all : undefined;
      });
      const catalog: [string, string][] = [
        ["boi_etcd_up", "gauge"],
        ["boi_etcd_unreachable_seconds", "gauge"],
        ["boi_tasks", "gauge"],
        ["boi_claims_total", "counter"],
        ["boi_claim_conflicts_total", "counter"],
        ["boi_lease_expired_requeues_total", "counter"],
        ["boi_dispatch_rejected_etcd_unreachable_total", "counter"],
        ["boi_watch_events_total", "counter"],
        ["boi_plugin_restarts_total", "counter"],
        ["boi_plugin_unstable", "gauge"],
        ["boi_pending_flush_bytes", "gauge"],
        ["boi_hooks_unacked", "gauge"],
        ["boi_task_duration_seconds", "histogram"],
        ["boi_dispatch_to_start_seconds", "histogram"],
        ["process_resident_memory_bytes", "gauge"],
        ["boi_heap_bytes", "gauge"],
      ];
      const sum = (name: string) =>
        parsed.reduce(
          (n, p) =>
            n +
            p.samples.filter((s) => s.name === name).reduce(
              (m, s) => m + s.value,
              0,
            ),
          0,
        );
      for (const p of parsed) {
        for (const [name, type] of catalog) {
          assert.equal(p.types.get(name), type, `${name} is a ${type}`);
        }
        const one = (name: string) =>
          p.samples.find((s) =>
            s.name === name && Object.keys(s.labels).length === 0
          )
            ?.value;
        assert.equal(one("boi_etcd_up"), 1);
        assert.equal(one("boi_etcd_unreachable_seconds"), 0);
        assert.equal(one("boi_lease_expired_requeues_total"), 0);
        // Every node's watch delivered the N tasks' changes (≥ 1 each).
        assert.ok(one("boi_watch_events_total")! >= N, "watch events counted");
        // The node's own memory (memory_metrics.ts), read at the scrape.
        const rss = one("process_resident_memory_bytes")!;
        assert.ok(rss > 16 * 2 ** 20, `resident ${rss}`);
        const heap = (kind: string) =>
          p.samples.find((s) =>
            s.name === "boi_heap_bytes" && s.labels.kind === kind
          )?.value ?? NaN;
        assert.ok(
          heap("used") > 0 && heap("used") <= heap("total") &&
            heap("total") < rss,
          `heap used ${heap("used")} total ${heap("total")} rss ${rss}`,
        );
        // Histograms: cumulative buckets, +Inf == _count.
        for (
          const h of [
            "boi_task_duration_seconds",
            "boi_dispatch_to_start_seconds",
          ]
        ) {
          const buckets = p.samples.filter((s) => s.name === `${h}_bucket`);
          for (let i = 1; i < buckets.length; i++) {
            assert.ok(
              buckets[i].value >= buckets[i - 1].value,
              `${h} buckets cumulative`,
            );
          }
          assert.equal(buckets.at(-1)!.labels.le, "+Inf");
          assert.equal(buckets.at(-1)!.value, one(`${h}_count`));
        }
      }
      assert.equal(
        sum("boi_claims_total"),
        N,
        "one claim per task over the cluster",
      );
      assert.equal(sum("boi_task_duration_seconds_count"), N);
      assert.equal(sum("boi_dispatch_to_start_seconds_count"), N);
      // The nodes that are not the claimant answered exactly the test's two
      // direct requests each (the CLI goes to the claimant).
      for (const other of others) {
        const p = parsed[[...c.nodes.values()].indexOf(other)];
        assert.equal(
          p.samples.find((s) => s.name === "boi_tail_requests_total")?.value,
          2,
          `tail requests answered by ${other.nodeId}`,
        );
      }
    },
  );

  // The node that has the log is gone: a clear error, exit 1.
  await claimant.stop();
  await waitFor(`${claimant.nodeId} deregistered`, async () => {
    const r = await cli(c.etcd, ["nodes", "--json"]);
    return !r.stdout.includes(`"${claimant.nodeId}"`);
  });
  const gone = await cli(c.etcd, ["tail", id]);
  assert.equal(gone.code, 1, gone.explain());
  assert.equal(
    gone.stderr.trim(),
    `log unavailable: node ${claimant.nodeId} is not live (task state DONE)`,
  );
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("one node: hostile task ids are 400 and open no file outside the logs root; `boi logs sweep` deletes an 8-day-old 110 MiB log of a finished task, the current one stays", async (t) => {
  await using c = await startCluster(["node-a"]);
  await t.step("hostile ids", async () => {
    const node = c.node("node-a");
    const outside = await makeTempDir("boi-canary-");
    const secret = `${node.dataDir}/secret.log`;
    const canary = `${outside}/canary.log`;
    await Deno.writeTextFile(secret, "CANARY-SECRET\n");
    await Deno.writeTextFile(canary, "CANARY-OUTSIDE\n");
    await Deno.mkdir(`${outside}/evil2`);
    await Deno.writeTextFile(`${outside}/evil2/evil2.t.log`, "CANARY-DIR\n");
    const logs = `${node.dataDir}/logs`;
    await Deno.mkdir(`${logs}/evil`, { recursive: true });
    await Deno.symlink(canary, `${logs}/evil/evil.t.log`);
    await Deno.symlink(`${outside}/evil2`, `${logs}/evil2`);
    const canaries = [secret, canary, `${outside}/evil2/evil2.t.log`];
    // A read sets atime when atime is older than mtime (relatime): set it far
    // back, then any open-and-read by the node would show.
    const old = new Date(Date.UTC(2000, 0, 1));
    const age = async () => {
      for (const p of canaries) await Deno.utime(p, old, new Date());
    };
    await age();
    const control = `${outside}/control.log`;
    await Deno.writeTextFile(control, "x");
    await Deno.utime(control, old, new Date());
    await Deno.readTextFile(control);
    assert.ok(
      (await Deno.stat(control)).atime!.getTime() > old.getTime(),
      "this file system does not record reads in atime: the check below would prove nothing",
    );

    const rel = (p: string) => p.replace(/^\//, "");
    const hostile = [
      "..",
      "../secret.log",
      "../../../../../../etc/passwd",
      "..%2fsecret.log",
      "%2e%2e%2fsecret.log",
      "%2E%2E/%2E%2E/secret.log",
      "%252e%252e%252fsecret.log",
      "..\\secret.log",
      "%5c..%5csecret.log",
      `/${rel(canary)}`,
      `%2F${rel(canary).replaceAll("/", "%2F")}`,
      `..${"/..".repeat(12)}${canary}`,
      "evil.t/../../../secret.log",
      "s.t%00",
      "s.t%00.log",
      "s..t",
      ".s.t",
      "s%2et",
      "%E2%80%A4%E2%80%A4/secret.log",
      "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.log",
      "%C0%AE%C0%AE/secret.log",
      `${"a".repeat(300)}.t`,
      `s.${"t".repeat(100)}`,
      "S.T",
      "",
    ];
    const raw = [
      "/internal/tail/s.t\0",
      "/internal/tail/\u2024\u2024/secret.log",
      "/internal/x/../tail/evil.t",
      "/internal/%2e%2e/internal/tail/evil.t",
    ];
    const symlinked = ["evil.t", "evil2.t"];
    const seen: string[] = [];
    for (
      const target of [
        ...hostile.map((h) => `/internal/tail/${h}`),
        ...raw,
        ...symlinked.map((h) => `/internal/tail/${h}`),
      ]
    ) {
      const r = await rawGet(node.url, target);
      seen.push(`${r.status} ${JSON.stringify(target).slice(0, 60)}`);
      assert.equal(
        r.status,
        400,
        `${JSON.stringify(target)} → ${r.status} ${r.body}`,
      );
      assert.ok(!r.body.includes("CANARY"), target);
    }
    assert.ok(hostile.length + raw.length >= 15);
    for (const p of canaries) {
      const st = await Deno.stat(p);
      assert.equal(
        st.atime!.getTime(),
        old.getTime(),
        `${p} was read (atime ${st.atime?.toISOString()})`,
      );
    }
    await node.waitForLog((l) =>
      l.msg === "tail refused" && l.task_id === "evil2.t"
    );
    console.log(`${seen.length} hostile requests, all 400`);
    await Deno.remove(outside, { recursive: true });
  });
  await t.step("retention", async () => {
    const node = c.node("node-a");
    const { spec_id } = await dispatch(
      c,
      `name: ret
tasks:
  - { id: old, run: "echo old" }
  - { id: cur, run: "echo current" }
`,
    );
    const tasks = await waitTerminal(c, spec_id);
    const [old, cur] = ["old", "cur"].map((s) =>
      tasks.find((t) => t.task_id.endsWith(`.${s}`))!
    );
    const oldPath = logPath(node, old);
    const curPath = logPath(node, cur);
    await Deno.truncate(oldPath, 110 * 1024 * 1024); // sparse
    const eightDays = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    await Deno.utime(oldPath, eightDays, eightDays);

    const r = await cli(c.etcd, ["logs", "sweep"]);
    assert.equal(r.code, 0, r.explain());
    assert.match(
      r.stdout,
      /^node-a: deleted 1 log, 110\.0 MiB freed \(1 kept\)$/m,
    );
    assert.match(
      r.stdout,
      new RegExp(
        `^  ${spec_id}/${old.task_id}\\.log  110\\.0 MiB  modified 8d00h ago`,
        "m",
      ),
    );
    await assert.rejects(Deno.stat(oldPath), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(curPath), "current\n");
    const again = await cli(c.etcd, ["logs", "sweep", "--json"]);
    assert.equal(again.code, 0, again.explain());
    const [o] = again.json<
      { node_id: string; report: { deleted: unknown[] } }[]
    >();
    assert.equal(o.node_id, "node-a");
    assert.deepEqual(o.report.deleted, []);
    const metrics = await fetch(`${node.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /^boi_logs_deleted_total 1$/m);
    assert.match(metrics, /^boi_log_sweeps_total 2$/m);
  });
});

/** One sample of a Prometheus text exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict parser of the Prometheus text format (0.0.4): HELP and TYPE
 * lines, samples with escaped label values; throws on anything else.
 */
function parseProm(text: string): {
  types: Map<string, string>;
  samples: Sample[];
} {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const sampleRe = new RegExp(
    `^(${NAME})(?:\\{(.*)\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|\\+Inf|-Inf|NaN))$`,
  );
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  assert.ok(text.endsWith("\n"), "exposition ends with a newline");
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      assert.match(line, new RegExp(`^# HELP ${NAME} .*$`));
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const m = new RegExp(
        `^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`,
      )
        .exec(line);
      assert.ok(m, `bad TYPE line: ${line}`);
      assert.ok(!types.has(m[1]), `TYPE of ${m[1]} twice`);
      types.set(m[1], m[2]);
      continue;
    }
    const m = sampleRe.exec(line);
    assert.ok(m, `bad sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2] !== undefined && m[2] !== "") {
      labelRe.lastIndex = 0;
      while (labelRe.lastIndex < m[2].length) {
        const l = labelRe.exec(m[2]);
        assert.ok(l, `bad labels: ${m[2]}`);
        labels[l[1]] = l[2].replace(
          /\\(.)/g,
          (_, ch) => ch === "n" ? "\n" : ch,
        );
      }
    }
    const family = m[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(
      types.has(m[1]) || types.get(family) === "histogram",
      `sample ${m[1]} before its TYPE`,
    );
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}
