/**
 * The join listener under a flood of idle connections: Deno.serve's own TLS
 * listener had no connection limit, and its accept loop died on EMFILE with
 * a rejection that ended the admin node (the one holding the CA key).
 */
import { floodCheck } from "./flood_test_util.ts";

Deno.test("join listener: a flood of idle connections past the open-file limit neither ends the node nor locks out /v1/ca", async () => {
  await floodCheck({
    script: "join_listener.ts",
    caFile: "ca/ca.crt",
    path: "/v1/ca",
    answer: "200 -----BEGIN CERTIFICATE-----",
  });
});
