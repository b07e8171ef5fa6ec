#!/usr/bin/env bash
# Verifies deploy/systemd/caseworkd.service: systemd-analyze verify (with
# ExecStart pointing at the built caseworkd) and an offline security review
# that must score an exposure of 2.0 or better.
set -euo pipefail
caseworkd=$1 unit=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/caseworkd|$caseworkd|" "$unit" > "$work/caseworkd.service"
systemd-analyze verify "$work/caseworkd.service"
systemd-analyze security --offline=true --threshold=20 "$work/caseworkd.service" | tail -1
