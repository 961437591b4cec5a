#!/usr/bin/env bash
# Proves `touchpointd replay` against a real redis-server and the independent
# truth of kpi_truth: over 30 hours of event time (windows slide, so 5m, 1h and
# 24h differ) every KPI and live hash is exact (quantiles within 1 %); events
# beyond the retention are counted late and not applied; an old event inside the
# retention reaches the 24h window but not the 5m one; duplicates count once;
# rejects are counted by class; the same input replayed again gives identical
# KPI hashes.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
tp_start_redis "$dir/redis"

passed=0
failed=0

# The summary line "  LABEL   N ..." of a replay run.
summary_count() {
    awk -v k="$2" '$1 == k { print $2 }' "$1"
}

# The newest occurred_at of an event file tpgen wrote (in time order), in
# epoch ms: the replay clock at its end.
last_clock() {
    local ts
    ts=$(tail -n 1 "$1" | sed -E 's/.*"occurred_at":("[^"]*"|[0-9]+).*/\1/' | tr -d '"')
    if [[ $ts =~ ^[0-9]+$ ]]; then echo "$ts"; else date -d "$ts" +%s%3N; fi
}

build/tpgen --seed 11 --count 60000 --span 30h --start 2026-01-10T00:00:00Z \
    --duplicates 200 --invalid 40 --out "$dir/stream.ndjson" \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err"

clock=$(last_clock "$dir/valid.ndjson")
echo "replay clock at the end: $clock"

# Three events 4 days before the end: beyond the 48h retention, late.
# One survey 2 hours before the end: inside the retention, outside 5m and 1h.
late_ms=$((clock - 4 * 86400000))
old_ms=$((clock - 2 * 3600000))
{
    for i in 1 2 3; do
        printf '{"event_id":"late-%d","type":"survey.nps","occurred_at":%d,"tenant":"acme","channel":"phone","score":2}\n' "$i" "$late_ms"
    done
    printf '{"event_id":"old-1","type":"survey.csat","occurred_at":%d,"tenant":"globex","channel":"sms","queue":"late","score":5}\n' "$old_ms"
} >"$dir/extra.ndjson"
cat "$dir/stream.ndjson" "$dir/extra.ndjson" >"$dir/input.ndjson"
cat "$dir/valid.ndjson" "$dir/extra.ndjson" >"$dir/truth.ndjson"

build/touchpointd replay --redis "$REDIS_URL" "$dir/input.ndjson" \
    >"$dir/summary1" 2>"$dir/replay1.err"
cat "$dir/summary1"

check "summary counts the 200 duplicates once" \
    test "$(summary_count "$dir/summary1" duplicates)" = 200
check "summary counts the 3 late events" \
    test "$(summary_count "$dir/summary1" late_dropped)" = 3
check "summary counts the 40 rejected messages" \
    test "$(summary_count "$dir/summary1" rejected)" = 40
check "summary accepts every valid event once (60000 + 1 old)" \
    test "$(summary_count "$dir/summary1" accepted)" = 60001
check "KPI and live hashes equal the independent truth" \
    build/tests/kpi_truth --events "$dir/truth.ndjson" --redis "$REDIS_URL" \
    --clock-ms "$clock" --late-clock running
r() { redis-cli -p "$REDIS_PORT" "$@"; }
check "the old survey is in the 24h window" \
    test "$(r HGET 'tp:{globex}:kpi:24h:sms:late' csat_n)" = 1
check "the old survey is not in the 5m window" \
    test -z "$(r HGET 'tp:{globex}:kpi:5m:sms:late' csat_n)"
check "windows differ after 30h (5m has fewer events than 24h)" \
    test "$(r HGET 'tp:{acme}:kpi:5m:_all:_all' events)" -lt \
    "$(r HGET 'tp:{acme}:kpi:24h:_all:_all' events)"

db2="${REDIS_URL%/0}/1"
build/touchpointd replay --redis "$db2" "$dir/input.ndjson" >"$dir/summary2" 2>"$dir/replay2.err"
check "a second replay into an empty db gives identical KPI hashes" \
    build/tests/kpi_truth --redis "$REDIS_URL" --compare-db "$db2"

# 40 tenants: the tick that slides windows and refreshes oldest_wait_ms walks
# the tenants a few per Redis call (SSCAN), so this run needs several calls
# per tick; tenants whose last event is long before the end are exact only if
# every call's tenants were reached.
tenants=$(seq -f 'tn%02g' 1 40 | paste -sd,)
build/tpgen --seed 12 --count 20000 --span 3h --start 2026-01-10T00:00:00Z \
    --tenants "$tenants" --out "$dir/many.ndjson" 2>"$dir/tpgen-many.err"
clock=$(last_clock "$dir/many.ndjson")
db3="${REDIS_URL%/0}/2"
build/touchpointd replay --redis "$db3" "$dir/many.ndjson" >"$dir/summary3" 2>"$dir/replay3.err"
check "40 tenants: the stream's 40 tenants are in Redis" \
    test "$(redis-cli -n 2 -p "$REDIS_PORT" SCARD tp:tenants)" = 40
check "40 tenants: KPI and live hashes equal the independent truth" \
    build/tests/kpi_truth --events "$dir/many.ndjson" --redis "$db3" \
    --clock-ms "$clock" --late-clock running

# wait_ms may be any integer >= 0: two waits of 2^63 - 1 in one bucket hold
# the sums at the int64 maximum (in memory and in the script's arithmetic),
# never wrap them negative.
t=1768003200000 # 2026-01-10T00:00:00Z
for i in 1 2; do
    printf '{"event_id":"huge-%d","type":"call.answered","occurred_at":%d,"tenant":"acme","channel":"phone","queue":"huge","call_id":"h%d","wait_ms":9223372036854775807}\n' \
        "$i" "$t" "$i"
done >"$dir/huge.ndjson"
build/touchpointd replay --redis "${REDIS_URL%/0}/3" "$dir/huge.ndjson" \
    >"$dir/summary4" 2>"$dir/replay4.err"
huge() { redis-cli -n 3 -p "$REDIS_PORT" HGET 'tp:{acme}:kpi:5m:phone:huge' "$1"; }
check "waits of 2^63 - 1: wait_n 2, wait_max_ms 9223372036854775807 ($(huge wait_max_ms))" \
    test "$(huge wait_n)/$(huge wait_max_ms)" = 2/9223372036854775807
bkt=$(redis-cli -n 3 -p "$REDIS_PORT" --scan --pattern 'tp:{acme}:bkt:*:phone:huge' | head -n 1)
check "...and the bucket's wait_sum holds at 9223372036854775807 ($(redis-cli -n 3 -p "$REDIS_PORT" HGET "$bkt" wait_sum))" \
    test "$(redis-cli -n 3 -p "$REDIS_PORT" HGET "$bkt" wait_sum)" = 9223372036854775807

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
