/**
 * What the generated code (proto/gen) imports as `long` (scripts/gen_proto.sh
 * points its import here): protobufjs's own Long class, not a second copy.
 * The generated modules install their `long` into protobufjs when it is
 * another class (`_m0.util.Long = Long; _m0.configure()`), and Deno gives an
 * ESM import of the package another copy than protobufjs's `require` does:
 * that would swap, process-wide, the class every other protobufjs decoder
 * (the etcd client's) makes its 64-bit values with.
 * @module
 */
import _m0 from "protobufjs/minimal.js";
import type LongClass from "long";

if (!_m0.util.Long) {
  throw new Error(
    "protobufjs found no Long class: 64-bit fields cannot decode",
  );
}
const Long = _m0.util.Long as unknown as typeof LongClass;
type Long = LongClass;
export default Long;
