/** The etcd side of {@linkcode CasPublisher}: one compare-and-put that reads the key back on a failed compare. */
import type { Etcd3 } from "etcd3";
import type { CasPort, CasResult } from "./cas_publisher.ts";
import { runTxn } from "./etcd_io.ts";

/** `onError` sees calls that got no answer (the node tracks etcd reachability with it). */
export function etcdCasPort(
  client: Etcd3,
  onError: (err: unknown) => void,
): CasPort {
  return {
    put(key, value, lease, expect, done: (r: CasResult) => void, guard = []) {
      runTxn(
        client,
        [{ key, target: "mod", equals: expect }, ...guard],
        [
          { op: "put", key, value, lease },
        ],
        5000,
        [key],
      ).then((res) => {
        if (res.ok) done({ kind: "ok", revision: res.revision });
        else {
          done({
            kind: "conflict",
            current: res.reads?.[0]?.kv?.mod_revision ?? 0,
          });
        }
      }, (error) => {
        onError(error);
        done({ kind: "error", error });
      });
    },
  };
}
