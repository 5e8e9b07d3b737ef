/**
 * The secure-mode node HTTPS listener under a flood of idle connections: on
 * its own port `node:https` stopped accepting for good after one EMFILE.
 */
import { floodCheck } from "./flood_test_util.ts";

Deno.test("secure HTTPS: a flood of idle connections past the open-file limit does not stop the listener; TLS and the peer check still work through the relay", async () => {
  await floodCheck({
    script: "https_listener.ts",
    caFile: "ca.pem",
    path: "/healthz",
    answer: "200 peer false",
  });
});
