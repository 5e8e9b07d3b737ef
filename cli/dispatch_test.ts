import assert from "node:assert/strict";
import { Keys } from "../node/keys.ts";
import { parseSpec } from "../node/spec.ts";
import { CliError } from "./errors.ts";
import {
  MAX_TXN_OPS,
  planChunks,
  randomSuffix,
  writeSpec,
} from "./dispatch_write.ts";
import { Store } from "./store.ts";
import { connectEtcd } from "../node/etcd_client.ts";
import { progressLines, summaryLines } from "./dispatch_wait.ts";
import { readSpecFile } from "./spec_file.ts";
import { envelope } from "./test_util.ts";
import {
  makeTempDir,
  REPO_ROOT,
  startEtcd,
  waitFor,
} from "../tests/harness/mod.ts";
import { childEnv } from "../tests/harness/paths.ts";

const keys = new Keys("/boi/");

function specYaml(n: number, run = "true"): string {
  const lines = ["name: big", "tasks:"];
  for (let i = 0; i < n; i++) lines.push(`- {id: t${i}, run: "${run}"}`);
  return lines.join("\n");
}

function specWith(n: number, run = "true") {
  return parseSpec("big.yaml", specYaml(n, run), {
    now: 1,
    suffix: "abcdef",
    dispatchedBy: "t",
  });
}

Deno.test("randomSuffix: 6 chars of [a-z2-7]", () => {
  assert.equal(randomSuffix(new Uint8Array([0, 1, 25, 26, 31, 32])), "abz27a");
  for (let i = 0; i < 100; i++) assert.match(randomSuffix(), /^[a-z2-7]{6}$/);
});

Deno.test("planChunks: one transaction for a small spec", () => {
  const chunks = planChunks(keys, specWith(3));
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0].withSpec, true);
  assert.deepEqual(chunks[0].puts.map((p) => p.key), [
    "/boi/dispatch-queue/big-abcdef.t0",
    "/boi/dispatch-queue/big-abcdef.t1",
    "/boi/dispatch-queue/big-abcdef.t2",
  ]);
  assert.equal(JSON.parse(chunks[0].puts[0].value).task_id, "big-abcdef.t0");
});

Deno.test("planChunks: at most 125 envelopes per txn (room for the spec's and the marker's compares and ops), spec last", () => {
  for (const n of [125, 126, 300]) {
    const parsed = specWith(n);
    const chunks = planChunks(keys, parsed);
    const puts = chunks.flatMap((c) => c.puts.map((p) => p.key));
    assert.equal(puts.length, n);
    assert.equal(new Set(puts).size, n);
    chunks.forEach((c, i) => {
      assert.ok(c.puts.length <= MAX_TXN_OPS - 3, `${n}: chunk ${i}`);
      assert.equal(c.withSpec, i === chunks.length - 1);
    });
  }
  assert.equal(planChunks(keys, specWith(125)).length, 1);
  assert.equal(planChunks(keys, specWith(126)).length, 2);
});

Deno.test("planChunks: splits by bytes and refuses records that cannot fit", () => {
  const parsed = specWith(20, "x".repeat(1000));
  const budget = 25_000;
  const chunks = planChunks(keys, parsed, budget);
  assert.ok(chunks.length >= 2);
  assert.equal(chunks.flatMap((c) => c.puts).length, 20);
  const specKey = keys.spec(parsed.spec_id);
  for (const c of chunks) {
    let size = specKey.length +
      c.puts.reduce((a, p) => a + 2 * p.key.length + p.value.length, 0);
    if (c.withSpec) {
      size += specKey.length + JSON.stringify(parsed.record).length;
    }
    assert.ok(size <= budget, `${size}`);
  }
  assert.throws(
    () => planChunks(keys, specWith(1, "x".repeat(5000)), 4000),
    (err: unknown) =>
      err instanceof CliError && /is too large to store/.test(err.message),
  );
});

