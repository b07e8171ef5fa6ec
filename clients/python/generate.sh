#!/usr/bin/env bash
# Generates the Python modules of casework's API into OUT (default ./gen)
# with Debian's protoc and grpc_python_plugin.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/gen}
mkdir -p "$out"
protoc -I "$here/../../proto" \
  --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  "$here"/../../proto/casework/v1/*.proto
