import assert from "node:assert/strict";
import {
  advertisedNames,
  type CertNames,
  certNamesOf,
  joinRequestNames,
  MAX_REQUESTED_NAMES,
  missingNames,
  requestedNames,
  sanExtension,
  unnamedHosts,
} from "./cert_names.ts";
import { createCa, issueKeyAndCert } from "./ca.ts";
import { generateKeyPair, SIGN_ALG, x509 } from "./x509.ts";

async function csrAsking(
  items: x509.JsonGeneralName[] | null,
): Promise<x509.Pkcs10CertificateRequest> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=n1",
    keys: await generateKeyPair(),
    signingAlgorithm: SIGN_ALG,
    extensions: items === null
      ? []
      : [new x509.SubjectAlternativeNameExtension(items)],
  });
  return new x509.Pkcs10CertificateRequest(csr.toString("pem"));
}

Deno.test("advertisedNames: the host of BOI_HTTP_ADDR and BOI_HTTP_HOSTS, never a bind-all address or *", () => {
  assert.deepEqual(advertisedNames("10.0.1.7", ["build-1.example.com"]), {
    dns: ["build-1.example.com"],
    ips: ["10.0.1.7"],
  });
  assert.deepEqual(advertisedNames("[::1]", ["*"]), { dns: [], ips: ["::1"] });
  assert.deepEqual(advertisedNames("0.0.0.0", []), { dns: [], ips: [] });
  assert.deepEqual(advertisedNames("[::]", []), { dns: [], ips: [] });
  assert.deepEqual(advertisedNames("Boi-A.Test", []), {
    dns: ["boi-a.test"],
    ips: [],
  });
});

Deno.test("requestedNames: a CSR's DNS and IP names, or a one-line reason naming the bad one", async () => {
  assert.deepEqual(requestedNames(await csrAsking(null)), { dns: [], ips: [] });
  const names: CertNames = { dns: ["b.example.com"], ips: ["10.0.0.9", "::1"] };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=n1",
    keys: await generateKeyPair(),
    signingAlgorithm: SIGN_ALG,
    extensions: [sanExtension(names)],
  });
  assert.deepEqual(
    requestedNames(new x509.Pkcs10CertificateRequest(csr.toString("pem"))),
    names,
  );
  const refusals: [x509.JsonGeneralName[], RegExp][] = [
    [
      [{ type: "dns", value: "*.example.com" }],
      /DNS name "\*\.example\.com".*no wildcards/,
    ],
    [[{ type: "dns", value: "a..b" }], /DNS name "a\.\.b"/],
    [[{ type: "ip", value: "0.0.0.0" }], /IP address "0\.0\.0\.0".*unicast/],
    [[{ type: "ip", value: "::" }], /IP address "::"/],
    [
      [{ type: "email", value: "x@y" }],
      /email name "x@y": only DNS names and IP addresses/,
    ],
    [[{ type: "url", value: "https://x" }], /url name/],
    [
      Array.from({ length: MAX_REQUESTED_NAMES + 1 }, (_, i) => ({
        type: "dns" as const,
        value: `n${i}.example.com`,
      })),
      /asks for 33 names; at most 32/,
    ],
  ];
  for (const [items, want] of refusals) {
    const got = requestedNames(await csrAsking(items));
    assert.equal(typeof got, "string", `${JSON.stringify(items)}: accepted`);
    assert.match(got as string, want);
  }
});

Deno.test("certNamesOf and missingNames: what a stored certificate lacks of the names it is reached by", async () => {
  const { ca } = await createCa("t");
  const leaf = await issueKeyAndCert(ca, {
    cn: "n1",
    dns: ["n1", "localhost"],
    ips: ["127.0.0.1", "::1"],
    server: true,
    client: true,
  });
  const have = certNamesOf(leaf.cert_pem);
  assert.deepEqual(have, {
    dns: ["n1", "localhost"],
    ips: ["127.0.0.1", "::1"],
  });
  assert.deepEqual(missingNames(have, advertisedNames("127.0.0.1", [])), []);
  assert.deepEqual(
    missingNames(have, advertisedNames("10.0.0.5", ["n1", "b.example"])),
    ["b.example", "10.0.0.5"],
  );
});

Deno.test("joinRequestNames: what a joiner asks for passes the admin's check, whatever its node id (review of 749f081: build_1 could not join)", async () => {
  const names = joinRequestNames("10.0.0.7", [
    ...Array.from({ length: 30 }, (_, i) => `h${i}.example.com`),
    "*",
  ]);
  assert.ok(names.ips.includes("10.0.0.7"));
  assert.ok(!names.dns.includes("localhost"), "the admin adds localhost");
  for (const n of names.dns) assert.doesNotMatch(n, /_/);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=build_1",
    keys: await generateKeyPair(),
    signingAlgorithm: SIGN_ALG,
    extensions: [sanExtension(names)],
  });
  const got = requestedNames(
    new x509.Pkcs10CertificateRequest(csr.toString("pem")),
  );
  assert.notEqual(typeof got, "string", String(got));
});

Deno.test("unnamedHosts: advertised hosts no certificate can carry, for a warning", () => {
  assert.deepEqual(
    unnamedHosts("my_host", ["fe80::1%eth0", "1.2.3", "ok.example", "*"]),
    ["my_host", "fe80::1%eth0", "1.2.3"],
  );
  assert.deepEqual(unnamedHosts("0.0.0.0", ["b.example"]), []);
});