Deno.test("progressLines: header with counts, one row per task", () => {
  const lines = progressLines(
    "s-aaaaaa",
    [
      envelope({
        task_id: "s-aaaaaa.a",
        state: "RUNNING",
        claimant_node_id: "n1",
        attempts: 1,
      }),
      envelope({
        task_id: "s-aaaaaa.b",
        state: "DONE",
        ran_on: "n2",
        exit_code: 0,
      }),
    ],
    new Set(),
    1500,
  );
  assert.equal(lines[0], "s-aaaaaa  1 RUNNING, 1 DONE  1.5s");
  assert.match(lines[1], /^ {2}TASK\s+STATE\s+NODE\s+ATTEMPT\s+EXIT$/);
  assert.match(lines[2], /^ {2}a\s+RUNNING\s+n1\s+1\/3\s+-$/);
  assert.match(lines[3], /^ {2}b\s+DONE\s+n2\s+0\/3\s+0$/);
});

Deno.test("progressLines: large specs show only active rows", () => {
  const tasks = Array.from(
    { length: 50 },
    (_, i) =>
      envelope({
        task_id: `s-aaaaaa.t${i}`,
        state: i < 2 ? "RUNNING" : "PENDING",
      }),
  );
  const lines = progressLines("s-aaaaaa", tasks, new Set(), 0);
  assert.equal(lines.length, 1 + 1 + 2 + 1);
  assert.equal(lines.at(-1), "  … 48 more");
});

Deno.test("summaryLines: totals, then every task that is not DONE", () => {
  const lines = summaryLines(
    "s-aaaaaa",
    [
      envelope({ task_id: "s-aaaaaa.a", state: "DONE" }),
      envelope({
        task_id: "s-aaaaaa.b",
        state: "FAILED",
        ran_on: "n",
        exit_code: 1,
        last_error: "exit 1",
      }),
      envelope({ task_id: "s-aaaaaa.c", state: "PENDING" }),
    ],
    new Set(["s-aaaaaa.c"]),
    2000,
  );
  assert.deepEqual(lines, [
    "s-aaaaaa: 1 DONE, 1 FAILED, 1 deleted in 2.0s",
    "  s-aaaaaa.b FAILED on n exit 1: exit 1",
    "  s-aaaaaa.c deleted",
  ]);
});

Deno.test("readSpecFile: one-line errors for unreadable input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const read = async (path: string) => {
      try {
        await readSpecFile(path);
        return "read";
      } catch (err) {
        assert.ok(err instanceof CliError);
        assert.ok(!err.message.includes("\n"));
        return err.message;
      }
    };
    assert.equal(
      await read(`${dir}/nope.yaml`),
      `${dir}/nope.yaml: cannot read: No such file or directory (os error 2)`,
    );
    assert.match(await read(dir), /: cannot read: Is a directory/);
    await Deno.writeFile(
      `${dir}/bin`,
      new Uint8Array([0xff, 0xfe, 0x00, 0x80]),
    );
    assert.equal(
      await read(`${dir}/bin`),
      `${dir}/bin: cannot read: not UTF-8 text`,
    );
    await Deno.writeTextFile(`${dir}/big`, "x".repeat(300_000));
    assert.match(
      await read(`${dir}/big`),
      /: is too large: more than 262144 bytes/,
    );
    await Deno.writeTextFile(`${dir}/ok`, "\ufeffname: x\n");
    assert.equal(await readSpecFile(`${dir}/ok`), "name: x\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planChunks: a dispatch that would store more than MAX_STORED_BYTES is refused before any write", () => {
  // 5,000 tasks inherit a spec-level requires of ~2.4 KB: ~12 MB in envelopes.
  const requires = Array.from(
    { length: 12 },
    (_, i) => `x-acme-k${i}: "${"v".repeat(200)}"`,
  ).join(", ");
  const lines = ["name: amp", `requires: { ${requires} }`, "tasks:"];
  for (let i = 0; i < 5000; i++) lines.push(`- {id: t${i}, run: "true"}`);
  const parsed = parseSpec("amp.yaml", lines.join("\n"), {
    now: 1,
    suffix: "abcdef",
    dispatchedBy: "t",
  });
  assert.throws(
    () => planChunks(keys, parsed),
    (e) =>
      e instanceof CliError &&
      /^spec amp-abcdef would store more than 8388608 bytes in etcd \(5000 tasks, 3 KiB each\): make the spec-level requires smaller or split the spec$/
        .test(e.message),
  );
  // The same tasks without it fit.
  assert.ok(planChunks(keys, specWith(5000)).length > 1);
});

