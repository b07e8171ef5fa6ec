#!/usr/bin/env bash
# The Python example client, generated from our protos with Debian's
# tooling, runs its trade-in flow against a real caseworkd.
set -euo pipefail
caseworkd=$1 source=$2
work=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$caseworkd" --dev --metrics=off --data-dir="$work/data" --listen=127.0.0.1:$port >/dev/null 2>"$work/log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
"$source/clients/python/generate.sh" "$work/gen"
for i in $(seq 100); do
  /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done
CASEWORK_PY_GEN="$work/gen" /usr/bin/python3 "$source/clients/python/trade_in_flow.py" --server 127.0.0.1:$port
