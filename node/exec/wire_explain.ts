/**
 * Says which field of a message that failed to decode is broken, e.g.
 * `boi.workspace.v1.PrepareRequest.spec_yaml: 600 bytes declared, 12 left`.
 * Only the error path runs this: the generated decoders (proto/gen) are fast
 * and say only "index out of range". It reads the field names from the same
 * `.proto` files the decoders were generated from, parsed on first use.
 * @module
 */
import protobuf from "protobufjs";
import commonProto from "../../proto/boi/common/v1/common.proto" with {
  type: "text",
};
import workspaceProto from "../../proto/boi/workspace/v1/workspace.proto" with {
  type: "text",
};
import poolProto from "../../proto/boi/pool/v1/pool.proto" with {
  type: "text",
};
import routerProto from "../../proto/boi/router/v1/router.proto" with {
  type: "text",
};
import provisionerProto from "../../proto/boi/provisioner/v1/provisioner.proto" with {
  type: "text",
};
import hooksProto from "../../proto/boi/hooks/v1/hooks.proto" with {
  type: "text",
};

let root: protobuf.Root | null = null;

function types(): protobuf.Root {
  if (root) return root;
  root = new protobuf.Root();
  for (
    const text of [
      commonProto,
      workspaceProto,
      poolProto,
      routerProto,
      provisionerProto,
      hooksProto,
    ]
  ) {
    protobuf.parse(text, root, { keepCase: true });
  }
  root.resolveAll();
  return root;
}

const WIRE_NAMES = ["varint", "fixed64", "length-delimited", "", "", "fixed32"];

/** The wire type a field's values use (a repeated scalar may come packed). */
function wireTypeOf(f: protobuf.Field): number {
  if (f.map || f.resolvedType instanceof protobuf.Type) return 2;
  if (f.type === "string" || f.type === "bytes") return 2;
  if (["double", "fixed64", "sfixed64"].includes(f.type)) return 1;
  if (["float", "fixed32", "sfixed32"].includes(f.type)) return 5;
  return 0;
}

/** Why `bytes` do not decode as a `type`, or null if they do. */
function walk(
  type: protobuf.Type,
  bytes: Uint8Array,
  path: string,
): string | null {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    let tag: number;
    try {
      tag = r.uint32();
    } catch {
      return `${path}: truncated tag at byte ${r.pos}`;
    }
    const id = tag >>> 3, wire = tag & 7;
    const field = type.fieldsById[id];
    const name = field ? `${path}.${field.name}` : `${path} field ${id}`;
    if (id === 0 || ![0, 1, 2, 5].includes(wire)) {
      return `${name}: invalid tag ${tag} (wire type ${wire}) at byte ${r.pos}`;
    }
    const start = r.pos;
    // A repeated scalar may come packed (length-delimited) or one by one.
    if (field && !field.repeated && wireTypeOf(field) !== wire) {
      return `${name}: expected ${WIRE_NAMES[wireTypeOf(field)]}, got ${
        WIRE_NAMES[wire]
      }`;
    }
    if (wire === 2) {
      let len: number;
      try {
        len = r.uint32();
      } catch {
        return `${name}: truncated length at byte ${start}`;
      }
      if (r.pos + len > r.len) {
        return `${name}: ${len} bytes declared, ${r.len - r.pos} left`;
      }
      const body = bytes.subarray(r.pos, r.pos + len);
      r.pos += len;
      if (field && wireTypeOf(field) === 2 && !field.map) {
        const t = field.resolvedType;
        if (t instanceof protobuf.Type) {
          const why = walk(t, body, name);
          if (why) return why;
        }
      }
      continue;
    }
    try {
      r.skipType(wire);
    } catch {
      return `${name}: truncated ${WIRE_NAMES[wire]} at byte ${start}`;
    }
  }
  return null;
}

/** Where a message that failed to decode came from. */
export type MessageSite =
  | { type: string }
  | { service: string; rpc: string; side: "request" | "response" };

/**
 * Names the broken field of `bytes`, a message of the type `site` names
 * (a fully qualified type, e.g. `boi.common.v1.MuxBatch`, or an RPC's side);
 * null when the framing is sound (the decoder's own message is the best
 * there is then).
 */
export function explainDecodeError(
  site: MessageSite,
  bytes: Uint8Array,
): string | null {
  let type: protobuf.Type;
  if ("type" in site) type = types().lookupType(site.type);
  else {
    const m = types().lookupService(site.service).methods[site.rpc];
    type = site.side === "request"
      ? m.resolvedRequestType!
      : m.resolvedResponseType!;
  }
  return walk(type, bytes, type.name);
}
