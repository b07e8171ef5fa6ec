#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds another CMake project
# against it with find_package(casework), and runs that program against a
# real caseworkd.
set -euo pipefail
build=$1 source=$2
work=$(mktemp -d)
trap 'kill ${server:-} 2>/dev/null || true; rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$source/tests/clients/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/prefix/bin/caseworkd" --dev --metrics=off --data-dir="$work/data" --listen=127.0.0.1:$port >/dev/null 2>&1 &
server=$!
for i in $(seq 100); do
  /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done
"$work/consumer/consumer" 127.0.0.1:$port
