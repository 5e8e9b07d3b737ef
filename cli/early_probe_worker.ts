/**
 * The worker side of `early_probe.ts`: asks every endpoint's HTTP gateway for
 * a serializable count of one key and posts one verdict. It runs on its own
 * thread, so the probe progresses (and its deadline is measured) while the
 * main thread is busy loading the CLI.
 */
import { type EarlyVerdict, probeAll } from "./early_probe_lib.ts";

interface Job {
  endpoints: string[];
  timeoutMs: number;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(v: EarlyVerdict): void;
  close(): void;
};

scope.onmessage = async (e) => {
  scope.postMessage(await probeAll(e.data.endpoints, e.data.timeoutMs));
  scope.close();
};
