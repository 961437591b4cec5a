#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every fault test in order, each as its own process with its own Redis
# and Kafka, prints each one's time and the checks counted over all of them,
# and closes with one line "N passed, M failed" over the scripts (exit 1 if
# any failed).
# `tests/faults/run-all.sh kill9 sigterm` runs only those.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

tests=(kill9 redis-down redis-stall redis-refuses redis-oom zombie kafka-restart rebalance
    sigterm memory)
if [ $# -gt 0 ]; then
    tests=("$@")
fi
checks_passed=0
checks_failed=0
failed_scripts=()
times=()
t_all=$(date +%s)
for t in "${tests[@]}"; do
    script=tests/faults/${t%.sh}.sh
    echo "=== $script"
    start=$(date +%s)
    out=$(mktemp -t tp-fault-out.XXXXXX)
    "$script" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    secs=$(($(date +%s) - start))
    # The script's closing line; a script that died early has none.
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    rm -f "$out"
    p=0
    f=0
    if [ -n "$line" ]; then
        read -r p _ f _ <<<"$line"
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # died before its summary: count the script itself as a failure
    fi
    checks_passed=$((checks_passed + p))
    checks_failed=$((checks_failed + f))
    if [ "$rc" -eq 0 ]; then
        echo "=== $script: ok ($secs s)"
    else
        failed_scripts+=("$script")
        echo "=== $script: FAILED, exit $rc ($secs s)"
    fi
    times+=("$(printf '%-30s %4d s  %s' "$script" "$secs" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)")")
done
echo "=== times"
printf '  %s\n' "${times[@]}"
echo "  total $(($(date +%s) - t_all)) s"
if [ "${#failed_scripts[@]}" -gt 0 ]; then
    printf 'failed: %s\n' "${failed_scripts[@]}"
fi
echo "checks: $checks_passed passed, $checks_failed failed"
echo "$((${#tests[@]} - ${#failed_scripts[@]})) passed, ${#failed_scripts[@]} failed"
[ "${#failed_scripts[@]}" -eq 0 ]
