#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# schema-agreement: proves the JSON Schema and the C validator agree on tests/data/events.
#
# The same case files drive both sides: build/tests/test_event holds the C
# validator to every .expect, and this script holds the JSON Schema to the same
# verdicts with check-jsonschema (installed from PyPI when missing):
#   - the schema is valid JSON Schema 2020-12 (--check-metaschema);
#   - every tests/data/events/valid/*.json passes the schema;
#   - every tests/data/events/invalid/*.json fails it, except the cases in
#     KNOWN_STRICTER below, which only the C validator can see.
# Ends with "N passed, M failed"; exits non-zero if anything failed.
#
# Environment: TP_TEST_EVENT=path of the test_event binary (default
# build/tests/test_event; "skip" to check the schema side only).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
schema="$root/schemas/touchpoint.schema.json"
data="$root/tests/data/events"
test_event=${TP_TEST_EVENT:-$root/build/tests/test_event}

# Invalid cases the schema accepts because JSON Schema cannot express the
# rule; the C validator rejects them. Each entry: "case-name expected-class".
# An entry whose case the schema rejects after all is reported as stale, so
# the list stays exact. Calendar-impossible dates (Feb 30, Apr 31, Feb 29 of
# a non-leap year) are not here: the schema's date pattern spells out month
# lengths and leap years.
KNOWN_STRICTER=(
    # The offset moves the instant out of 1970..9999; a pattern cannot add.
    "ts_before_1970_after_offset bad_timestamp"
    "ts_after_9999_after_offset bad_timestamp"
    # JSON Schema's "integer" is any number with a zero fraction, so 7.0 and
    # 1.7092008e12 are integers there; the contract says they are not.
    "nps_score_integral_float wrong_type"
    "wait_ms_integral_float wrong_type"
    "occurred_at_integral_float wrong_type"
    "occurred_at_exponent wrong_type"
    # maxLength counts code points; the contract counts UTF-8 bytes
    # (65 code points, 129 bytes).
    "event_id_129_bytes_multibyte out_of_range"
)

passed=0
failed=0
ok() {
    passed=$((passed + 1))
}
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}

if ! python3 -m check_jsonschema --version >/dev/null 2>&1; then
    python3 -m pip install --quiet check-jsonschema
fi
cj=(python3 -m check_jsonschema)

tmp=$(mktemp -d -t schema-agreement.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- the schema itself -----------------------------------------------------
if "${cj[@]}" --check-metaschema "$schema" >"$tmp/meta.out" 2>&1; then
    ok
else
    bad "schema is not valid JSON Schema 2020-12"
    cat "$tmp/meta.out"
fi

# rejected FILE...: prints the base names (no .json) of the files the schema
# rejects, validation or parse error alike, one a line. One check-jsonschema
# run for all files; its JSON report names each failing file.
rejected() {
    "${cj[@]}" --schemafile "$schema" -o json "$@" \
        >"$tmp/report.json" 2>"$tmp/report.err" || true
    python3 - "$tmp/report.json" <<'EOF'
import json, os, sys
try:
    report = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("check-jsonschema gave no JSON report")
names = {os.path.basename(e["filename"])[:-len(".json")]
         for e in report.get("errors", []) + report.get("parse_errors", [])}
for name in sorted(names):
    print(name)
EOF
}

shopt -s nullglob
valid=("$data"/valid/*.json)
invalid=("$data"/invalid/*.json)
if [ ${#valid[@]} -eq 0 ] || [ ${#invalid[@]} -eq 0 ]; then
    bad "no cases under $data (valid ${#valid[@]}, invalid ${#invalid[@]})"
    echo "$passed passed, $failed failed"
    exit 1
fi

# ---- valid cases: the schema accepts every one -----------------------------
if ! rejected "${valid[@]}" >"$tmp/valid.rej"; then
    bad "check-jsonschema failed on the valid cases"
    cat "$tmp/report.err"
fi
for f in "${valid[@]}"; do
    name=$(basename "$f" .json)
    if grep -qxF "$name" "$tmp/valid.rej"; then
        bad "valid/$name.json: rejected by the schema"
    else
        ok
    fi
done
# Show the schema's reasons for the valid cases it rejected.
mapfile -t why < <(sed "s:^:$data/valid/:; s:\$:.json:" "$tmp/valid.rej")
if [ ${#why[@]} -gt 0 ]; then
    "${cj[@]}" --schemafile "$schema" "${why[@]}" || true
fi

# ---- invalid cases: the schema rejects every one but the known -------------
declare -A known=()
for entry in "${KNOWN_STRICTER[@]}"; do
    read -r name class <<<"$entry"
    known[$name]=$class
    expect="$data/invalid/$name.expect"
    if [ ! -f "$expect" ]; then
        bad "KNOWN_STRICTER names $name, which has no invalid/$name.expect"
    elif [ "$(head -n 1 "$expect")" != "$class" ]; then
        bad "KNOWN_STRICTER says $name is $class, its .expect says $(head -n 1 "$expect")"
    fi
done
if ! rejected "${invalid[@]}" >"$tmp/invalid.rej"; then
    bad "check-jsonschema failed on the invalid cases"
    cat "$tmp/report.err"
fi
for f in "${invalid[@]}"; do
    name=$(basename "$f" .json)
    if grep -qxF "$name" "$tmp/invalid.rej"; then
        if [ -n "${known[$name]:-}" ]; then
            bad "invalid/$name.json: in KNOWN_STRICTER, but the schema" \
                "rejects it (stale entry)"
        else
            ok
        fi
    elif [ -n "${known[$name]:-}" ]; then
        echo "known: C validator stricter: invalid/$name.json (${known[$name]})"
        ok
    else
        bad "invalid/$name.json: accepted by the schema, expected" \
            "$(head -n 1 "${f%.json}.expect")"
    fi
done

# ---- the C side on the same files ------------------------------------------
if [ "$test_event" = skip ]; then
    echo "note: C validator not run (TP_TEST_EVENT=skip)"
elif [ ! -x "$test_event" ]; then
    bad "$test_event not built (make build/tests/test_event)"
elif (cd "$root" && TP_TESTDATA=tests/data "$test_event") >"$tmp/c.out" 2>&1; then
    ok
else
    bad "C validator disagrees with the case files ($test_event):"
    grep -v '^\[ *\(RUN\|OK\) *\]' "$tmp/c.out" || true
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
