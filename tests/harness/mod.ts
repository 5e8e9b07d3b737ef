/**
 * End-to-end test harness: real etcd, real node processes and the real CLI,
 * plus condition waits and direct etcd reads. Nothing between them is mocked.
 *
 * @example
 * ```ts
 * await using etcd = await startEtcd();
 * await using a = await startNode(etcd, { nodeId: "node-a" });
 * const r = await cli(etcd, ["dispatch", "examples/hello.yaml", "--json"]);
 * ```
 * @module
 */
export { cli, cliExists, run } from "./cli_run.ts";
export type {
  CliOptions,
  EtcdTarget,
  RunOptions,
  RunResult,
} from "./cli_run.ts";
export { startEtcd, startEtcdCluster } from "./etcd.ts";
export { startSecureEtcd } from "./secure_etcd.ts";
export type { SecureEtcd, SecureEtcdOptions } from "./secure_etcd.ts";
export { EtcdCluster, EtcdServer } from "./etcd_handle.ts";
export { EtcdMember } from "./etcd_member.ts";
export type {
  EtcdClusterOptions,
  EtcdOptions,
  SingleEtcdOptions,
} from "./etcd.ts";
export { NodeProc, startNode } from "./node_proc.ts";
export type { EtcdLike } from "./node_proc.ts";
export type { LogLine } from "./node_log.ts";
export type { NodeOptions } from "./node_options.ts";
export { rawGet } from "./raw_http.ts";
export {
  docScript,
  fileTail,
  markedScript,
  missingTool,
  runScript,
} from "./doc_blocks.ts";
export type { ScriptOptions, ScriptResult } from "./doc_blocks.ts";
export { artifactsDir, makeTempDir, REPO_ROOT } from "./paths.ts";
export { freePort, freePorts } from "./ports.ts";
export { startProxy, TcpProxy } from "./proxy.ts";
export type { CutMode, ProxyTarget } from "./proxy.ts";
export {
  descendants,
  processAlive,
  processGroupAlive,
  processGroupMembers,
  processTable,
} from "./process.ts";
export type { ProcInfo } from "./process.ts";
export {
  listEnvelopes,
  listNodes,
  readCaps,
  readClaim,
  readEnvelope,
  readNode,
  readSpec,
  uniquePrefix,
} from "./store.ts";
export type { HasClient, ListEnvelopesOptions, Stored } from "./store.ts";
export {
  delay,
  describe,
  NotYet,
  notYet,
  settlesWithin,
  StopWaiting,
  waitFor,
  WaitTimeoutError,
  within,
} from "./wait.ts";
export type { WaitOptions } from "./wait.ts";