Deno.test("dispatch --wait losing etcd after the commit: exit 1 (not 3: something was written), the spec id in the JSON document", async () => {
  await using etcd = await startEtcd();
  const dir = await makeTempDir("boi-wait-lost-");
  try {
    const file = `${dir}/s.yaml`;
    await Deno.writeTextFile(
      file,
      "name: lost\nid: lost-1\ntasks:\n- {id: a, run: x}\n",
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-q",
        "-P=cli",
        "cli.ts",
        "dispatch",
        file,
        "--wait",
        "--json",
      ],
      cwd: REPO_ROOT,
      env: childEnv({ BOI_ETCD_ENDPOINTS: etcd.endpoint, NO_COLOR: "1" }),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await waitFor(
      "the spec committed",
      async () =>
        (await etcd.client().get("/boi/specs/lost-1").string()) !== null,
    );
    await etcd.stop();
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(
      stderr,
      /^lost-1 is dispatched; stopped waiting for it: etcd unreachable: /,
    );
    const doc = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(doc.spec_id, "lost-1");
    assert.deepEqual(doc.task_ids, ["lost-1.a"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeSpec: a dispatch of several transactions holds a marker on a lease; one slower than the lease is taken back, nothing left", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint], { failFast: true });
  const warned: string[] = [];
  /** A real store whose second transaction comes `pauseMs` late (a suspended laptop). */
  class Paused extends Store {
    n = 0;
    constructor(readonly pauseMs: number, readonly pausedTxn = 2) {
      super(client, [etcd.endpoint], (m) => warned.push(m));
    }
    override async txn(req: Parameters<Store["txn"]>[0]) {
      if (++this.n === this.pausedTxn) {
        await new Promise((r) => setTimeout(r, this.pauseMs));
      }
      return await super.txn(req);
    }
  }
  const kv = etcd.client();
  try {
    const parsed = specWith(300); // three transactions
    // Within its lease: committed, record last, the marker gone with it.
    const seen: string[] = [];
    const fast = new Paused(0);
    const orig = fast.txn.bind(fast);
    fast.txn = async (req) => {
      const r = await orig(req);
      seen.push(
        (await kv.get("/boi/cluster/dispatching/big-abcdef").string()) ??
          "none",
      );
      return r;
    };
    assert.deepEqual(await writeSpec(store(fast), keys, parsed), { ok: true });
    assert.equal(JSON.parse(seen[0]).transactions, 3, seen[0]);
    assert.equal(seen.at(-1), "none", "the record's transaction deletes it");
    assert.equal(
      (await kv.getAll().prefix("/boi/dispatch-queue/").keys()).length,
      300,
    );
    await kv.delete().all();
    // Its lease (2 s) runs out before the second transaction.
    await assert.rejects(
      () => writeSpec(new Paused(4000), keys, parsed, { leaseTtlS: 2 }),
      (e: Error) => {
        assert.ok(e instanceof CliError, String(e));
        assert.match(
          e.message,
          /^dispatch of big-abcdef took more than 2 s from its first transaction to its last \(the lease of its marker expired: suspended or cut off meanwhile\): taken back, nothing is left written; dispatch again$/,
        );
        return true;
      },
    );
    assert.deepEqual(await kv.getAll().prefix("/boi/").keys(), []);
    // The lease ran out before the first transaction (etcd refuses the put
    // on it): the same message, nothing written.
    await assert.rejects(
      () => writeSpec(new Paused(4000, 1), keys, parsed, { leaseTtlS: 2 }),
      (e: Error) => {
        assert.ok(e instanceof CliError, String(e));
        assert.match(e.message, /took more than 2 s .*: taken back, nothing/);
        return true;
      },
    );
    assert.deepEqual(await kv.getAll().prefix("/boi/").keys(), []);
    // A one-transaction dispatch needs no marker (nor a lease), but waits
    // for one of the same id still writing.
    const small = specWith(3);
    await kv.put("/boi/cluster/dispatching/big-abcdef").value("{}");
    assert.deepEqual(await writeSpec(new Paused(0), keys, small), {
      ok: false,
      reason:
        "spec big-abcdef already exists: a dispatch of it is still writing",
    });
    await kv.delete().key("/boi/cluster/dispatching/big-abcdef");
    assert.deepEqual(await writeSpec(new Paused(0), keys, small), {
      ok: true,
    });
    assert.deepEqual(warned, []);
  } finally {
    client.close();
  }
});

Deno.test("writeSpec: a transaction the client sent twice (its answer lost, asked again on another member) finds its own writes: success, nothing taken back", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint], { failFast: true });
  /** A real store that sends transaction number `twice` a second time and returns that answer. */
  class Twice extends Store {
    n = 0;
    constructor(readonly twice: number) {
      super(client, [etcd.endpoint], () => {});
    }
    override async txn(req: Parameters<Store["txn"]>[0]) {
      const first = await super.txn(req);
      return ++this.n === this.twice ? await super.txn(req) : first;
    }
  }
  const kv = etcd.client();
  try {
    // Three transactions: the first, a middle one, the record's; then one alone.
    for (const [tasks, twice] of [[300, 1], [300, 2], [300, 3], [3, 1]]) {
      const parsed = parseSpec("big.yaml", specYaml(tasks), {
        now: 1,
        suffix: randomSuffix(),
        dispatchedBy: "t",
      });
      assert.deepEqual(
        await writeSpec(new Twice(twice), keys, parsed),
        { ok: true },
        `${tasks} tasks, transaction ${twice} twice`,
      );
      const left = await kv.getAll().prefix(
        `/boi/dispatch-queue/${parsed.spec_id}.`,
      ).keys();
      assert.equal(left.length, tasks, `${tasks} tasks, txn ${twice} twice`);
      assert.notEqual(
        await kv.get(`/boi/specs/${parsed.spec_id}`).string(),
        null,
      );
      assert.equal(
        await kv.get(`/boi/cluster/dispatching/${parsed.spec_id}`).string(),
        null,
      );
    }
  } finally {
    client.close();
  }
});

