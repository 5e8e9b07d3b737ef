import assert from "node:assert/strict";
import {
  caPaths,
  createCa,
  issueKeyAndCert,
  loadCa,
  signedBy,
  stageCaKey,
} from "./ca.ts";
import { fingerprint, x509 } from "./x509.ts";

Deno.test("ca: leaf certificates carry the SANs and usages asked for, and verify only against their CA", async () => {
  const { ca } = await createCa("t");
  const other = (await createCa("o")).ca;
  const leaf = await issueKeyAndCert(ca, {
    cn: "node-1",
    dns: ["node-1", "localhost"],
    ips: ["127.0.0.1"],
    server: true,
    client: true,
  });
  const cert = new x509.X509Certificate(leaf.cert_pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
  assert.deepEqual(san.names.toJSON().map((n) => n.value).sort(), [
    "127.0.0.1",
    "localhost",
    "node-1",
  ]);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
  assert.deepEqual(
    [...eku.usages].sort(),
    [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth].sort(),
  );
  assert.equal(await signedBy(leaf.cert_pem, ca.cert_pem), true);
  assert.equal(await signedBy(leaf.cert_pem, other.cert_pem), false);
  assert.equal(await signedBy("garbage", ca.cert_pem), false);
  assert.match(await fingerprint(ca.cert_pem), /^[0-9a-f]{64}$/);
});

Deno.test("ca: the key is staged 0600, committed by rename, never overwritten, and loads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { ca, key_pem } = await createCa("t");
    const staged = await stageCaKey(dir, key_pem);
    assert.equal(await loadCa(dir), null, "not committed yet");
    await staged.commit(ca.cert_pem);
    const st = await Deno.stat(caPaths(dir).key);
    assert.equal(st.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(caPaths(dir).dir)).mode! & 0o777, 0o700);
    assert.equal((await loadCa(dir))?.fingerprint, ca.fingerprint);
    await assert.rejects(stageCaKey(dir, key_pem), /already holds a CA key/);
    const aborted = await Deno.makeTempDir();
    const s2 = await stageCaKey(aborted, key_pem);
    await s2.abort();
    assert.deepEqual([...Deno.readDirSync(`${aborted}/ca`)], []);
    await Deno.remove(aborted, { recursive: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
