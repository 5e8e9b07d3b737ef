/** Helpers shared by the outage, cooldown, pause and drain end-to-end tests. */
import { Buffer } from "node:buffer";
import {
  cli,
  type EtcdTarget,
  type HasClient,
  listEnvelopes,
  makeTempDir,
  notYet,
  waitFor,
  within,
} from "../harness/mod.ts";
import { DEFAULT_PREFIX } from "../../node/keys.ts";
import { Envelope, TERMINAL_STATES } from "../../node/schema.ts";

/** Writes `yaml` to a temp file; returns its path. */
export async function specFile(yaml: string): Promise<string> {
  const dir = await makeTempDir("boi-spec-");
  const file = `${dir}/spec.yaml`;
  await Deno.writeTextFile(file, yaml);
  return file;
}

/** Dispatches `yaml` through the CLI at `etcd`; throws with the CLI's output unless it exits 0. */
export async function dispatchYaml(
  etcd: EtcdTarget,
  yaml: string,
): Promise<{ spec_id: string; task_ids: string[] }> {
  const r = await cli(etcd, ["dispatch", await specFile(yaml), "--json"]);
  if (r.code !== 0) throw new Error(`dispatch failed\n${r.explain()}`);
  return r.json();
}

/** `n` tasks `t0..t<n-1>` running `run` (a YAML scalar), optionally with `requires`. */
export function specYaml(
  name: string,
  n: number,
  run: string,
  requires?: Record<string, string>,
): string {
  const req = requires === undefined
    ? ""
    : `requires: ${JSON.stringify(requires)}\n`;
  const tasks = Array.from(
    { length: n },
    (_, i) => `  - id: t${i}\n    run: ${run}\n`,
  );
  return `name: ${name}\n${req}tasks:\n${tasks.join("")}`;
}

/** Waits until every task of the spec is terminal; returns the envelopes. */
export async function waitSpecTerminal(
  etcd: HasClient,
  specId: string,
  timeoutMs = 30_000,
): Promise<Envelope[]> {
  return await waitFor(`every task of ${specId} terminal`, async () => {
    const all = (await listEnvelopes(etcd, { specId })).map((s) => s.value);
    const open = all.filter((e) => !TERMINAL_STATES.has(e.state));
    if (all.length === 0 || open.length > 0) {
      return notYet(open.map((e) => `${e.task_id}:${e.state}:${e.last_error}`));
    }
    return all;
  }, { timeoutMs, intervalMs: 100 });
}

/**
 * Every version each envelope of the spec went through since `fromRevision`,
 * replayed from etcd's history with a watch (history must not be compacted).
 */
export async function envelopeHistory(
  etcd: HasClient,
  specId: string,
  fromRevision: number,
  prefix = DEFAULT_PREFIX,
): Promise<Map<string, { envelope: Envelope; revision: number }[]>> {
  const dir = `${prefix}dispatch-queue/${specId}.`;
  const client = etcd.client();
  const now = await client.getAll().prefix(dir).exec();
  const upTo = Math.max(0, ...now.kvs.map((kv) => Number(kv.mod_revision)));
  const out = new Map<string, { envelope: Envelope; revision: number }[]>();
  if (upTo < fromRevision) return out;
  const watcher = await client.watch().prefix(dir).startRevision(
    String(fromRevision),
  ).create();
  try {
    await within(
      `history of ${specId} from revision ${fromRevision} to ${upTo}`,
      new Promise<void>((resolve, reject) => {
        watcher.on("error", reject);
        watcher.on("data", (res) => {
          for (const ev of res.events) {
            const rev = Number(ev.kv.mod_revision);
            if (ev.type === "Put") {
              const e = Envelope.parse(JSON.parse(ev.kv.value.toString()));
              const list = out.get(e.task_id) ?? [];
              list.push({ envelope: e, revision: rev });
              out.set(e.task_id, list);
            }
            if (rev >= upTo) resolve();
          }
        });
      }),
      15_000,
    );
  } finally {
    await watcher.cancel();
  }
  return out;
}

/** How many times each task was written DONE in its history. */
export function doneCommits(
  history: Map<string, { envelope: Envelope }[]>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const [id, versions] of history) {
    out.set(id, versions.filter((v) => v.envelope.state === "DONE").length);
  }
  return out;
}

/** A counter or gauge from a node's `/metrics` (0 when absent). */
export async function metric(url: string, name: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, {
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** `GET /healthz`: status code and JSON body. */
export async function healthz(
  url: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/healthz`, {
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json() };
}

/** The etcd revision of the store, read straight from the first member that answers. */
export async function storeRevision(etcd: HasClient): Promise<number> {
  const res = await etcd.client().kv.range({
    key: Buffer.from("/boi-revision-probe"),
  });
  return Number(res.header.revision);
}

/**
 * Waits until no write lands for `quietMs` (nodes publish capacity up to once
 * a second after work ends): a test that then compares revisions sees only
 * what it caused.
 */
export async function quietRevision(
  etcd: HasClient,
  quietMs = 1500,
): Promise<number> {
  let last = await storeRevision(etcd);
  let since = performance.now();
  return await waitFor(`no etcd write for ${quietMs} ms`, async () => {
    const rev = await storeRevision(etcd);
    if (rev !== last) {
      last = rev;
      since = performance.now();
      return notYet({ revision: rev });
    }
    return performance.now() - since >= quietMs
      ? rev
      : notYet({ revision: rev });
  }, { timeoutMs: 15_000, intervalMs: 200 });
}

/** Milliseconds since `t0` (from performance.now()), rounded. */
export function since(t0: number): number {
  return Math.round(performance.now() - t0);
}
