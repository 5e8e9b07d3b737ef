/**
 * The CLI as a user runs it: `deno run -P=cli cli.ts …` subprocesses against
 * a throwaway etcd on free loopback ports. Nodes are simulated by writing
 * envelopes directly, so this tests the CLI's reads, writes and waits only.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import { connectEtcd } from "../node/etcd_client.ts";
import { Keys } from "../node/keys.ts";
import { Envelope, SpecRecord } from "../node/schema.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const HELLO = `${ROOT}examples/hello.yaml`;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Etcd {
  endpoint: string;
  client: Etcd3;
  stop(): Promise<void>;
}

async function startEtcd(): Promise<Etcd> {
  const dir = await Deno.makeTempDir({ prefix: "boi-cli-etcd-" });
  const client = freePort();
  const peer = freePort();
  const endpoint = `http://127.0.0.1:${client}`;
  const proc = new Deno.Command("etcd", {
    args: [
      `--data-dir=${dir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=default=http://127.0.0.1:${peer}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const etcd = connectEtcd([endpoint], { failFast: true });
  const stop = async () => {
    etcd.close();
    try {
      proc.kill("SIGTERM");
    } catch {
      // already gone
    }
    await proc.status;
    await Deno.remove(dir, { recursive: true });
  };
  for (let i = 0;; i++) {
    try {
      await etcd.get("/ping").string();
      return { endpoint, client: etcd, stop };
    } catch (err) {
      if (i >= 100) {
        await stop();
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

interface Run {
  code: number;
  out: string;
  err: string;
  ms: number;
}

async function cli(
  env: Record<string, string>,
  ...args: string[]
): Promise<Run> {
  const start = Date.now();
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-P=cli", "cli.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  return {
    code: res.code,
    out: new TextDecoder().decode(res.stdout),
    err: new TextDecoder().decode(res.stderr),
    ms: Date.now() - start,
  };
}

async function keysUnder(etcd: Etcd3, prefix: string): Promise<string[]> {
  return await etcd.getAll().prefix(prefix).keys();
}

async function readEnvelope(
  etcd: Etcd3,
  key: string,
): Promise<{ env: Envelope; mod: number }> {
  const res = await etcd.kv.range({ key: Buffer.from(key) });
  const kv = res.kvs[0];
  assert.ok(kv, `${key} exists`);
  return {
    env: Envelope.parse(JSON.parse(kv.value.toString())),
    mod: Number(kv.mod_revision),
  };
}

/** Stands in for a node: rewrites a task envelope with compare-and-swap. */
async function nodeWrites(
  etcd: Etcd3,
  key: string,
  change: (e: Envelope) => Partial<Envelope>,
): Promise<void> {
  for (;;) {
    const { env, mod } = await readEnvelope(etcd, key);
    const next = {
      ...env,
      ...change(env),
      state_version: env.state_version + 1,
    };
    const res = await etcd.kv.txn({
      compare: [{
        key: Buffer.from(key),
        target: "Mod",
        result: "Equal",
        mod_revision: mod,
      }],
      success: [{
        request_put: {
          key: Buffer.from(key),
          value: Buffer.from(JSON.stringify(next)),
        },
      }],
    });
    if (res.succeeded) return;
  }
}

