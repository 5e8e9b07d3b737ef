/**
 * Issue #15, the Compose test (real containers, rootful podman): the
 * topology of compose/compose.yaml comes up from the image built without a
 * registry; a spec dispatched through the CLI from the host runs on the nodes
 * whose capabilities match; a killed node container's task finishes on the
 * other capable node; node-a's hook events reach the sidecar's sink through
 * the socket they share on a volume; a process that escaped its task's group
 * is reaped by the container's PID 1 (tini); `down` leaves the host
 * as it was. Runs as its own stage (scripts/compose_test.sh), not inside
 * `deno task test`: a cold image build alone takes about a minute of both
 * cores. Skipped, loudly, when containers cannot run here.
 */
import assert from "node:assert/strict";
import { cli, freePorts, notYet, run, waitFor } from "../harness/mod.ts";
import { artifactPath } from "../harness/paths.ts";
import type { RunResult } from "../harness/mod.ts";
import { composeProbe, CONTAINERS_CONF } from "./probe.ts";

const PROJECT = "boitest";
const LEASE_TTL_S = 4;
const [etcd1, etcd2, etcd3, http1, http2, http3] = freePorts(6);
const ETCD = `127.0.0.1:${etcd1},127.0.0.1:${etcd2},127.0.0.1:${etcd3}`;
const ENV = {
  CONTAINERS_CONF,
  BOI_COMPOSE_PROJECT: PROJECT,
  BOI_COMPOSE_ETCD_PORT: String(etcd1),
  BOI_COMPOSE_ETCD_PORT2: String(etcd2),
  BOI_COMPOSE_ETCD_PORT3: String(etcd3),
  BOI_COMPOSE_HTTP_PORT: String(http1),
  BOI_COMPOSE_HTTP_PORT2: String(http2),
  BOI_COMPOSE_HTTP_PORT3: String(http3),
  BOI_COMPOSE_LEASE_TTL_S: String(LEASE_TTL_S),
};

const skip = await composeProbe();
if (skip !== null) {
  console.error(`\n!!! SKIPPED the Compose test: ${skip}\n`);
}

interface Task {
  task_id: string;
  state: string;
  ran_on: string | null;
  claimant_node_id: string | null;
  attempts: number;
}

function podman(args: string[]): Promise<RunResult> {
  return run("podman", args, { env: ENV });
}

function script(name: string, args: string[] = [], timeoutMs = 120_000) {
  return run("bash", [`scripts/${name}`, ...args], { env: ENV, timeoutMs });
}

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, r.explain());
  return r;
}

async function tasks(spec_id: string): Promise<Task[]> {
  return ok(await cli(ETCD, ["tasks", "list", "--spec", spec_id, "--json"]))
    .json<Task[]>();
}

async function dispatch(yaml: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, yaml);
    return ok(await cli(ETCD, ["dispatch", path])).stdout.split("\n")[0];
  } finally {
    await Deno.remove(path);
  }
}

/** `ip_forward` and netavark's iptables chains: what `down` must give back. */
async function hostNetState(): Promise<{ fwd: string; chains: string[] }> {
  const fwd = (await Deno.readTextFile("/proc/sys/net/ipv4/ip_forward"))
    .trim();
  const chains: string[] = [];
  for (const table of ["filter", "nat"]) {
    const r = await run("iptables", ["-t", table, "-S"]);
    chains.push(
      ...r.stdout.split("\n").filter((l) => l.startsWith("-N NETAVARK"))
        .map((l) => `${table}:${l.slice(3)}`),
    );
  }
  return { fwd, chains };
}

/**
 * What the run left on the host that was not there before it. Chains that
 * were there before and are gone now are not a leftover: an earlier run
 * killed mid-Compose leaves NETAVARK chains behind, and netavark removes all
 * of them when this run's last network goes (a red .ci/run: before held 4
 * stale chains, after none).
 */
function hostLeftovers(
  before: { fwd: string; chains: string[] },
  after: { fwd: string; chains: string[] },
): string {
  const added = after.chains.filter((c) => !before.chains.includes(c));
  const gone = before.chains.filter((c) => !after.chains.includes(c));
  if (gone.length > 0) {
    console.log(`compose: stale chains removed by netavark: ${gone.join(" ")}`);
  }
  return [
    before.fwd === after.fwd ? "" : `ip_forward ${before.fwd} -> ${after.fwd}`,
    added.length === 0 ? "" : `chains added: ${added.join(" ")}`,
  ].filter(Boolean).join("; ");
}

interface SinkLine {
  kind: string;
  payload: { task_id?: string; node_id?: string };
}

