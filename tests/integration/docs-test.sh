#!/usr/bin/env bash
# Proves the README documents every configuration key (taken from the
# binary's own table via `config --defaults`), that the defaults text and
# every example config pass `touchpointd check`, and that --help names every
# command.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/harness/lib.sh
. tests/harness/lib.sh # check
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build/touchpointd config --defaults >"$tmp/defaults.yaml"
# Keys: "section:" lines, then "  key:" lines; top-level map keys stand alone.
awk '/^[a-z_]+:/ { sec = $1; sub(":", "", sec); if ($2 == "") { print sec } next }
     /^  [a-z_.]+:/ && !/^    / { k = $1; sub(":", "", k); print sec "." k }' \
    "$tmp/defaults.yaml" | sort -u >"$tmp/keys"
check "config --defaults lists keys ($(wc -l <"$tmp/keys"))" test -s "$tmp/keys"
missing=$(while read -r k; do
    leaf=${k##*.}
    grep -q -- "$leaf:" README.md || echo "$k"
done <"$tmp/keys")
check "README documents every key${missing:+ (missing: $missing)}" test -z "$missing"
check "the defaults text passes check" \
    build/touchpointd check -c "$tmp/defaults.yaml"
for f in deploy/*.yaml deploy/examples/*.yaml; do
    [ -e "$f" ] || continue
    check "example config $f passes check" build/touchpointd check -c "$f"
done
for cmd in run replay check config; do
    check "--help names the $cmd command" \
        grep -q "^  $cmd" <(build/touchpointd --help)
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
