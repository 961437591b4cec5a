#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# metrics-format: proves touchpointd's /metrics text is valid Prometheus exposition, as judged by a real parser (promtool), and that the README documents every metric.
#
# Checks, each printed as "ok - ..." or "FAIL - ...":
#   1. promtool is installed (Debian's prometheus package; make deps);
#   2. the metrics unit test writes a fully populated exposition of the
#      catalogue (every family, label escaping, histograms, lag from a
#      librdkafka statistics report) and its Markdown table;
#   3. `promtool check metrics` parses that exposition and finds no lint
#      problem (names, _total suffixes, units, HELP present);
#   4. promtool rejects a copy with one unescaped quote in a label value and
#      a copy with a counter lacking _total (the check above has teeth);
#   5. every family has exactly one # HELP and one # TYPE line; every
#      histogram's +Inf bucket equals its _count;
#   6. the Markdown table has a row for every family rendered;
#   7. README.md names every metric (`name`): paste the table the unit test
#      writes (TP_METRICS_MARKDOWN) into its metrics section.
# Ends with "N passed, M failed"; exits non-zero if anything failed.
#
# Environment: TEST_METRICS=path of the unit test binary (default
# build/tests/test_metrics, built if missing).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${TEST_METRICS:-$root/build/tests/test_metrics}

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok - $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}
# check NAME COMMAND...: ok when COMMAND succeeds; its output goes with a FAIL.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        bad "$name"
        printf '%s\n' "$out" | tail -n 15 | sed 's/^/    /'
    fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

tmp=$(mktemp -d -t metrics-format.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sample=$tmp/sample.prom
table=$tmp/metrics.md

if command -v promtool >/dev/null 2>&1; then
    ok "promtool found ($(promtool --version 2>&1 | head -n 1))"
else
    bad "promtool found (install Debian's prometheus package: make deps)"
    finish
fi

if [ ! -x "$bin" ]; then
    make -C "$root" -s build/tests/test_metrics >/dev/null 2>&1 || {
        bad "build/tests/test_metrics builds"
        finish
    }
fi
write_sample() {
    TP_METRICS_SAMPLE=$sample TP_METRICS_MARKDOWN=$table "$bin" &&
        [ -s "$sample" ] && [ -s "$table" ]
}
check "the unit test writes a populated exposition and the Markdown table" \
    write_sample
[ -s "$sample" ] || finish

promtool_clean() {
    local out
    out=$(promtool check metrics <"$1" 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "lint: $out"; return 1; }
}
check "promtool check metrics: parses and lints clean" promtool_clean "$sample"

# Negative controls: the same text with one defect each must be refused.
rejects() {
    if promtool check metrics <"$1" >/dev/null 2>&1; then
        echo "promtool accepted $(basename "$1")"
        return 1
    fi
}
sed '0,/state="firing"/s//state="fi"ring"/' "$sample" >"$tmp/bad-quote.prom"
sed 's/touchpointd_flushes_total/touchpointd_flushes/g' "$sample" \
    >"$tmp/bad-suffix.prom"
check "promtool refuses an unescaped quote in a label value" \
    rejects "$tmp/bad-quote.prom"
check "promtool refuses a counter without _total" \
    rejects "$tmp/bad-suffix.prom"

help_type_once() {
    local dup
    dup=$(grep -E '^# (HELP|TYPE) ' "$sample" | awk '{print $2, $3}' |
        sort | uniq -d)
    [ -z "$dup" ] || { echo "repeated: $dup"; return 1; }
    diff <(grep '^# HELP ' "$sample" | awk '{print $3}') \
        <(grep '^# TYPE ' "$sample" | awk '{print $3}')
}
check "one # HELP and one # TYPE per family, in the same order" help_type_once

inf_equals_count() {
    awk '
        / histogram$/ && /^# TYPE / { hist[$3] = 1; next }
        /^#/ { next }
        {
            name = $1; sub(/\{.*/, "", name)
            series = $1; sub(/^[^{]*/, "", series)
            gsub(/,?le="[^"]*"/, "", series); sub(/^\{\}$/, "", series)
            if (name ~ /_bucket$/ && $1 ~ /le="\+Inf"/) {
                base = substr(name, 1, length(name) - 7)
                inf[base series] = $2
            } else if (name ~ /_count$/) {
                base = substr(name, 1, length(name) - 6)
                if (base in hist) { cnt[base series] = $2; n++ }
            }
        }
        END {
            if (n == 0) { print "no histogram _count lines"; exit 1 }
            for (k in cnt) if (inf[k] != cnt[k]) {
                print k ": +Inf " inf[k] " != _count " cnt[k]; bad = 1
            }
            exit bad
        }' "$sample"
}
check "every histogram's +Inf bucket equals its _count" inf_equals_count

families() {
    grep '^# TYPE ' "$sample" | awk '{print $3}'
}
table_rows() {
    local missing=()
    for m in $(families); do
        grep -qF "| \`$m\` |" "$table" || missing+=("$m")
    done
    [ "${#missing[@]}" -eq 0 ] || { echo "no row: ${missing[*]}"; return 1; }
}
check "the Markdown table has a row for each of $(families | wc -l) families" \
    table_rows

readme_documents() {
    local missing=()
    for m in $(families); do
        grep -qF "\`$m\`" "$root/README.md" || missing+=("$m")
    done
    [ "${#missing[@]}" -eq 0 ] || {
        echo "README.md does not name: ${missing[*]}"
        echo "(table to paste: TP_METRICS_MARKDOWN=FILE $bin)"
        return 1
    }
}
check "README.md names every metric" readme_documents

finish