async function until(what: string, check: () => Promise<boolean>) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "CLI against a real etcd",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const etcd = await startEtcd();
  let n = 0;
  /** A fresh key prefix per step keeps steps independent. */
  const fresh = () => {
    const prefix = `/cli-test-${++n}/`;
    return {
      prefix,
      keys: new Keys(prefix),
      env: { BOI_ETCD_ENDPOINTS: etcd.endpoint, BOI_KEY_PREFIX: prefix },
    };
  };
  const dir = await Deno.makeTempDir({ prefix: "boi-cli-specs-" });
  try {
    await t.step(
      "dispatch writes envelopes and the spec in one txn",
      async () => {
        const { prefix, keys, env } = fresh();
        const r = await cli(env, "dispatch", HELLO, "--json");
        assert.equal(r.code, 0, r.err);
        const doc = JSON.parse(r.out);
        assert.match(doc.spec_id, /^hello-[a-z2-7]{6}$/);
        assert.deepEqual(doc.task_ids, [
          `${doc.spec_id}.greet`,
          `${doc.spec_id}.count`,
          `${doc.spec_id}.report`,
        ]);
        assert.deepEqual(Object.keys(doc).sort(), ["spec_id", "task_ids"]);
        assert.deepEqual(
          (await keysUnder(etcd.client, prefix)).sort(),
          [
            keys.task(`${doc.spec_id}.count`),
            keys.task(`${doc.spec_id}.greet`),
            keys.task(`${doc.spec_id}.report`),
            keys.spec(doc.spec_id),
          ].sort(),
        );
        const report = await readEnvelope(
          etcd.client,
          keys.task(`${doc.spec_id}.report`),
        );
        assert.equal(report.env.state, "BLOCKED");
        const greet = await readEnvelope(
          etcd.client,
          keys.task(`${doc.spec_id}.greet`),
        );
        assert.equal(greet.env.state, "PENDING");
        assert.equal(greet.mod, report.mod, "one transaction");
        const spec = SpecRecord.parse(
          JSON.parse(
            await etcd.client.get(keys.spec(doc.spec_id)).string() ?? "",
          ),
        );
        assert.deepEqual(spec.task_ids, doc.task_ids);
        assert.equal(spec.yaml, await Deno.readTextFile(HELLO));

        const plain = await cli(env, "dispatch", HELLO);
        assert.equal(plain.code, 0, plain.err);
        const lines = plain.out.trimEnd().split("\n");
        assert.equal(lines.length, 4);
        assert.match(lines[0], /^hello-[a-z2-7]{6}$/);
        assert.equal(lines[1], `${lines[0]}.greet`);
      },
    );

    await t.step(
      "large specs: chunks of <= 128 ops, spec record last",
      async () => {
        const { prefix, keys, env } = fresh();
        const lines = ["name: wide", "id: wide-1", "tasks:"];
        for (let i = 0; i < 300; i++) lines.push(`- {id: t${i}, run: "true"}`);
        await Deno.writeTextFile(`${dir}/wide.yaml`, lines.join("\n"));
        const r = await cli(env, "dispatch", `${dir}/wide.yaml`);
        assert.equal(r.code, 0, r.err);
        const res = await etcd.client.kv.range({
          key: Buffer.from(prefix),
          range_end: Buffer.from(prefix.slice(0, -1) + "0"),
        });
        assert.equal(res.kvs.length, 301);
        const byRev = new Map<string, number>();
        let specRev = 0;
        let maxTaskRev = 0;
        for (const kv of res.kvs) {
          byRev.set(kv.mod_revision, (byRev.get(kv.mod_revision) ?? 0) + 1);
          const rev = Number(kv.mod_revision);
          if (kv.key.toString() === keys.spec("wide-1")) specRev = rev;
          else maxTaskRev = Math.max(maxTaskRev, rev);
        }
        assert.ok(byRev.size >= 3, "several transactions");
        for (const count of byRev.values()) assert.ok(count <= 128);
        assert.equal(specRev, maxTaskRev, "spec written with the last chunk");

        const again = await cli(env, "dispatch", `${dir}/wide.yaml`);
        assert.equal(again.code, 1);
        assert.equal(again.err, "spec wide-1 already exists\n");
        assert.equal((await keysUnder(etcd.client, prefix)).length, 301);
      },
    );

    await t.step("bad specs write nothing", async () => {
      const { prefix, env } = fresh();
      const cases: [string, string, RegExp][] = [
        [
          "cycle.yaml",
          "name: c\ntasks:\n- {id: a, run: x, depends_on: [b]}\n- {id: b, run: x, depends_on: [a]}\n",
          /tasks\[0\]\.depends_on forms a cycle: a -> b -> a/,
        ],
        ["empty.yaml", "", /must be a YAML mapping/],
        ["syntax.yaml", "name: [\n", /:\d+:\d+: invalid YAML/],
        [
          "cap.yaml",
          "name: c\ntasks: [{id: a, run: x, requires: {gpu: a100}}]\n",
          /tasks\[0\]\.requires\.gpu is not a valid capability/,
        ],
      ];
      for (const [file, text, re] of cases) {
        await Deno.writeTextFile(`${dir}/${file}`, text);
        const r = await cli(env, "dispatch", `${dir}/${file}`);
        assert.equal(r.code, 1, file);
        assert.equal(r.out, "");
        assert.match(r.err, re);
        assert.ok(r.err.startsWith(`${dir}/${file}`), r.err);
        assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
      }
      await Deno.writeFile(
        `${dir}/garbage.yaml`,
        new Uint8Array([0xc3, 0x28, 0, 1]),
      );
      const g = await cli(env, "dispatch", `${dir}/garbage.yaml`);
      assert.equal(g.code, 1);
      assert.equal(g.err, `${dir}/garbage.yaml: cannot read: not UTF-8 text\n`);
      const m = await cli(env, "dispatch", `${dir}/missing.yaml`);
      assert.equal(m.code, 1);
      assert.match(m.err, /missing\.yaml: cannot read: /);
      assert.deepEqual(await keysUnder(etcd.client, prefix), []);
    });

    await t.step("status, tasks list and tasks get", async () => {
      const { keys, env } = fresh();
      const d = JSON.parse((await cli(env, "dispatch", HELLO, "--json")).out);
      const status = await cli(env, "status", "--json");
      assert.equal(status.code, 0, status.err);
      assert.deepEqual(JSON.parse(status.out), {
        specs: [{
          spec_id: d.spec_id,
          counts: {
            BLOCKED: 1,
            PENDING: 2,
            CLAIMED: 0,
            RUNNING: 0,
            DONE: 0,
            FAILED: 0,
            CANCELLED: 0,
          },
        }],
      });
      const one = await cli(env, "status", d.spec_id);
      assert.equal(one.code, 0, one.err);
      assert.match(one.out, /greet\s+PENDING/);
      assert.equal((await cli(env, "status", "nope-aaaaaa")).code, 1);

      const list = await cli(
        env,
        "tasks",
        "list",
        "--state",
        "blocked",
        "--json",
      );
      assert.equal(list.code, 0, list.err);
      const blocked = JSON.parse(list.out);
      assert.equal(blocked.length, 1);
      assert.equal(Envelope.parse(blocked[0]).task_id, `${d.spec_id}.report`);

      const get = await cli(
        env,
        "tasks",
        "get",
        `${d.spec_id}.greet`,
        "--json",
      );
      assert.equal(get.code, 0, get.err);
      const doc = JSON.parse(get.out);
      const { mod } = await readEnvelope(
        etcd.client,
        keys.task(`${d.spec_id}.greet`),
      );
      assert.equal(doc.mod_revision, mod);
      Envelope.parse(doc);

      const unknown = await cli(env, "tasks", "get", `${d.spec_id}.nope`);
      assert.equal(unknown.code, 1);
      assert.equal(unknown.err, `task ${d.spec_id}.nope not found\n`);

      // A task's strings cannot forge fields or steer the terminal.
      const forged = await Deno.makeTempFile({ suffix: ".yaml" });
      await Deno.writeTextFile(
        forged,
        'name: forged\ntasks:\n  - id: a\n    run: "sleep 60\\nstate: DONE\\n\\u001b[31m\\u202e"\n',
      );
      const f = JSON.parse((await cli(env, "dispatch", forged, "--json")).out);
      await Deno.remove(forged);
      const shown = await cli(env, "tasks", "get", `${f.spec_id}.a`);
      assert.equal(shown.code, 0, shown.err);
      assert.deepEqual(
        shown.out.split("\n").filter((l) => l.startsWith("state:")),
        ["state: PENDING"],
      );
      assert.match(
        shown.out,
        /^run: sleep 60\\u000astate: DONE\\u000a\\u001b\[31m\\u202e$/m,
      );

      await etcd.client.put(keys.task("junk-aaaaaa.x")).value("{not json");
      const skipped = await cli(env, "tasks", "list", "--json");
      assert.equal(skipped.code, 0);
      assert.equal(JSON.parse(skipped.out).length, 4);
      assert.match(
        skipped.err,
        /warning: skipping .*junk-aaaaaa\.x: invalid record/,
      );
    });

    await t.step(
      "tasks cancel: waiting tasks at once, running ones via the node",
      async () => {
        const { keys, env } = fresh();
        const d = JSON.parse((await cli(env, "dispatch", HELLO, "--json")).out);
        const greet = `${d.spec_id}.greet`;
        const c = await cli(env, "tasks", "cancel", greet, "--json");
        assert.equal(c.code, 0, c.err);
        const doc = JSON.parse(c.out);
        assert.equal(doc.state, "CANCELLED");
        assert.equal(doc.last_error, "cancelled by user");
        assert.equal(doc.state_version, 1);
        assert.equal(typeof doc.finished_at, "number");
        const again = await cli(env, "tasks", "cancel", greet);
        assert.equal(again.code, 1);
        assert.equal(again.err, `task ${greet} is already CANCELLED\n`);

        const count = `${d.spec_id}.count`;
        await nodeWrites(etcd.client, keys.task(count), () => ({
          state: "RUNNING",
          claimant_node_id: "node-z",
          attempts: 1,
        }));
        const pending = cli(env, "tasks", "cancel", count, "--timeout", "8s");
        await until(
          "cancel_requested",
          async () =>
            (await readEnvelope(etcd.client, keys.task(count))).env
              .cancel_requested,
        );
        await nodeWrites(etcd.client, keys.task(count), () => ({
          state: "CANCELLED",
          last_error: "cancelled by user",
          finished_at: Date.now(),
        }));
        const r = await pending;
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, new RegExp(`^${count} CANCELLED`));

        // Nobody confirms: the wait times out with exit 1.
        const report = `${d.spec_id}.report`;
        await nodeWrites(etcd.client, keys.task(report), () => ({
          state: "CLAIMED",
          claimant_node_id: "node-z",
          attempts: 1,
        }));
        const late = await cli(
          env,
          "tasks",
          "cancel",
          report,
          "--timeout",
          "1s",
        );
        assert.equal(late.code, 1);
        assert.match(late.err, /is still CLAIMED on node-z after 1\.0s/);
      },
    );

    await t.step("dispatch --wait follows the tasks to the end", async () => {
      const { keys, env } = fresh();
      await Deno.writeTextFile(
        `${dir}/w.yaml`,
        "name: w\nid: w-1\ntasks:\n- {id: a, run: x}\n- {id: b, run: x, depends_on: [a]}\n",
      );
      const watchersBefore = await watcherCount(etcd.endpoint);
      const waiting = cli(
        env,
        "dispatch",
        `${dir}/w.yaml`,
        "--wait",
        "--timeout",
        "20s",
      );
      const a = keys.task("w-1.a");
      const b = keys.task("w-1.b");
      await until(
        "spec",
        async () => (await etcd.client.get(keys.spec("w-1")).string()) !== null,
      );
      // The node's writes must come after the CLI watches, or it can only
      // report the state it lists (it may never see RUNNING).
      await until(
        "the CLI's watch",
        async () => (await watcherCount(etcd.endpoint)) > watchersBefore,
      );
      for (const state of ["CLAIMED", "RUNNING", "DONE"] as const) {
        await nodeWrites(etcd.client, a, () => ({
          state,
          claimant_node_id: state === "DONE" ? null : "node-y",
          ran_on: state === "DONE" ? "node-y" : null,
          exit_code: state === "DONE" ? 0 : null,
        }));
      }
      await nodeWrites(etcd.client, b, () => ({ state: "PENDING" }));
      await nodeWrites(etcd.client, b, () => ({
        state: "FAILED",
        ran_on: "node-y",
        exit_code: 3,
        last_error: "exit 3",
      }));
      const r = await waiting;
      assert.equal(r.code, 1, r.err);
      const lines = r.out.trimEnd().split("\n");
      assert.deepEqual(lines.slice(0, 3), ["w-1", "w-1.a", "w-1.b"]);
      assert.ok(lines.includes("w-1.a RUNNING on node-y"), r.out);
      assert.ok(lines.includes("w-1.b FAILED on node-y exit 3: exit 3"), r.out);
      assert.match(lines.at(-2)!, /^w-1: 1 DONE, 1 FAILED in /);

      // All DONE -> exit 0; --json prints only the final document.
      await Deno.writeTextFile(
        `${dir}/w2.yaml`,
        "name: w\nid: w-2\ntasks:\n- {id: a, run: x}\n",
      );
      const ok = cli(env, "dispatch", `${dir}/w2.yaml`, "--wait", "--json");
      await until(
        "spec",
        async () => (await etcd.client.get(keys.spec("w-2")).string()) !== null,
      );
      await nodeWrites(etcd.client, keys.task("w-2.a"), () => ({
        state: "DONE",
        ran_on: "node-y",
        exit_code: 0,
      }));
      const done = await ok;
      assert.equal(done.code, 0, done.err);
      const doc = JSON.parse(done.out);
      assert.deepEqual(Object.keys(doc).sort(), [
        "spec_id",
        "task_ids",
        "tasks",
      ]);
      assert.equal(doc.tasks[0].state, "DONE");

      await Deno.writeTextFile(
        `${dir}/w3.yaml`,
        "name: w\nid: w-3\ntasks:\n- {id: a, run: x}\n",
      );
      const slow = await cli(
        env,
        "dispatch",
        `${dir}/w3.yaml`,
        "--wait",
        "--timeout",
        "1s",
      );
      assert.equal(slow.code, 1);
      assert.equal(slow.err, "timed out after 1s waiting for: w-3.a\n");
    });

    await t.step("nodes joins node and caps records", async () => {
      const { keys, env } = fresh();
      const lease = etcd.client.lease(30, { autoKeepAlive: false });
      await lease.put(keys.node("node-a")).value(JSON.stringify({
        node_id: "node-a",
        addr: "127.0.0.1:7001",
        version: "0.1.0",
        started_at: Date.now(),
        pid: 1,
      }));
      await lease.put(keys.caps("node-a")).value(JSON.stringify({
        static: { os: "linux", arch: "x86_64" },
        dynamic: { workers_busy: 1, workers_max: 4, health: "ok" },
      }));
      const r = await cli(env, "nodes", "--json");
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), [{
        node_id: "node-a",
        addr: "127.0.0.1:7001",
        caps: { os: "linux", arch: "x86_64" },
        health: "ok",
        workers_busy: 1,
        workers_max: 4,
      }]);
      const human = await cli(env, "nodes");
      assert.match(
        human.out,
        /node-a\s+127\.0\.0\.1:7001\s+ok\s+1\/4\s+\d+s left/,
      );
      await lease.revoke();
    });

    await t.step(
      "a dead etcd is exit 3 within 2.5 s of the first call",
      async () => {
        const dead = `127.0.0.1:${freePort()}`;
        const env = { BOI_ETCD_ENDPOINTS: dead };
        for (
          const args of [
            ["dispatch", HELLO],
            ["status"],
            ["tasks", "list"],
            ["tasks", "cancel", "a.b"],
            ["nodes"],
          ]
        ) {
          const r = await cli(env, ...args);
          assert.equal(r.code, 3, `${args.join(" ")}: ${r.err}`);
          assert.equal(r.out, "");
          assert.match(
            r.err,
            new RegExp(`^etcd unreachable: http://${dead}: .+\\n$`),
          );
          // Includes starting Deno itself.
          assert.ok(r.ms < 4000, `${args.join(" ")} took ${r.ms} ms`);
        }
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await etcd.stop();
  }
});

/** Watchers etcd serves now (its own gauge): tells when a CLI's watch is in place. */
async function watcherCount(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  if (!m) {
    throw new Error("etcd /metrics has no etcd_debugging_mvcc_watcher_total");
  }
  return Number(m[1]);
}
