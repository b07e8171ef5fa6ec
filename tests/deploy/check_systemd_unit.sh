#!/usr/bin/env bash
# Verifies the systemd units in deploy/systemd: systemd-analyze verify (with
# ExecStart pointing at the built programs) and an offline security review
# of each service that must score an exposure of 2.0 or better.
set -euo pipefail
caseworkd=$1 casectl=$2 units=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in "$units"/*.service "$units"/*.timer; do
  sed -e "s|/usr/local/bin/caseworkd|$caseworkd|" -e "s|/usr/local/bin/casectl|$casectl|" "$unit" \
    > "$work/$(basename "$unit")"
done
for unit in "$work"/*.service "$work"/*.timer; do
  systemd-analyze verify "$unit"
done
for unit in "$work"/*.service; do
  echo "$(basename "$unit"): $(systemd-analyze security --offline=true --threshold=20 "$unit" | tail -1)"
done
