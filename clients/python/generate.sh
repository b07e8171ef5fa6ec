#!/usr/bin/env bash
# Generates the Python modules of casework's API into OUT (default ./gen)
# with Debian's protoc and grpc_python_plugin, and google.api's field
# annotations they import (from proto/node_modules, which scripts/setup
# fills).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/gen}
google=$here/../../proto/node_modules/google-proto-files
mkdir -p "$out"
protoc -I "$google" --python_out="$out" "$google/google/api/field_behavior.proto"
protoc -I "$here/../../proto" -I "$google" \
  --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  "$here"/../../proto/casework/v1/*.proto
