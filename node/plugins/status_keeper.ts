/**
 * A supervisor's status: state changes logged once, reported to `onState`,
 * and waited on (`until`) by start/restart/connection callers.
 * @module
 */
import type {
  PluginState,
  PluginStatus,
  SupervisorLog,
} from "./supervisor_types.ts";

/** States that end a launch attempt. */
const SETTLED: ReadonlySet<PluginState> = new Set([
  "ready",
  "start_failed",
  "refused",
  "unstable",
  "stopped",
]);

/** Holds one plugin's status and wakes whoever waits on it. */
export class StatusKeeper {
  /** The live status; the supervisor writes its fields, `set` its state. */
  readonly status: PluginStatus;
  /** Attempts that reached an outcome (ready, start_failed, refused, unstable, stopped). */
  settled = 0;
  readonly #waiters = new Set<() => void>();

  constructor(
    initial: PluginStatus,
    readonly log: SupervisorLog,
    readonly onState?: (status: PluginStatus) => void | Promise<void>,
  ) {
    this.status = initial;
  }

  /** A copy, safe to hand out. */
  snapshot(): PluginStatus {
    return structuredClone(this.status);
  }

  /** Enters a state (a no-op when neither state nor reason changed). */
  set(state: PluginState, reason: string | null): void {
    const s = this.status;
    const changed = s.state !== state || s.reason !== reason;
    s.state = state;
    s.reason = reason;
    if (!changed) return;
    s.since = Date.now();
    if (SETTLED.has(state)) this.settled++;
    this.log.log(
      state === "ready" || state === "starting" || state === "stopping" ||
        state === "stopped"
        ? "info"
        : "warn",
      `plugin ${state}`,
      {
        plugin: s.name,
        kind: s.kind,
        incarnation: s.incarnation,
        reason,
        crashes: s.crashes.length,
      },
    );
    const snapshot = this.snapshot();
    this.callback("onState", () => this.onState?.(snapshot));
    for (const w of this.#waiters) w();
  }

  /** Runs a user callback; its failure is logged, never thrown into the loop. */
  callback(what: string, fn: () => void | Promise<void>): void {
    const fail = (e: unknown) =>
      this.log.log("error", `${what} callback failed`, {
        plugin: this.status.name,
        error: (e as Error).message,
      });
    try {
      Promise.resolve(fn()).catch(fail);
    } catch (e) {
      fail(e);
    }
  }

  /** Resolves once `pred` holds, checked now and after every state change. */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => {
      const w = () => {
        if (pred()) {
          this.#waiters.delete(w);
          resolve();
        }
      };
      this.#waiters.add(w);
    });
  }
}
