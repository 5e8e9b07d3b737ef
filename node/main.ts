/** `deno task node`: starts one boi node (SPEC §0, §13). */
import { connectEtcd } from "./etcd_client.ts";
import { loadConfig } from "./shell/config.ts";
import { flushLogs, Logger } from "./shell/log.ts";
import { ensureLocalEtcd } from "./shell/local_etcd.ts";
import { BoiNode } from "./shell/node.ts";
import { handleHttp } from "./shell/http.ts";
import { HttpFront, SocketPathError } from "./shell/http_front.ts";
import { AdminGate } from "./shell/admin_gate.ts";
import { Observability } from "./shell/observability.ts";
import { PluginHost } from "./shell/plugin_host.ts";
import { parsePluginsConfig } from "./plugins/config.ts";
import { checkPluginCommands } from "./plugins/command_check.ts";
import { Keys } from "./keys.ts";
import { VERSION } from "./version.ts";
import { boot } from "./identity/boot.ts";
import { serveHttps } from "./identity/https_server.ts";
import { nodeFetch } from "./identity/node_fetch.ts";
import { advertisedNames } from "./identity/cert_names.ts";
import { IdentityService } from "./identity/service.ts";
import { emit } from "./core/hook_events.ts";
import { mintToken } from "./identity/mint.ts";
import { hostNames, hostRefusal } from "./shell/host_guard.ts";
import { watchLifeline } from "./lifeline.ts";

async function readConfigFile(): Promise<
  { path: string; text: string } | null
