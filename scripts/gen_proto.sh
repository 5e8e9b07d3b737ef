#!/usr/bin/env bash
# Generates the plugin messages' TypeScript types and codecs from
# proto/boi/**/*.proto into proto/gen/ (or the directory given), the one
# definition of every plugin message (docs/architecture.md, "Plugin
# messages"). The output is checked in; proto/gen_test.ts regenerates it into
# a temporary directory and fails when it differs. Needs protoc
# (Debian's protobuf-compiler, installed by scripts/setup.sh) and Deno.
set -euo pipefail
BOI_SCRIPT=gen_proto
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
boi_path
OUT="${1:-$BOI_ROOT/proto/gen}"
command -v protoc >/dev/null 2>&1 ||
  die "protoc is missing: bash scripts/setup.sh installs Debian's protobuf-compiler"
# snake_case fields as in the .proto; 64-bit integers as numbers; oneofs as
# unions tagged with $case; service descriptions without a runtime (proto/mod.ts
# turns them into grpc-js definitions); no JSON or partial helpers (unused).
OPTS="snakeToCamel=false,forceLong=number,oneof=unions,useExactTypes=false"
OPTS+=",outputServices=generic-definitions,outputJsonMethods=false"
OPTS+=",outputPartialMethods=false,esModuleInterop=true,importSuffix=.ts"
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$BOI_ROOT/proto"
mapfile -t PROTOS < <(find boi -name '*.proto' | LC_ALL=C sort)
protoc --plugin=protoc-gen-ts_proto="$BOI_ROOT/scripts/protoc-gen-ts_proto" \
  --ts_proto_out="$OUT" --ts_proto_opt="$OPTS" -I . "${PROTOS[@]}"
# importSuffix is for the relative imports; protobufjs is a CommonJS package
# that Deno resolves by its file name. `long` is protobufjs's own Long class
# (proto/long.ts): the generated modules install theirs into protobufjs when it
# is another class, process-wide (the etcd client's decoders too).
find "$OUT" -name '*.ts' -exec sed -i \
  -e 's#"protobufjs/minimal.ts"#"protobufjs/minimal.js"#' \
  -e 's#^import Long from "long";#import Long from "../../../../long.ts";#' {} +
