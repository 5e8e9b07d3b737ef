/** Test helpers: following a LocalPool Spawn and reading its events. */
import assert from "node:assert/strict";
import type { LocalPool } from "./local_pool.ts";
import type { SpawnRequest, WorkerEvent } from "./contracts.ts";
import { spawnRequest } from "./test_spawn_request.ts";

/** Follows a Spawn: the pid as soon as it starts, all events at the end. */
export function follow(it: AsyncIterable<WorkerEvent>) {
  let started!: (pid: number) => void;
  const pid = new Promise<number>((r) => started = r);
  const events = (async () => {
    const out: WorkerEvent[] = [];
    for await (const ev of it) {
      if ("started" in ev) started(ev.started.pid);
      out.push(ev);
    }
    return out;
  })();
  return { pid, events };
}

const dec = new TextDecoder();
/** All stdout of the events, as text. */
export const stdout = (evs: WorkerEvent[]) =>
  evs.map((e) => "stdout" in e ? dec.decode(e.stdout) : "").join("");
/** All stderr of the events, as text. */
export const stderr = (evs: WorkerEvent[]) =>
  evs.map((e) => "stderr" in e ? dec.decode(e.stderr) : "").join("");
/** The exit that ends the events. */
export const exitOf = (evs: WorkerEvent[]) => {
  const last = evs.at(-1)!;
  assert.ok("exit" in last, "the stream ends with exit");
  return last.exit;
};

/** Runs one Spawn of `over` to its exit. */
export async function run(pool: LocalPool, over: Partial<SpawnRequest>) {
  return await follow(pool.spawn(spawnRequest(over))).events;
}
