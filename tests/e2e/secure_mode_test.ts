/**
 * Issue 13 tests 5–7: a secure cluster (etcd with client-certificate auth,
 * nodes and CLI on cluster-signed certificates). Without a certificate
 * nobody reads or writes etcd or calls a node's `/internal/*`; with one,
 * nodes, CLI, tail and the dashboard work; plugins see no endpoint, PEM or
 * key; a restarted node rejoins with its stored certificate.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Etcd3 } from "etcd3";
import {
  cli,
  descendants,
  makeTempDir,
  notYet,
  readEnvelope,
  REPO_ROOT,
  startNode,
  startSecureEtcd,
  waitFor,
} from "../harness/mod.ts";
import { createCa, issueKeyAndCert } from "../../node/identity/ca.ts";
import { dispatchTo } from "./secure_dispatch.ts";
import { adminNode, joiner, mint } from "./secure_util.ts";

Deno.test("secure mode: only cluster certificates reach etcd and /internal/*; everything else still works", async () => {
  const aDir = await makeTempDir("boi-sec-a-");
  const a = adminNode("sec-a", { dataDir: aDir });
  const secure = await startSecureEtcd(a, { dataDirPrefix: "boi-etcd-sec-" });
  await using etcd = secure.etcd;
  const { certs } = secure;
  assert.ok(secure.init.etcd_flags.includes("--client-cert-auth"));
  const pem = async (f: string) => await Deno.readTextFile(`${certs}/${f}`);
  assert.match(etcd.endpoint, /^https:\/\/localhost:\d+$/);
  await using nodeA = await startNode(etcd, a);
  const withCerts = ["--certs", certs];
  const token = await mint(etcd, nodeA, [
    "--caps",
    "x-test-pool=secure",
    ...withCerts,
  ]);
  await using nodeB = await joiner(etcd, "sec-b", token, a.joinPort, {
    caps: "x-test-pool=secure",
    env: { BOI_ETCD_ENDPOINTS: "" }, // from the join answer
  });

  // Works with certificates: dispatch, the task runs on the joined node, tail, nodes, status.
  const { task_ids: [id] } = await dispatchTo(
    etcd,
    `name: sec\ntasks:\n  - id: t\n    run: "echo secure-hello"\n    requires: { x-test-pool: secure }\n`,
    withCerts,
  );
  const done = await waitFor(`${id} DONE`, async () => {
    const e = await readEnvelope(etcd, id);
    return e?.value.state === "DONE" ? e.value : notYet(e?.value.state);
  });
  assert.equal(done.ran_on, "sec-b");
  const tail = await cli(etcd, ["tail", id, ...withCerts]);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, "secure-hello\n");
  // Node to node: node A forwards a tail of sec-b's log over https with its own certificate.
  const cliClient = Deno.createHttpClient({
    caCerts: [await pem("ca.crt")],
    cert: await pem("client.crt"),
    key: await pem("client.key"),
  });
  const fwd = await fetch(`https://${nodeA.httpAddr}/internal/tail/${id}`, {
    client: cliClient,
  });
  assert.equal(await fwd.text(), "secure-hello\n", "tail forwarded by sec-a");
  assert.equal(fwd.status, 200);
  cliClient.close();
  for (
    const args of [
      ["plugin", "restart", "pool", "--node", "sec-b"],
      ["logs", "sweep"],
      ["cluster", "status"],
    ]
  ) {
    const r = await cli(etcd, [...args, ...withCerts]);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  const nodes = await cli(etcd, ["nodes", "--json", ...withCerts]);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.deepEqual(
    JSON.parse(nodes.stdout).map((n: { node_id: string }) => n.node_id).sort(),
    ["sec-a", "sec-b"],
  );
  const caPem = await pem("ca.crt");
  const verifyOnly = Deno.createHttpClient({ caCerts: [caPem] });
  const st = await fetch(`https://${nodeB.httpAddr}/api/state`, {
    client: verifyOnly,
  });
  assert.equal(
    st.status,
    200,
    "the read-only dashboard API answers over https",
  );
  await st.body?.cancel();

  // Without a cluster certificate: no etcd...
  const r = await cli(etcd, ["nodes"]);
  assert.notEqual(r.code, 0, `CLI without certificates: ${r.stdout}`);
  const other = (await createCa("other")).ca;
  const stranger = await issueKeyAndCert(other, {
    cn: "stranger",
    dns: ["stranger"],
    server: false,
    client: true,
  });
  for (
    const [what, creds] of [
      ["no client certificate", { rootCertificate: Buffer.from(caPem) }],
      ["another CA's certificate", {
        rootCertificate: Buffer.from(caPem),
        certChain: Buffer.from(stranger.cert_pem),
        privateKey: Buffer.from(stranger.key_pem),
      }],
    ] as const
  ) {
    const c = new Etcd3({
      hosts: etcd.endpoint,
      credentials: creds,
      dialTimeout: 2000,
    });
    try {
      await assert.rejects(
        c.get("/boi/cluster/ca").string(),
        `${what}: etcd read must fail`,
      );
      await assert.rejects(
        c.put("/boi/x").value("1").exec(),
        `${what}: etcd write must fail`,
      );
    } finally {
      c.close();
    }
  }
  // ...and no /internal/* (nor any mutating call) on any node.
  const strangerClient = Deno.createHttpClient({
    caCerts: [caPem],
    cert: stranger.cert_pem,
    key: stranger.key_pem,
  });
  for (const n of [nodeA, nodeB]) {
    for (const client of [verifyOnly, strangerClient]) {
      for (
        const [method, path] of [
          ["GET", `/internal/tail/${id}`],
          ["POST", "/internal/plugins/pool/restart"],
          ["POST", "/internal/tokens"],
          ["POST", "/internal/cluster/admins/sec-b/grant"],
          ["POST", "/internal/logs/sweep"],
          ["GET", "/internal/view"],
        ]
      ) {
        const res = await fetch(`https://${n.httpAddr}${path}`, {
          method,
          client,
        });
        const body = await res.text();
        assert.equal(
          res.status,
          403,
          `${method} ${path} on ${n.nodeId}, client ${
            client === verifyOnly ? "without" : "with another CA's"
          } certificate: ${body}`,
        );
      }
    }
    // Plain HTTP is not served at all.
    await assert.rejects(fetch(`http://${n.httpAddr}/internal/view`));
  }
  verifyOnly.close();
  strangerClient.close();

  // Test 6: plugins see no endpoint, PEM or key path, and cannot read the key files.
  const etcdPort = new URL(etcd.endpoint).port;
  for (const n of [nodeA, nodeB]) {
    const pids = await descendants(n.pid);
    assert.ok(pids.length >= 2, `plugins of ${n.nodeId}: ${pids}`);
    for (const pid of pids) {
      const environ = await Deno.readTextFile(`/proc/${pid}/environ`).catch(
        () => "",
      );
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(
        () => "",
      );
      for (const [where, text] of [["env", environ], ["argv", cmdline]]) {
        for (
          const bad of [
            `:${etcdPort}`,
            "BOI_ETCD",
            "BEGIN",
            ".key",
            ".crt",
            certs,
            "BOI_JOIN_TOKEN",
          ]
        ) {
          assert.ok(
            !text.includes(bad),
            `plugin pid ${pid} of ${n.nodeId}: ${where} contains ${bad}: ${
              text.replaceAll("\0", " ").slice(0, 400)
            }`,
          );
        }
      }
      if (cmdline.includes("-P=plugin")) {
        // Same permissions, a probe script instead of the plugin.
        const argv = cmdline.split("\0").filter((s) => s !== "");
        const script = argv.findIndex((s) => s.endsWith(".ts"));
        const probe = await makeTempDir("boi-probe-");
        // The plugin reads its own dir only (its first --allow-read entry).
        const own = argv.find((s) => s.startsWith("--allow-read="))!
          .slice("--allow-read=".length).split(",")[0];
        await Deno.mkdir(own, { recursive: true });
        await Deno.writeTextFile(`${own}/control.txt`, "x");
        await Deno.writeTextFile(`${n.dataDir}/control.txt`, "x");
        await Deno.writeTextFile(
          `${probe}/probe.ts`,
          `for (const f of Deno.args) { try { await Deno.readTextFile(f); console.log("READ " + f); } catch (e) { console.log((e instanceof Deno.errors.NotCapable ? "DENIED " : "ERROR ") + f); } }`,
        );
        const out = await new Deno.Command(argv[0], {
          args: [
            ...argv.slice(1, script),
            `--config=${REPO_ROOT}/deno.json`, // found from the script's folder otherwise
            `${probe}/probe.ts`,
            `${own}/control.txt`, // control: its own dir stays readable
            `${n.dataDir}/control.txt`, // the rest of the node's data dir is not
            `${n.dataDir}/identity/node.key`,
            `${n.dataDir}/identity/ca.crt`,
            ...(n === nodeA ? [`${n.dataDir}/ca/ca.key`] : []),
          ],
          cwd: Deno.cwd(),
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        const lines = text.trim().split("\n");
        assert.ok(
          lines.length >= 3 &&
            lines.slice(1).every((l) => l.startsWith("DENIED ")),
          `plugin permissions allow: ${text}`,
        );
        assert.match(
          lines[0],
          /^READ /,
          `probe: ${argv.slice(1, script).join(" ")}\n${
            new TextDecoder().decode(out.stderr)
          }`,
        );
      }
    }
  }

  // Test 7: a restart rejoins with the stored certificate, no token.
  assert.equal(
    (await etcd.client().getAll().prefix("/boi/join-tokens/").keys()).length,
    0,
  );
  await nodeB.restart();
  await nodeB.waitForLog((l) =>
    String(l.msg).startsWith("stored certificate found")
  );
  const again = await dispatchTo(
    etcd,
    `name: sec2\ntasks:\n  - id: t\n    run: "true"\n    requires: { x-test-pool: secure }\n`,
    withCerts,
  );
  const done2 = await waitFor("task after restart DONE", async () => {
    const e = await readEnvelope(etcd, again.task_ids[0]);
    return e?.value.state === "DONE" ? e.value : notYet(e?.value.state);
  });
  assert.equal(done2.ran_on, "sec-b");
});
