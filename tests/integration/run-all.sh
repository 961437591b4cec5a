#!/usr/bin/env bash
# Runs every integration test in order (or those given as arguments), each as
# its own process, and prints one closing line "N passed, M failed" over all of
# them (exit 1 if any failed).
set -uo pipefail
cd "$(dirname "$0")/../.."

tests=(
    tests/harness/selftest.sh
    tests/integration/schema-agreement.sh
    tests/integration/metrics-format.sh
    tests/integration/docs-test.sh
    tests/integration/tpgen-test.sh
    tests/integration/kpi-truth-selftest.sh
    tests/integration/replay-test.sh
    tests/integration/flush-guard-test.sh
    tests/integration/kafka-test.sh
    tests/integration/restart-test.sh
    tests/integration/prometheus-test.sh
    tests/integration/sasl-test.sh
    tests/integration/alerts-test.sh
    tests/integration/deploy-test.sh
    tests/bench/bench-test.sh
)
# Arguments, if any, replace the list (e.g. the sanitizer pass of .ci/run).
if [ "$#" -gt 0 ]; then
    tests=("$@")
fi
passed=0
failed=0
failed_names=()
for t in "${tests[@]}"; do
    echo "=== $t"
    start=$(date +%s)
    if "$t"; then
        passed=$((passed + 1))
        echo "=== $t: ok ($(( $(date +%s) - start )) s)"
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        echo "=== $t: FAILED ($(( $(date +%s) - start )) s)"
    fi
done
if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failed_names[@]}"
fi
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