/** Waits for the sidecar's sink to hold the `task.completed` of `task_id`. */
function completed(task_id: string): Promise<SinkLine> {
  return waitFor(
    `task.completed of ${task_id} in the sidecar's sink`,
    async () => {
      const r = await podman([
        "exec",
        `${PROJECT}_hooks_1`,
        "cat",
        "/app/.boi/events.jsonl",
      ]);
      if (r.code !== 0) return notYet(r.stderr.trim());
      const lines: SinkLine[] = r.stdout.split("\n").filter(Boolean).map((
        l,
      ) => JSON.parse(l));
      return lines.find((l) =>
        l.kind === "task.completed" && l.payload?.task_id === task_id
      ) ?? notYet(lines.map((l) => `${l.kind} ${l.payload?.task_id ?? ""}`));
    },
    { timeoutMs: 20_000, intervalMs: 300 },
  );
}

Deno.test({
  name:
    "Compose: 3 etcd + 3 nodes + hooks sidecar; caps respected, a killed node's task finishes elsewhere, node-a's hook events reach the sidecar's sink, an escaped task process is reaped, host cleaned",
  ignore: skip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const t0 = Date.now();
  const lap = (what: string, since: number) =>
    console.log(`compose timing: ${what} ${Date.now() - since} ms`);
  // Only when no other container runs here can `down` restore the host.
  const othersBefore = ok(await podman(["ps", "-q"])).stdout.trim() !== "";
  const before = await hostNetState();
  await script("compose_down.sh", ["--volumes"]);
  try {
    const tUp = Date.now();
    const up = ok(await script("compose_up.sh", [], 600_000));
    for (const line of up.stderr.split("\n")) {
      if (/ built in | in \d+ s | healthy \d+ s /.test(line)) console.log(line);
    }
    lap("compose_up.sh (setup, image build, up, healthy)", tUp);

    const nodes = await waitFor(
      "node-a, node-b, node-c registered",
      async () => {
        const r = await cli(ETCD, ["nodes", "--json"]);
        if (r.code !== 0) return undefined;
        const list = r.json<
          { node_id: string; caps: Record<string, string> }[]
        >();
        return list.length === 3 ? list : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const caps = Object.fromEntries(nodes.map((n) => [n.node_id, n.caps]));
    assert.equal(caps["node-a"]?.["x-boi-gpu"], "yes", JSON.stringify(caps));
    assert.equal(caps["node-b"]?.["x-boi-disk"], "ssd", JSON.stringify(caps));
    assert.equal(caps["node-c"]?.["x-boi-disk"], "ssd", JSON.stringify(caps));

    // 1. Capabilities: GPU work only on node-a, SSD work only on b or c.
    const tCaps = Date.now();
    const capSpec = await dispatch(
      [
        "name: caps",
        "tasks:",
        ...["gpu1", "gpu2"].map((id) =>
          `  - { id: ${id}, run: "echo $BOI_NODE_ID", requires: { x-boi-gpu: "yes" } }`
        ),
        ...["ssd1", "ssd2", "ssd3", "ssd4"].map((id) =>
          `  - { id: ${id}, run: "echo $BOI_NODE_ID", requires: { x-boi-disk: ssd } }`
        ),
      ].join("\n") + "\n",
    );
    const done = await waitFor(`${capSpec}: 6 tasks DONE`, async () => {
      const ts = await tasks(capSpec);
      return ts.length === 6 && ts.every((t) => t.state === "DONE")
        ? ts
        : undefined;
    }, { timeoutMs: 60_000, intervalMs: 300 });
    for (const t of done) {
      const want = t.task_id.endsWith(".gpu1") || t.task_id.endsWith(".gpu2")
        ? ["node-a"]
        : ["node-b", "node-c"];
      assert.ok(
        want.includes(t.ran_on ?? ""),
        `${t.task_id} ran on ${t.ran_on}, expected one of ${want}`,
      );
    }
    lap("dispatch of 6 tasks to all DONE", tCaps);

    // 2. Kill the container of the node running an SSD task: the other SSD
    //    node takes it over once the victim's lease has expired.
    const tKill = Date.now();
    const longSpec = await dispatch(
      "name: failover\ntasks:\n  - id: long\n    requires: { x-boi-disk: ssd }\n" +
        `    run: 'if [ "$BOI_ATTEMPT" = 1 ]; then sleep 600; fi; echo "attempt $BOI_ATTEMPT on $BOI_NODE_ID"'\n`,
    );
    const running = await waitFor(`${longSpec}.long RUNNING`, async () => {
      const [t] = await tasks(longSpec);
      return t?.state === "RUNNING" ? t : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    const victim = running.claimant_node_id!;
    assert.ok(["node-b", "node-c"].includes(victim), `claimant ${victim}`);
    ok(await podman(["kill", `${PROJECT}_${victim}_1`]));
    const tKilled = Date.now();
    const [moved] = await waitFor(
      `${longSpec}.long DONE after ${victim} was killed`,
      async () => {
        const ts = await tasks(longSpec);
        return ts[0]?.state === "DONE" ? ts : undefined;
      },
      { timeoutMs: (LEASE_TTL_S + 30) * 1000, intervalMs: 200 },
    );
    assert.notEqual(moved.ran_on, victim);
    assert.ok(
      ["node-b", "node-c"].includes(moved.ran_on ?? ""),
      moved.ran_on ?? "",
    );
    assert.equal(moved.attempts, 2);
    lap(`SIGKILL of ${victim} to DONE on ${moved.ran_on}`, tKilled);
    lap("failover part", tKill);

    // 3. The hooks sidecar: node-a's supervisor attached to the socket the
    //    sidecar serves in the shared volume (handshake done: its caps are
    //    the plugin's), and the events of node-a's own transitions (the GPU
    //    tasks ran there) reached the sidecar's sink through that socket.
    const hooksRecords = async () =>
      ok(await cli(ETCD, ["plugin", "list", "--json"])).json<
        {
          node_id: string;
          name: string;
          state: string;
          capabilities: string[];
          crashes: unknown[];
        }[]
      >().filter((p) => p.name === "hooks");
    const first = await hooksRecords();
    assert.deepEqual(
      first.map((p) => [p.node_id, p.state, p.capabilities]),
      [["node-a", "ready", ["dedup", "mux"]]],
      JSON.stringify(first),
    );
    for (const id of ["gpu1", "gpu2"]) {
      const line = await completed(`${capSpec}.${id}`);
      assert.equal(line.payload.node_id, "node-a", JSON.stringify(line));
    }

    // 4. A process that leaves its task's process group outlives the task
    //    and is reparented to the container's PID 1 once its parents are
    //    gone; PID 1 must reap it when it dies (Deno as PID 1 never did: it
    //    stayed a zombie until the container stopped). The task waits until
    //    its child has its own session: the pool SIGKILLs the task's group
    //    when the leader exits, and a child still on its way to setsid()
    //    would die with it. The test kills the escapee itself once seen.
    const orphanSpec = await dispatch(
      [
        "name: orphan",
        "tasks:",
        "  - id: escape",
        '    requires: { x-boi-gpu: "yes" }',
        "    run: |",
        "      setsid sleep 600 </dev/null >/dev/null 2>&1 &",
        "      s=$!",
        `      until [ "$(cut -d' ' -f6 /proc/$s/stat)" = "$s" ]; do sleep 0.05; done`,
        "      echo escaped",
      ].join("\n") + "\n",
    );
    // Every `sleep` in node-a's container, a line each: "<state> <pid> <ppid>".
    const inNodeA = async (script: string) =>
      ok(await podman(["exec", `${PROJECT}_node-a_1`, "sh", "-c", script]))
        .stdout.trim();
    const sleeps = () =>
      inNodeA(
        'for s in /proc/[0-9]*/status; do grep -q "^Name:[[:space:]]*sleep$" "$s" 2>/dev/null && awk \'/^(Pid|PPid|State):/ { printf "%s ", $2 } END { print "" }\' "$s"; done; true',
      );
    const alive = await waitFor(
      `${orphanSpec}.escape DONE and its escaped sleep living under PID 1`,
      async () => {
        const [t] = await tasks(orphanSpec);
        if (t?.state !== "DONE") return notYet(`task ${t?.state}`);
        const s = await sleeps();
        const m = /^S (\d+) 1$/m.exec(s);
        return m ? Number(m[1]) : notYet(s);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await inNodeA(`kill ${alive}`);
    await waitFor(
      `the escaped sleep (pid ${alive}) reaped by PID 1 once killed`,
      async () => {
        const s = await sleeps();
        return s === "" ? true : notYet(s);
      },
      { timeoutMs: 20_000, intervalMs: 300 },
    );

    // Not tested: restarting the sidecar. Its graceful shutdown sends an
    // HTTP/2 GOAWAY, and Deno 2.9.6 can abort the whole node process on it
    // inside nghttp2 (denoland/deno#36788; seen here in 2 of 6 runs). See
    // compose/README.md, "Known issue".
  } catch (e) {
    // What each container said, before `down` removes them.
    for (
      const c of (await podman(["ps", "-a", "--format", "{{.Names}}"])).stdout
        .split("\n")
    ) {
      if (!c.startsWith(`${PROJECT}_`)) continue;
      const logs = await podman(["logs", c]);
      const path = await artifactPath("compose", c);
      await Deno.writeTextFile(path, logs.stdout + logs.stderr);
      console.error(
        `--- ${c} (full log: ${path}), last lines:\n${
          (logs.stdout + logs.stderr).trimEnd().split("\n").slice(-15).join(
            "\n",
          )
        }`,
      );
    }
    throw e;
  } finally {
    const down = await script("compose_down.sh", ["--volumes"]);
    assert.equal(down.code, 0, down.explain());
    lap("whole test", t0);
  }
  const left = ok(
    await podman([
      "ps",
      "-a",
      "--filter",
      `label=io.podman.compose.project=${PROJECT}`,
      "-q",
    ]),
  ).stdout.trim();
  assert.equal(left, "", "containers left behind");
  for (const net of [`${PROJECT}_default`, `${PROJECT}_isolated`]) {
    const r = await podman(["network", "exists", net]);
    assert.notEqual(r.code, 0, `network ${net} left behind`);
  }
  if (!othersBefore) {
    assert.equal(hostLeftovers(before, await hostNetState()), "");
  }
});
