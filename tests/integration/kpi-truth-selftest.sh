#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kpi-truth-selftest: proves kpi_truth agrees with KPI hashes computed by hand and fails when they differ.
#
# Each tests/data/truth/CASE.ndjson comes with CASE.redis: the hashes and sets
# touchpointd should write for it, worked out by hand (the arithmetic is in the
# file's # comments) and written as redis-cli commands. On a real throwaway
# redis-server this script shows that:
#   - kpi_truth finds 0 mismatches against every hand-made case;
#   - changing one field of one case gives exactly 1 mismatch (so it can fail);
#   - a missing row, a stray row, an extra field, a rate that must be absent,
#     a late tenant in tp:tenants, other --abandons modes and a live clock
#     range are each caught or honoured exactly;
#   - --compare-db ignores updated_at_ms and catches one differing field;
#   - --expect-only prints the hand-computed values; a malformed event exits 2.
# Ends with "N passed, M failed"; exits non-zero if anything failed.
#
# Environment: KPI_TRUTH=path of the kpi_truth binary (default
# build/tests/kpi_truth, made by `make build/tests/kpi_truth`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kt=${KPI_TRUTH:-$root/build/tests/kpi_truth}
data=$root/tests/data/truth
clock=1700000000000 # 2023-11-14T22:13:20Z, the clock all cases were computed for
passed=0
failed=0

