/** The mock's fault settings (SPEC §7) under bad input: one line naming the variable, the rule and the value. */
import assert from "node:assert/strict";
import { mockFaults } from "./mock.ts";

const env = (vars: Record<string, string>) => (k: string) => vars[k];

function message(vars: Record<string, string>): string {
  try {
    mockFaults("pool", env(vars));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(vars)}`);
}

Deno.test("mock faults: bad values are one line with the variable, the rule and the quoted value", () => {
  assert.equal(
    message({ BOI_MOCK_CRASH_AFTER: "three" }),
    'BOI_MOCK_CRASH_AFTER must be a non-negative integer: got "three"',
  );
  assert.equal(
    message({ BOI_MOCK_PROVISION_ARGV: "[deno" }),
    'BOI_MOCK_PROVISION_ARGV must be a JSON array of strings like ["deno","task","node"]: got "[deno"',
  );
  assert.equal(
    message({ BOI_MOCK_PROVISION_ARGV: "[1]" }),
    'BOI_MOCK_PROVISION_ARGV must be a JSON array of strings like ["deno","task","node"]: got "[1]"',
  );
  assert.equal(
    message({ BOI_MOCK_HANG: "Spawn,Bogus" }),
    'BOI_MOCK_HANG must be 1 or a list of Handshake, Health, Spawn, Kill: got "Bogus"',
  );
  assert.deepEqual(
    [...mockFaults("pool", env({ BOI_MOCK_HANG: "Handshake, Spawn" })).hang],
    ["Handshake", "Spawn"],
  );
});
