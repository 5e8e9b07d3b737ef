/** Errors a plugin handler throws to answer with a specific gRPC status. */

/** gRPC status names a handler may answer with. */
export type PluginErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "RESOURCE_EXHAUSTED"
  | "UNAVAILABLE"
  | "UNIMPLEMENTED"
  | "INTERNAL";

/**
 * Thrown from a handler: the call fails with `code` and the message. Any
 * other error fails it with INTERNAL.
 */
export class PluginError extends Error {
  constructor(readonly code: PluginErrorCode, message: string) {
    super(message);
    this.name = "PluginError";
  }
}
