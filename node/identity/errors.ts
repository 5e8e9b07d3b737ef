/** The refusals of the identity paths, each with the HTTP status a node answers it with. */

/** Why an init, mint, grant or join was refused; `message` is one line for the operator. */
export class IdentityError extends Error {
  constructor(
    readonly code:
      | "PermissionDenied"
      | "AlreadyInitialized"
      | "NotInitialized"
      | "InvalidArgument"
      | "JoinRefused"
      | "NoCaKey",
    message: string,
  ) {
    super(message);
  }

  /** The HTTP status of this refusal. */
  get status(): number {
    const byCode: Record<IdentityError["code"], number> = {
      PermissionDenied: 403,
      JoinRefused: 403,
      AlreadyInitialized: 409,
      InvalidArgument: 400,
      NotInitialized: 412,
      NoCaKey: 412,
    };
    return byCode[this.code];
  }
}
