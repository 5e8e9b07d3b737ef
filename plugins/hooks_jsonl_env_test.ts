/** The reference hooks plugin's settings (SPEC §7 Hooks reference): checked at start, one line each. */
import assert from "node:assert/strict";
import { hooksSinksFromEnv } from "./hooks_jsonl.ts";

const from = (vars: Record<string, string>) =>
  hooksSinksFromEnv((k) => vars[k], "/data");

function message(vars: Record<string, string>): string {
  try {
    from(vars);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(vars)}`);
}

Deno.test("hooks_jsonl settings: defaults and a webhook", () => {
  assert.deepEqual(from({}), {
    file: "/data/events.jsonl",
    webhook_url: null,
    webhook_timeout_ms: 5000,
  });
  assert.deepEqual(
    from({
      BOI_HOOKS_WEBHOOK_URL: "http://127.0.0.1:9/hook",
      BOI_HOOKS_WEBHOOK_TIMEOUT_MS: "250",
    }),
    {
      file: null,
      webhook_url: "http://127.0.0.1:9/hook",
      webhook_timeout_ms: 250,
    },
  );
});

Deno.test("hooks_jsonl settings: bad values name the variable, the rule and the value", () => {
  assert.equal(
    message({ BOI_HOOKS_WEBHOOK_URL: "not a url" }),
    'BOI_HOOKS_WEBHOOK_URL must be an http:// or https:// URL: got "not a url"',
  );
  assert.equal(
    message({ BOI_HOOKS_WEBHOOK_URL: "ftp://x/y" }),
    'BOI_HOOKS_WEBHOOK_URL must be an http:// or https:// URL: got "ftp://x/y"',
  );
  assert.equal(
    message({ BOI_HOOKS_WEBHOOK_TIMEOUT_MS: "soon" }),
    'BOI_HOOKS_WEBHOOK_TIMEOUT_MS must be a positive whole number of milliseconds: got "soon"',
  );
  assert.equal(
    message({ BOI_HOOKS_WEBHOOK_TIMEOUT_MS: "0" }),
    'BOI_HOOKS_WEBHOOK_TIMEOUT_MS must be a positive whole number of milliseconds: got "0"',
  );
});
