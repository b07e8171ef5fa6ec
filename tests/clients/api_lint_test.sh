#!/usr/bin/env bash
# The public API and the internal protos keep buf's lint rules
# (proto/buf.yaml): names, enum zero values, package versions, comments.
# buf reads the protos as Debian's protoc compiles them, imports included.
set -euo pipefail
source=$1
proto=$source/proto
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
protoc -I "$proto" -I "$proto/node_modules/google-proto-files" --include_imports --include_source_info \
  -o "$work/api.binpb" "$proto"/casework/v1/*.proto "$proto"/casework/internal/*.proto
"$proto/node_modules/.bin/buf" lint "$work/api.binpb" --config "$proto/buf.yaml"
