import assert from "node:assert/strict";
import {
  capabilityError,
  MAX_CAP_VALUE_BYTES,
  parseCapsList,
  RESERVED_CAPS,
} from "./caps.ts";

Deno.test("capabilityError accepts reserved and user keys", () => {
  assert.deepEqual([...RESERVED_CAPS], [
    "os",
    "arch",
    "region",
    "runtime",
    "cluster_admin",
  ]);
  for (
    const [k, v] of [
      ["os", "linux"],
      ["os", "darwin"],
      ["os", "windows"],
      ["arch", "x86_64"],
      ["arch", "arm64"],
      ["region", "eu-west-1"],
      ["runtime", "deno-2.9"],
      ["cluster_admin", "true"],
      ["x-acme-gpu", "a100"],
      ["x-acme-gpu-model", "a100"],
      ["X-Acme-GPU", "yes"],
      ["x-a-b", "ü".repeat(MAX_CAP_VALUE_BYTES / 2)],
    ]
  ) {
    assert.equal(capabilityError(k, v), null, `${k}=${v}`);
  }
});

Deno.test("capabilityError rejects bad keys with the reason", () => {
  assert.equal(
    capabilityError("gpu", "a100"),
    'capability key must be one of os, arch, region, runtime, cluster_admin or match x-<vendor>-<tag>: got "gpu"',
  );
  for (
    const k of [
      "",
      "x-",
      "x-acme",
      "x-acme-",
      "x--gpu",
      "x-acme--gpu",
      "x-ac me-gpu",
      "y-acme-gpu",
      "OS",
      "x-acme-gpu\n",
      "__proto__",
    ]
  ) {
    assert.match(
      capabilityError(k, "v") ?? "",
      /^capability key must be/,
      JSON.stringify(k),
    );
  }
});

Deno.test("capabilityError rejects bad values", () => {
  assert.equal(
    capabilityError("os", "freebsd"),
    'capability os must be one of linux, darwin, windows: got "freebsd"',
  );
  assert.match(capabilityError("arch", "amd64") ?? "", /x86_64, arm64/);
  assert.match(capabilityError("cluster_admin", "yes") ?? "", /true, false/);
  assert.match(capabilityError("region", "") ?? "", /must not be empty/);
  assert.match(
    capabilityError("x-a-b", "ü".repeat(129)) ?? "",
    /at most 256 bytes of UTF-8: got 258 bytes/,
  );
});

Deno.test("parseCapsList parses k=v lists", () => {
  assert.deepEqual(parseCapsList("", "BOI_CAPS"), {});
  assert.deepEqual(parseCapsList(" , ", "BOI_CAPS"), {});
  assert.deepEqual(
    parseCapsList(
      "region=eu, x-acme-gpu=a100,x-acme-url=a=b,",
      "BOI_CAPS",
    ),
    { region: "eu", "x-acme-gpu": "a100", "x-acme-url": "a=b" },
  );
});

Deno.test("parseCapsList errors name the source and the entry", () => {
  assert.throws(
    () => parseCapsList("gpu=a100", "BOI_CAPS"),
    {
      message:
        'BOI_CAPS: capability key must be one of os, arch, region, runtime, cluster_admin or match x-<vendor>-<tag>: got "gpu"',
    },
  );
  assert.throws(
    () => parseCapsList("cluster_admin=true", "BOI_CAPS"),
    /^Error: BOI_CAPS: cluster_admin is never self-declared/,
  );
  assert.throws(
    () => parseCapsList("region", "boi.yaml caps"),
    {
      message:
        'boi.yaml caps: capability must look like key=value: got "region"',
    },
  );
  assert.throws(
    () => parseCapsList("os=plan9", "BOI_CAPS"),
    /^Error: BOI_CAPS: capability os must be one of/,
  );
  assert.throws(
    () => parseCapsList("region=a,region=b", "BOI_CAPS"),
    { message: 'BOI_CAPS: capability region is given twice: got "a" and "b"' },
  );
  assert.throws(
    () => parseCapsList("region=", "BOI_CAPS"),
    { message: "BOI_CAPS: capability region must not be empty" },
  );
});
