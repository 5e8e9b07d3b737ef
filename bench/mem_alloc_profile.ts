/**
 * V8's sampling heap profiler over the inspector (CDP), for bench/mem_probe.ts:
 * what a node allocates during a run, collected objects included, by the
 * function that allocated it. A probe only; not part of the bench table.
 * @module
 */

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Connects to a node started with `--inspect=127.0.0.1:<port>` and starts sampling. */
export async function startAllocProfile(
  port: number,
): Promise<() => Promise<string[]>> {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let id = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  };
  const call = (method: string, params: unknown = {}) =>
    new Promise<unknown>((r) => {
      waiting.set(++id, r);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("HeapProfiler.enable");
  await call("HeapProfiler.startSampling", {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const r = await call("HeapProfiler.stopSampling") as {
      profile: { head: ProfileNode };
    };
    ws.close();
    const self = new Map<string, number>();
    const total = new Map<string, number>();
    let all = 0;
    const walk = (n: ProfileNode, stack: string[]) => {
      const f = n.callFrame;
      const key = `${f.functionName || "(anon)"} ${
        f.url.replace(/^.*\/(node|plugins|tests|bench)\//, "$1/").replace(
          /^.*registry.npmjs.org\//,
          "npm:",
        )
      }:${f.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + n.selfSize);
      all += n.selfSize;
      const s = stack.includes(key) ? stack : [...stack, key];
      if (!stack.includes(key)) total.set(key, (total.get(key) ?? 0) + sub(n));
      for (const c of n.children) walk(c, s);
    };
    const memo = new Map<ProfileNode, number>();
    const sub = (n: ProfileNode): number => {
      let v = memo.get(n);
      if (v === undefined) {
        v = n.selfSize + n.children.reduce((a, c) => a + sub(c), 0);
        memo.set(n, v);
      }
      return v;
    };
    walk(r.profile.head, []);
    const fmt = (m: Map<string, number>) =>
      [...m].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([k, v]) =>
        `${(v / 1048576).toFixed(1).padStart(7)} MiB ${k}`
      );
    return [
      `allocated ${(all / 1048576).toFixed(1)} MiB in all`,
      "-- self:",
      ...fmt(self),
      "-- total (inclusive):",
      ...fmt(total),
    ];
  };
}