Deno.test("writeSpec: two CLIs dispatching one id with equal envelopes at once: the second is refused and takes nothing of the first's", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint], { failFast: true });
  let release = () => {};
  const gate = new Promise<void>((r) => release = r);
  /** A real store that holds its second transaction until `gate`. */
  class Held extends Store {
    n = 0;
    constructor() {
      super(client, [etcd.endpoint], () => {});
    }
    override async txn(req: Parameters<Store["txn"]>[0]) {
      if (++this.n === 2) await gate;
      return await super.txn(req);
    }
  }
  try {
    // Same id, same YAML, same millisecond: byte-equal envelopes.
    const a = writeSpec(new Held(), keys, specWith(300));
    await waitFor(
      "the first dispatch's first transaction",
      async () =>
        (await etcd.client().get("/boi/cluster/dispatching/big-abcdef")
          .string()) !== null,
    );
    const b = await writeSpec(
      new Store(client, [etcd.endpoint], () => {}),
      keys,
      specWith(300),
    );
    assert.deepEqual(b, {
      ok: false,
      reason:
        "spec big-abcdef already exists: a dispatch of it is still writing",
    });
    release();
    assert.deepEqual(await a, { ok: true });
    assert.equal(
      (await etcd.client().getAll().prefix("/boi/dispatch-queue/").keys())
        .length,
      300,
      "the first dispatch whole",
    );
  } finally {
    client.close();
  }
});

/** The store as writeSpec sees it. */
function store(s: Store): Store {
  return s;
}

Deno.test("planChunks: an envelope leaves room for what nodes add as it runs", () => {
  // 984 KB through YAML aliases: under a node's RECORD_MAX_BYTES (1,000,000)
  // at dispatch, over it once a node adds its fields and an error.
  const s = "x".repeat(246_000);
  const parsed = parseSpec(
    "big.yaml",
    `name: big\ntasks:\n  - id: a\n    run: [&s ${s}]\n    env: {A: *s, B: *s, C: *s}\n`,
    { now: 1, suffix: "abcdef", dispatchedBy: "t" },
  );
  assert.throws(
    () => planChunks(keys, parsed, 2_000_000),
    (err: unknown) =>
      err instanceof CliError &&
      /^task big-abcdef\.a is too large to store: its envelope is 98\d{4} bytes, at most 983616 \(nodes add up to 16384 as it runs\)$/
        .test(err.message),
  );
});
