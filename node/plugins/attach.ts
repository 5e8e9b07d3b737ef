/**
 * Attach mode (SPEC §7 "Attach"): the plugin is a sidecar someone else
 * started (e.g. another container sharing a volume) serving a socket. Core
 * does not spawn it and holds no stdin lifeline; it waits for the socket to
 * accept, and finds out the sidecar went away from its probes: nothing
 * accepting (UNAVAILABLE), the socket file gone, or replaced by a new one (a
 * restarted sidecar, whose handshake core must see). Each of those is a crash
 * under the same budget; the sidecar's own restarts are its supervisor's
 * business.
 * @module
 */
import { status } from "@grpc/grpc-js";
import type { PluginKind } from "../../proto/mod.ts";
import { PluginCallError, PluginConnection } from "../exec/grpc_client.ts";
import type { PluginEndpoint } from "./plugin_process.ts";
import type { StopResult } from "./supervisor_types.ts";

/** Identity of a socket file: a restarted sidecar binds a new inode. */
async function socketId(path: string): Promise<string | null> {
  try {
    const st = await Deno.stat(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** A socket served by someone else; see the module doc. */
export class AttachedPlugin implements PluginEndpoint {
  readonly pid = null;
  readonly hasEnded = false;
  /** Never: there is no process of ours to exit. */
  readonly ended: Promise<string> = new Promise(() => {});
  readonly ready: Promise<string | null>;
  readonly readyDetail: string;
  #probe: PluginConnection | null;
  #id: string | null = null;

  constructor(
    readonly n: number,
    readonly kind: PluginKind,
    readonly socket: string,
    ready_timeout_ms: number,
  ) {
    this.readyDetail = `nothing accepted connections on ${socket}`;
    // Waits past the ready timeout on purpose: bringUp's timer decides.
    const probe = new PluginConnection(kind, socket);
    this.#probe = probe;
    this.ready = probe.waitForReady(ready_timeout_ms + 1000).then(
      async () => {
        this.#id = await socketId(socket);
        return null;
      },
      (e: Error) => `attach: ${e.message}`,
    ).finally(() => this.#closeProbe());
  }

  async gone(): Promise<string | null> {
    const id = await socketId(this.socket);
    if (id === null) return `socket gone: ${this.socket}`;
    if (this.#id !== null && id !== this.#id) {
      return `socket replaced (the sidecar restarted): ${this.socket}`;
    }
    return null;
  }

  lost(error: Error): boolean {
    return error instanceof PluginCallError &&
      error.code === status.UNAVAILABLE;
  }

  /** Lets go of the socket; the sidecar keeps running. */
  terminate(): Promise<StopResult> {
    this.#closeProbe();
    return Promise.resolve({ forced: false, code: null, signal: null });
  }

  #closeProbe(): void {
    this.#probe?.close();
    this.#probe = null;
  }
}