> {
  const path = "boi.yaml";
  try {
    return { path, text: await Deno.readTextFile(path) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
}

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(
      Deno.env.toObject(),
      await readConfigFile(),
      Deno.hostname(),
    );
  } catch (e) {
    console.error(`boi node: ${(e as Error).message}`);
    return 2;
  }
  let plugins;
  try {
    const path = config.plugins_file;
    plugins = parsePluginsConfig(
      path === null ? null : { path, text: await Deno.readTextFile(path) },
    );
    await checkPluginCommands(plugins, path, config.data_dir);
  } catch (e) {
    const msg = e instanceof Deno.errors.NotFound
      ? `BOI_PLUGINS: no such file: ${config.plugins_file}`
      : (e as Error).message;
    console.error(`boi node: ${msg}`);
    return 2;
  }
  const log = new Logger({ node_id: config.node_id }, config.log_level);
  // Join before anything else: a refused join leaves nothing running.
  let sec;
  try {
    sec = await boot(config, log);
  } catch (e) {
    log.error("join failed", { error: (e as Error).message });
    console.error(`boi node: ${(e as Error).message}`);
    return 1;
  }
  // node/launch.ts's join step: joined, so the launcher can name etcd in the lock.
  if (Deno.env.get("BOI_LAUNCH_PHASE") === "join") return 0;
  const endpoints = sec.endpoints ?? [await ensureLocalEtcd(log)];
  try {
    await Deno.mkdir(`${config.data_dir}/logs`, { recursive: true });
  } catch (e) {
    console.error(
      `boi node: BOI_DATA_DIR: cannot make ${
        JSON.stringify(`${config.data_dir}/logs`)
      } for task logs: ${(e as Error).message.replace(/: mkdir '.*'$/, "")}`,
    );
    return 2;
  }

  let node: BoiNode | null = null;
  const obs = new Observability({ fetch: nodeFetch(sec.https) }); // tail forwarding: https with the node certificate when secure
  const gate = new AdminGate();
  const client = connectEtcd(
    endpoints,
    sec.etcdTls ? { tls: sec.etcdTls } : {},
  );
  const identity = new IdentityService({
    client,
    keys: new Keys(config.key_prefix),
    nodeId: config.node_id,
    dataDir: config.data_dir,
    etcdEndpoints: endpoints,
    log,
    joinHost: config.join_host,
    joinPort: config.join_port,
    httpNames: advertisedNames(config.http_host, config.http_hosts),
    emitMintDenied: (payload) => {
      log.info("event", { event: "cluster.mint_denied", ...payload });
      node?.hooks?.emit(emit("cluster.mint_denied", payload));
    },
  });
  const hosts = hostNames(config.http_host, config.http_hosts);
  let server;
  try {
    // Both behind the front door with its connection limits; secure mode's
    // node:https (it checks client certificates, identity/) ends the TLS.
    server = sec.https
      ? await serveHttps(
        {
          hostname: config.http_host,
          port: config.http_port,
          ...sec.https,
          socketPath: `${config.data_dir}/https.sock`,
          log,
        },
        (req, peer) =>
          hostRefusal(req, hosts) ??
            handleHttp(req, () => node, obs, gate, { peer, service: identity }),
      )
      : await HttpFront.listen(
        {
          hostname: config.http_host,
          port: config.http_port,
          socketPath: `${config.data_dir}/http.sock`,
          log,
        },
        (req) =>
          hostRefusal(req, hosts) ??
            handleHttp(req, () => node, obs, gate, { service: identity }),
      );
  } catch (e) {
    console.error(
      `boi node: ${
        e instanceof SocketPathError
          ? `BOI_DATA_DIR ${e.message}: got ${JSON.stringify(config.data_dir)}`
          : listenError(e, config)
      }`,
    );
    return 2;
  }
  const addr = `${config.http_host}:${server.addr.port}`;

  const stopping = new AbortController();
  const gateLoaded = gate.load({
    client,
    key: new Keys(config.key_prefix).adminSecret(),
    node_id: config.node_id,
    data_dir: config.data_dir,
    log,
    signal: stopping.signal,
  }).catch((e) =>
    log.error("admin secret not loaded", { error: (e as Error).message })
  );
  const host = new PluginHost(plugins, {
    node_id: config.node_id,
    data_dir: config.data_dir,
    core_version: VERSION,
    log,
    onChange: (name, record) => node?.onPluginChange(name, record),
  });
  node = new BoiNode({
    config,
    client,
    log,
    pool: host.pool(),
    workspace: host.workspace(),
    addr,
    plugins: host,
    hooks: host.hooks(),
    router: host.router(),
    provisioning: provisionDeps(host, identity),
    onFatal: (e) => fatal(e),
  });
  obs.attach(node);
  log.info("starting", {
    etcd: endpoints,
    secure: sec.https !== null,
    http: addr,
    data_dir: config.data_dir,
  });

  const done = Promise.withResolvers<number>();
  const stop = (code: number) =>
    node!.stop().then(() => host.stopAll()).finally(() => done.resolve(code));
  const shutdown = (sig: string) => {
    log.info("shutting down", { signal: sig });
    stop(0);
  };
  // Refused on re-registration (registration.ts): stop, exit 1 as at start.
  const fatal = (e: Error) => {
    log.error("registration refused: stopping", { error: e.message });
    stop(1);
  };
  Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
  if (Deno.env.get("BOI_LIFELINE") === "stdin") {
    watchLifeline(() => shutdown("launcher gone"));
  }
  try {
    // Plugins first: a node registers only once it can run what it claims
    // (a plugin that fails to start leaves it registered but degraded).
    await host.restoreCrashes(
      { get: (key) => client.get(key).string() },
      new Keys(config.key_prefix),
    );
    await host.startAll();
    await node.start();
    await identity.startJoin(); // only a node holding the CA key listens
  } catch (e) {
    log.error("start failed", { error: (e as Error).message });
    return 1;
  }
  const code = await done.promise;
  stopping.abort();
  await gateLoaded;
  obs.close(); // ends tail follows and dashboard streams, or shutdown would wait on them
  await identity.close();
  await server.shutdown();
  client.close();
  return code;
}

/** A node with a provisioner plugin provisions with its own mint and join listener. */
function provisionDeps(host: PluginHost, identity: IdentityService) {
  const provisioner = host.provisioner();
  if (provisioner === null) return null;
  return {
    provisioner,
    mint: (hint: Record<string, string>, ttlS: number) =>
      mintToken(identity.deps, hint, ttlS),
    bootstrapUrl: () =>
      identity.joinAddr === null ? null : `https://${identity.joinAddr}`,
  };
}

/** Why BOI_HTTP_ADDR cannot be listened on, as one line naming the variable. */
function listenError(
  e: unknown,
  c: { http_host: string; http_port: number },
): string {
  const why = e instanceof Deno.errors.AddrInUse
    ? "is an address already in use"
    : e instanceof Deno.errors.AddrNotAvailable
    ? "is not an address of this host"
    : e instanceof Deno.errors.PermissionDenied ||
        e instanceof Deno.errors.NotCapable
    ? "may not be listened on by this user"
    : `cannot be listened on (${(e as Error).message})`;
  return `BOI_HTTP_ADDR ${why}: got ${
    JSON.stringify(`${c.http_host}:${c.http_port}`)
  }`;
}

const code = await main();
flushLogs();
Deno.exit(code);
