/**
 * etcd itself fails (SPEC §6, §14): the single member is SIGKILLed and
 * restarted with 50 tasks in flight; the leader of a 3-member cluster is
 * killed during a 100-task run. Every task ends DONE, written DONE once.
 */
import assert from "node:assert/strict";
import type { EtcdMember, NodeProc } from "../harness/mod.ts";
import {
  listEnvelopes,
  startEtcd,
  startEtcdCluster,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { connectEtcd } from "../../node/etcd_client.ts";
import { deadline } from "../../node/etcd_errors.ts";
import type { Envelope } from "../../node/schema.ts";
import {
  dispatchYaml,
  doneCommits,
  envelopeHistory,
  since,
  specYaml,
  storeRevision,
  waitSpecTerminal,
} from "./outage_util.ts";

function tally(values: (string | number)[]): string {
  const m = new Map<string | number, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return [...m].sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map((
    [k, n],
  ) => `${k}×${n}`).join(" ");
}

function countLogs(nodes: NodeProc[], msg: string): number {
  return nodes.reduce(
    (n, node) => n + node.logs().filter((l) => l.msg === msg).length,
    0,
  );
}

/** Every task DONE, and DONE written exactly once per task in the history. */
async function assertDoneOnce(
  etcd: Parameters<typeof envelopeHistory>[0],
  specId: string,
  fromRev: number,
  done: Envelope[],
  n: number,
): Promise<void> {
  assert.equal(done.length, n);
  assert.deepEqual(
    done.filter((t) => t.state !== "DONE").map((t) =>
      `${t.task_id}:${t.state}:${t.last_error}`
    ),
    [],
  );
  const commits = doneCommits(await envelopeHistory(etcd, specId, fromRev));
  assert.equal(commits.size, n);
  const twice = [...commits].filter(([, c]) => c !== 1);
  assert.deepEqual(twice, [], "tasks written DONE more than once");
}

Deno.test("etcd SIGKILLed and restarted with 50 short tasks in flight: all 50 DONE, each written DONE once", async () => {
  await using etcd = await startEtcd();
  const nodes: NodeProc[] = [];
  try {
    for (const id of ["node-a", "node-b", "node-c"]) {
      nodes.push(await startNode(etcd, { nodeId: id, workersMax: 20 }));
    }
    const fromRev = (await storeRevision(etcd)) + 1;
    const { spec_id } = await dispatchYaml(
      etcd,
      specYaml("etcdkill", 50, "'sleep 1.5; echo ok'"),
    );
    await waitFor("all 50 tasks claimed", async () => {
      const all = await listEnvelopes(etcd, { specId: spec_id });
      return all.length === 50 &&
        all.every((e) =>
          e.value.state === "CLAIMED" || e.value.state === "RUNNING"
        );
    }, { timeoutMs: 20_000, intervalMs: 50 });
    const t0 = performance.now();
    await etcd.kill();
    await new Promise((r) => setTimeout(r, 2500)); // the workers end meanwhile
    await etcd.restart();
    const restartedAt = since(t0);
    const done = await waitSpecTerminal(etcd, spec_id, 60_000);
    console.log(
      `etcd down ${restartedAt} ms; all terminal ${
        since(t0)
      } ms after the kill; attempts ${
        tally(done.map((t) => t.attempts))
      }; ran on ${tally(done.map((t) => t.ran_on ?? "-"))}; parked ${
        countLogs(nodes, "result parked in pending flush")
      }, committed from the pending flush ${
        countLogs(nodes, "result committed from pending flush")
      }, already committed ${
        countLogs(nodes, "pending flush: result was already committed")
      }, superseded ${countLogs(nodes, "result superseded")}; fences ${
        Math.min(...done.map((t) => t.fence!))
      }..${Math.max(...done.map((t) => t.fence!))}`,
    );
    await assertDoneOnce(etcd, spec_id, fromRev, done, 50);
  } finally {
    await Promise.all(nodes.map((n) => n[Symbol.asyncDispose]()));
  }
});

/** The member that is the raft leader, asked of each member in turn. */
async function findLeader(members: EtcdMember[]): Promise<EtcdMember> {
  return await waitFor("an etcd leader", async () => {
    for (const m of members) {
      const c = connectEtcd([m.endpoint], { failFast: true });
      try {
        const st = await c.maintenance.status(deadline(1000));
        if (st.leader !== "0" && st.leader === st.header.member_id) return m;
      } catch {
        // this member does not answer: ask the next
      } finally {
        c.close();
      }
    }
    return undefined;
  });
}

Deno.test("3-member etcd, the leader SIGKILLed during a 100-task run: all 100 DONE, each written DONE once", async () => {
  await using etcd = await startEtcdCluster();
  const nodes: NodeProc[] = [];
  try {
    for (const id of ["node-a", "node-b", "node-c"]) {
      // etcd.endpoint lists all three members. A 5 s lease outlives the
      // election. The claim-failure cooldown is out of the way: a lease lost
      // here with several claims held would otherwise degrade the node for
      // 5 minutes (cooldown_test.ts covers it).
      nodes.push(
        await startNode(etcd, {
          nodeId: id,
          workersMax: 10,
          leaseTtlS: 5,
          env: { BOI_CLAIM_FAILURE_LIMIT: "1000" },
        }),
      );
    }
    const fromRev = (await storeRevision(etcd)) + 1;
    const { spec_id } = await dispatchYaml(
      etcd,
      specYaml("leaderkill", 100, "'sleep 0.3'"),
    );
    await waitFor("20 tasks DONE", async () => {
      const all = await listEnvelopes(etcd, { specId: spec_id });
      return all.filter((e) => e.value.state === "DONE").length >= 20;
    }, { timeoutMs: 30_000, intervalMs: 50 });
    const leader = await findLeader(etcd.members);
    const t0 = performance.now();
    await leader.kill();
    const rest = etcd.members.filter((m) => m !== leader);
    const next = await findLeader(rest);
    const electedAt = since(t0);
    const done = await waitSpecTerminal(etcd, spec_id, 90_000);
    console.log(
      `killed leader ${leader.name}; ${next.name} leads after ${electedAt} ms; all 100 terminal ${
        since(t0)
      } ms after the kill; attempts ${
        tally(done.map((t) => t.attempts))
      }; ran on ${tally(done.map((t) => t.ran_on ?? "-"))}`,
    );
    await assertDoneOnce(etcd, spec_id, fromRev, done, 100);
  } finally {
    await Promise.all(nodes.map((n) => n[Symbol.asyncDispose]()));
  }
});
