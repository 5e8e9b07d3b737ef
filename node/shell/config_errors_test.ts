/**
 * SPEC §13 + GUIDE "bad input": every config error is one line naming the
 * setting where it was given (variable or boi.yaml field), the rule and the
 * value seen — never a zod default message, never the wrong source.
 */
import assert from "node:assert/strict";
import { loadConfig } from "./config.ts";

const yaml = (text: string) => ({ path: "boi.yaml", text });

function message(
  env: Record<string, string>,
  file: { path: string; text: string } | null = null,
): string {
  try {
    loadConfig(env, file, "h");
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(env)} ${file?.text ?? ""}`);
}

Deno.test("config errors: numbers and enums say the rule in words, with the value", () => {
  assert.equal(
    message({ BOI_LEASE_TTL_S: "abc" }),
    'BOI_LEASE_TTL_S must be a whole number: got "abc"',
  );
  assert.equal(
    message({ BOI_WORKERS_MAX: "many" }),
    'BOI_WORKERS_MAX must be a whole number: got "many"',
  );
  assert.equal(
    message({}, yaml("lease_ttl_s: ten\n")),
    'boi.yaml: lease_ttl_s must be a whole number: got "ten"',
  );
  assert.equal(
    message({ BOI_LOG_LEVEL: "loud" }),
    'BOI_LOG_LEVEL must be one of debug, info, warn, error: got "loud"',
  );
});

Deno.test("config errors: a boi.yaml field is named as the field, not as the variable", () => {
  assert.equal(
    message({}, yaml("http_addr: nope\n")),
    'boi.yaml: http_addr must be host:port like "127.0.0.1:7001": got "nope"',
  );
  assert.equal(
    message({}, yaml("join_addr: nope\n")),
    'boi.yaml: join_addr must be host:port like "127.0.0.1:7400": got "nope"',
  );
  assert.match(message({}, yaml("caps: foo\n")), /^boi\.yaml: caps: /);
  assert.equal(
    message({ BOI_HTTP_ADDR: "nope" }),
    'BOI_HTTP_ADDR must be host:port like "127.0.0.1:7001": got "nope"',
  );
});

Deno.test("config errors: etcd endpoints name the variable", () => {
  assert.equal(
    message({ BOI_ETCD_ENDPOINTS: "foo bar" }),
    'BOI_ETCD_ENDPOINTS: etcd endpoint must look like "http://127.0.0.1:2379": got "foo bar"',
  );
  assert.match(
    message({}, yaml("etcd_endpoints: http://x\n")),
    /^boi\.yaml: etcd_endpoints: etcd endpoint must name a port/,
  );
});

Deno.test("config errors: an unknown boi.yaml field and a non-mapping file", () => {
  assert.equal(
    message({}, yaml("bogus: 1\n")),
    "boi.yaml: bogus: not a setting (fields are the BOI_* variable names without BOI_, lower-cased, e.g. lease_ttl_s)",
  );
  assert.equal(
    message({}, yaml("- a\n")),
    'boi.yaml: must be a mapping of settings like "lease_ttl_s: 10": got ["a"]',
  );
});

Deno.test("config errors: BOI_BOOTSTRAP_URL must be https://<host>:<port> (SPEC §10), checked at start", () => {
  for (const v of ["ftp://x", "http://127.0.0.1:7400", "localhost:7400"]) {
    assert.equal(
      message({ BOI_BOOTSTRAP_URL: v }),
      `BOI_BOOTSTRAP_URL must be https://<host>:<port>: got ${
        JSON.stringify(v)
      }`,
    );
  }
  assert.equal(
    loadConfig({ BOI_BOOTSTRAP_URL: "https://10.0.0.5:7400" }, null, "h")
      .bootstrap_url,
    "https://10.0.0.5:7400",
  );
});
