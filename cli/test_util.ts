/** Fixtures shared by the CLI unit tests. */
import type { Envelope } from "../node/schema.ts";
import { testEnvelope } from "../node/test_envelope.ts";

/** A PENDING envelope with overrides, for tests. */
export function envelope(over: Partial<Envelope> = {}): Envelope {
  return testEnvelope("s-aaaaaa.t", over);
}
