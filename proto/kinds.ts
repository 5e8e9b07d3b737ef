/** The plugin kinds, without the gRPC machinery: cheap to import (the CLI does at start-up). */

/** The five plugin kinds; a node runs at most one of each. */
export const PLUGIN_KINDS = [
  "workspace",
  "pool",
  "router",
  "provisioner",
  "hooks",
] as const;

/** One of {@linkcode PLUGIN_KINDS}. */
export type PluginKind = typeof PLUGIN_KINDS[number];

/** True if `s` names a plugin kind. */
export function isPluginKind(s: string): s is PluginKind {
  return (PLUGIN_KINDS as readonly string[]).includes(s);
}
