#!/usr/bin/env bash
# Runs every Go fuzz target (func Fuzz...) for $FUZZTIME each. `go test -fuzz`
# takes one target and one package at a time, so this lists them.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is mid-call on a busy machine
# (golang/go#75804, fixed in Go 1.27): no input is written, nothing failed.
# Such a run is tried again, up to twice; a real finding (a failing input
# written, a panic, a test error) fails at once, and so does a target that
# only ever ends that way.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-5s}"
log="$(mktemp "${TMPDIR:-/tmp}/fuzz.XXXXXX")"
trap 'rm -f "$log"' EXIT

# deadline_flake LOG: the run failed only by the coordinator's deadline race.
deadline_flake() {
  grep -q 'context deadline exceeded' "$1" &&
    ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:|fuzz: (minimizing|found)' "$1"
}

found=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    found=1
    for try in 1 2 3; do
      echo "fuzz: $pkg $target ($FUZZTIME)"
      if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
        break
      fi
      if [ "$try" -lt 3 ] && deadline_flake "$log"; then
        echo "fuzz: $target ended on the fuzztime deadline race (golang/go#75804), no input found; again"
        continue
      fi
      cat "$log"
      exit 1
    done
  done
done < <(grep -rlE '^func Fuzz' --include='*_test.go' pkg cmd 2>/dev/null || true)
[ "$found" = 1 ] || echo "fuzz: no targets"
