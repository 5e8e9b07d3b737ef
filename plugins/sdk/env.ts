/**
 * What the supervisor hands a plugin through its environment (SPEC §7).
 * Plugins read these instead of guessing paths: they never see etcd.
 * @module
 */
import { parseLevel, PluginLogger } from "./log.ts";

/** The plugin's identity and places, from `BOI_PLUGIN_*`. */
export interface PluginEnv {
  /** `<name>-<node_id>-<incarnation>`; empty when run by hand. */
  id: string;
  /** Kind the core expects; empty when run by hand. */
  kind: string;
  /** Unix socket to serve on. */
  socket: string;
  /** A directory the plugin may keep state in; defaults to the socket's directory. */
  data_dir: string;
}

/** Reads {@linkcode PluginEnv}; throws if `BOI_PLUGIN_SOCKET` is missing. */
export function pluginEnv(): PluginEnv {
  const socket = Deno.env.get("BOI_PLUGIN_SOCKET") ?? "";
  if (socket === "") {
    throw new Error(
      "BOI_PLUGIN_SOCKET is not set: plugins are started by the node's supervisor (or `boi plugin test`)",
    );
  }
  const slash = socket.lastIndexOf("/");
  const socketDir = slash > 0 ? socket.slice(0, slash) : ".";
  return {
    id: Deno.env.get("BOI_PLUGIN_ID") ?? "",
    kind: Deno.env.get("BOI_PLUGIN_KIND") ?? "",
    socket,
    data_dir: Deno.env.get("BOI_PLUGIN_DATA_DIR") || socketDir,
  };
}

/** A logger for a plugin's own lines outside calls, at `BOI_LOG_LEVEL`. */
export function pluginLogger(name: string): PluginLogger {
  const id = Deno.env.get("BOI_PLUGIN_ID");
  return new PluginLogger(
    { plugin: name, ...(id ? { plugin_id: id } : {}) },
    parseLevel(Deno.env.get("BOI_LOG_LEVEL")),
  );
}
