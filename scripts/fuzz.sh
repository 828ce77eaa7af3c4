#!/usr/bin/env bash
# Runs every Go fuzz target (func Fuzz...) for $FUZZTIME each. `go test -fuzz`
# takes one target and one package at a time, so this lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-5s}"
found=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    found=1
    echo "fuzz: $pkg $target ($FUZZTIME)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
  done
done < <(grep -rlE '^func Fuzz' --include='*_test.go' pkg cmd 2>/dev/null || true)
[ "$found" = 1 ] || echo "fuzz: no targets"