# check DESCRIPTION COMMAND...: run COMMAND, count and print the outcome.
check() {
    local desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   - $desc"
    else
        failed=$((failed + 1))
        echo "FAIL - $desc"
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

bail() {
    failed=$((failed + 1))
    echo "FAIL - $*"
    finish || true
    exit 1
}

# ---- a throwaway Redis ------------------------------------------------------

# Used only when tests/harness/lib.sh is missing; own_pid and own_dir are
# global so that the EXIT trap still sees them.
stop_own_redis() {
    if [ -n "$own_pid" ]; then
        kill "$own_pid" 2>/dev/null || true
        wait "$own_pid" 2>/dev/null || true
    fi
    rm -rf "$own_dir"
}

start_own_redis() {
    local port try
    own_dir=$(mktemp -d "${TMPDIR:-/tmp}/kpi-truth.XXXXXX")
    trap stop_own_redis EXIT
    for try in $(seq 1 20); do
        port=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        redis-server --port "$port" --bind 127.0.0.1 --dir "$own_dir" --save '' \
            --appendonly no >"$own_dir/redis.log" 2>&1 &
        own_pid=$!
        for _ in $(seq 1 50); do
            if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
                REDIS_PORT=$port
                return 0
            fi
            kill -0 "$own_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$own_pid" 2>/dev/null || true
        wait "$own_pid" 2>/dev/null || true
    done
    return 1
}

[ -x "$kt" ] || bail "no kpi_truth binary at $kt (make build/tests/kpi_truth)"
if [ -f "$root/tests/harness/lib.sh" ]; then
    # shellcheck source=tests/harness/lib.sh
    . "$root/tests/harness/lib.sh"
    tp_init
    tp_start_redis "$(tp_workdir)/redis" || bail "redis did not start (tests/harness/lib.sh)"
else
    own_pid=
    own_dir=
    start_own_redis || bail "redis did not start"
fi
port=$REDIS_PORT

# ---- helpers ----------------------------------------------------------------

# load CASE DB: empty DB, then run the hand-written CASE.redis into it.
load() {
    redis-cli -p "$port" -n "$2" flushdb >/dev/null
    grep -v -e '^#' -e '^[[:space:]]*$' "$data/$1.redis" |
        redis-cli -p "$port" -n "$2" >/dev/null
}

# r DB ARGS...: one redis-cli command.
r() {
    local db=$1
    shift
    redis-cli -p "$port" -n "$db" "$@" >/dev/null
}

# mismatches_are N OUTPUT RC: the summary says N mismatches and the exit
# status agrees (0 when N is 0, else 1).
mismatches_are() {
    local got want_rc=1
    got=$(printf '%s\n' "$2" | sed -n 's/^kpi_truth: checked [0-9]* keys, [0-9]* fields, \([0-9]*\) mismatches$/\1/p')
    [ "$1" -ne 0 ] || want_rc=0
    if [ "$got" = "$1" ] && [ "$3" -eq "$want_rc" ]; then
        return 0
    fi
    echo "     expected $1 mismatches, got '${got:-no summary}' (exit $3):" >&2
    printf '%s\n' "$2" | head -n 8 | sed 's/^/     /' >&2
    return 1
}

# truth_finds N CASE [ARGS...]: kpi_truth over CASE.ndjson against DB 0.
truth_finds() {
    local n=$1 case=$2 out rc=0
    shift 2
    out=$("$kt" --events "$data/$case.ndjson" --redis "redis://127.0.0.1:$port/0" \
        --clock-ms "$clock" --bucket 1m --windows 5m,1h,24h --retention 48h "$@" 2>&1) || rc=$?
    mismatches_are "$n" "$out" "$rc"
}

# compare_finds N: --compare-db between DB 0 and DB 1.
compare_finds() {
    local out rc=0
    out=$("$kt" --redis "redis://127.0.0.1:$port/0" \
        --compare-db "redis://127.0.0.1:$port/1" 2>&1) || rc=$?
    mismatches_are "$1" "$out" "$rc"
}

# ---- every case: agrees with the hand values, and one change is caught --------

# CASE|KEY FIELD VALUE: the one field changed to prove the check can fail.
alterations=(
    "dm_wait|tp:{acme}:kpi:5m:chat:sales sl_met 3"
    "call_abandon|tp:{beta}:kpi:1h:_all:_all abandon_rate 0.75"
    "ticket_reopen|tp:{gamma}:kpi:24h:email:billing ttr_p90_ms 1830000"
    "nps|tp:{delta}:kpi:24h:_all:_all nps -16.66666666"
    "late|tp:{eps}:kpi:5m:sms:default events 3"
)
for entry in "${alterations[@]}"; do
    case=${entry%%|*}
    read -r key field value <<<"${entry#*|}"
    load "$case" 0
    check "$case: hand-computed hashes match (0 mismatches)" truth_finds 0 "$case"
    r 0 hset "$key" "$field" "$value"
    check "$case: $field changed in one key is exactly 1 mismatch" truth_finds 1 "$case"
done

# ---- the rules one at a time ------------------------------------------------

load dm_wait 0
r 0 hset 'tp:{acme}:live:_all:_all' oldest_wait_ms 29000
check "dm_wait: a wrong live oldest_wait_ms is 1 mismatch" truth_finds 1 dm_wait
r 0 hset 'tp:{acme}:live:_all:_all' oldest_wait_ms 29001
check "dm_wait: --live-clock range containing the clock accepts oldest_wait_ms" \
    truth_finds 0 dm_wait --live-clock-min "$clock" --live-clock-max $((clock + 500))
check "dm_wait: a live clock range past the written value flags the 4 live rows" \
    truth_finds 4 dm_wait --live-clock-min $((clock + 1000)) --live-clock-max $((clock + 1000))
r 0 hset 'tp:{acme}:kpi:5m:chat:sales' abandon_rate 0
check "dm_wait: abandon_rate present without calls is 1 mismatch" truth_finds 1 dm_wait

load call_abandon 0
check "call_abandon: --abandons missed moves sl_n and sl_pct in all 12 kpi keys" \
    truth_finds 24 call_abandon --abandons missed
check "call_abandon: --abandons ignore moves sl_n and sl_pct in all 12 kpi keys" \
    truth_finds 24 call_abandon --abandons ignore
# phone=5s: the 10 s abandon now counts as missed and the 15 s answer misses:
# sl_n 4, sl_met 0, sl_pct 0 in all 12 kpi keys.
check "call_abandon: --targets phone=5s moves sl_n, sl_met and sl_pct everywhere" \
    truth_finds 36 call_abandon --targets phone=5s

load ticket_reopen 0
r 0 del 'tp:{gamma}:kpi:1h:_all:_all'
check "ticket_reopen: a missing row counts each of its 16 fields" truth_finds 16 ticket_reopen

load nps 0
r 0 hset 'tp:{delta}:kpi:5m:chat:sales' csat_good 1
check "nps: an unknown extra field is 1 mismatch" truth_finds 1 nps
load nps 0
r 0 hset 'tp:{delta}:kpi:1h:_other:sales' events 1
check "nps: a stray row with events is 1 mismatch" truth_finds 1 nps
load nps 0
r 0 sadd 'tp:{delta}:dims' sms:sales
check "nps: an extra member of tp:{delta}:dims is 1 mismatch" truth_finds 1 nps

load late 0
r 0 sadd tp:tenants zeta
check "late: a tenant seen only in late events is 1 mismatch in tp:tenants" truth_finds 1 late

# ---- --compare-db -----------------------------------------------------------

load ticket_reopen 0
load ticket_reopen 1
r 1 hset 'tp:{gamma}:kpi:5m:_all:_all' updated_at_ms 1
check "--compare-db: same data, other updated_at_ms: 0 mismatches" compare_finds 0
r 1 hset 'tp:{gamma}:kpi:1h:email:_all' ttr_mean_ms 3120001
check "--compare-db: one differing field is 1 mismatch" compare_finds 1
r 1 hdel 'tp:{gamma}:kpi:1h:email:_all' ttr_mean_ms
check "--compare-db: a field missing on one side is 1 mismatch" compare_finds 1

# ---- --expect-only and bad input ----------------------------------------------

expect_has() {
    # Whole output first: `grep -q` in a pipe would stop reading early and,
    # under pipefail, turn kpi_truth's SIGPIPE into a failure.
    local out
    out=$("$kt" --events "$data/$1.ndjson" --clock-ms "$clock" --expect-only 2>/dev/null)
    grep -qxF "$2" <<<"$out"
}
check "--expect-only prints the hand-computed wait mean" \
    expect_has dm_wait 'tp:{acme}:kpi:5m:chat:sales wait_mean_ms 40250'
check "--expect-only prints the hand-computed NPS of the 24h roll-up" \
    expect_has nps 'tp:{delta}:kpi:24h:_all:_all nps -16.66666667'

bad_input_exits_2() {
    local f rc=0
    f=$(mktemp "${TMPDIR:-/tmp}/kpi-truth-bad.XXXXXX")
    printf '{"event_id":"x","type":"dm.received"\n' >"$f"
    "$kt" --events "$f" --clock-ms "$clock" --expect-only >/dev/null 2>&1 || rc=$?
    rm -f "$f"
    [ "$rc" -eq 2 ]
}
check "a malformed event line is an error (exit 2), not a pass" bad_input_exits_2

finish
