/** MuxChannel's own rules, against a fake stream (pure: the transport end to end is mux_test.ts). */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { MuxChannel } from "./mux_client.ts";

Deno.test("mux: a call cut by the stream's end is UNAVAILABLE (outcome unknown), whatever status grpc-js gives the stream", async () => {
  // grpc-js ends a dead plugin's stream UNAVAILABLE or INTERNAL "RST_STREAM
  // with code 0" depending on the moment (the latter seen under the full
  // suite's load; a handler's own error is INTERNAL too): provisioning asks
  // a cut Allocate again by this code, so the stream's status must not leak
  // into the calls it carried. A fake stream ends with each status.
  for (
    const code of [
      grpc.status.INTERNAL,
      grpc.status.UNAVAILABLE,
      grpc.status.OK,
    ]
  ) {
    const stream = Object.assign(new EventEmitter(), {
      write: () => true,
      cancel: () => {},
      end: () => {},
    });
    const client = {
      makeBidiStreamRequest: () => stream,
    } as unknown as grpc.Client;
    const mux = new MuxChannel(client, "/boi.router.v1.Router/Mux", "mux-test");
    const ended = new Promise<[number, string]>((resolve) =>
      mux.open("Route", "c1", new Uint8Array(), {
        message() {},
        end: (c, d) => resolve([c, d]),
      })
    );
    stream.emit("status", {
      code,
      details: "Received RST_STREAM with code 0",
      metadata: new grpc.Metadata(),
    });
    const [got, details] = await ended;
    assert.equal(
      got,
      grpc.status.UNAVAILABLE,
      `stream ${grpc.status[code]}: ${details}`,
    );
  }
});
