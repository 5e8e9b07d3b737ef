/**
 * The node's own records in etcd besides registration: the caps record
 * (busy/max, health, drain state: at most once a second, only when changed)
 * and one record per plugin, each kept by a {@linkcode CasPublisher} under
 * the node lease. What the caps say is the core's `capsRecord`.
 */
import type { Keys } from "../keys.ts";
import type { CapsRecord } from "../schema.ts";
import type { CasPort } from "./cas_publisher.ts";
import { CasPublisher } from "./cas_publisher.ts";
import type { PluginRecord } from "./plugin_host.ts";

export class NodeRecords {
  readonly #caps: CasPublisher;
  readonly #plugins = new Map<
    string,
    { record: PluginRecord; pub: CasPublisher }
  >();

  constructor(
    readonly port: CasPort,
    readonly keys: Keys,
    readonly node_id: string,
  ) {
    this.#caps = new CasPublisher(port, keys.caps(node_id));
  }

  /** Registration wrote the caps record; every plugin record went with any earlier lease. */
  registered(revision: number, caps: string): void {
    this.#caps.reset(revision, caps);
    for (const p of this.#plugins.values()) p.pub.reset(0, null);
  }

  publishCaps(caps: CapsRecord, lease: string): void {
    this.#caps.publish(JSON.stringify(caps), lease);
  }

  /** Remembers a plugin's latest record; returns the one before. */
  setPlugin(name: string, record: PluginRecord): PluginRecord | undefined {
    const p = this.#plugins.get(name);
    if (p) {
      const prev = p.record;
      p.record = record;
      return prev;
    }
    this.#plugins.set(name, {
      record,
      pub: new CasPublisher(this.port, this.keys.plugin(this.node_id, name)),
    });
    return undefined;
  }

  publishPlugins(lease: string): void {
    for (const p of this.#plugins.values()) {
      p.pub.publish(JSON.stringify(p.record), lease);
    }
  }
}
