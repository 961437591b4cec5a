#!/usr/bin/env bash
# Proves `touchpointd run` against a real single-node Kafka broker (KRaft) and a
# real redis-server: a keyed stream over 4 partitions with duplicates and
# malformed messages is consumed; every KPI and live hash equals the
# independent truth; the dead-letter topic holds exactly the malformed messages
# with their reasons; duplicates are counted once; offsets are recorded in
# Redis; SIGTERM drains and exits 0; replaying the same stream gives the same
# KPI hashes; an unkeyed stream shows orphan ends counted while nothing
# crashes; a backlog is in Redis as soon as it is read, whatever the flush
# interval; a fetcher stopped at a small prefetch bound is woken; a dead
# letter the broker refuses is counted and logged while the stream goes on.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
tp_create_topic unkeyed 4

passed=0
failed=0
now_ms() { date +%s%3N; }
# On failure, show what touchpointd said (its log lives in the temp dir).
show_logs() {
    local f
    for f in "$dir"/*.err; do
        echo "--- tail of $f"
        tail -n 20 "$f"
    done
}
tp_cleanup_hook() {
    [ "${TP_EXIT_STATUS:-1}" -eq 0 ] && [ "${failed:-1}" -eq 0 ] || show_logs
}
r() { redis-cli -p "$REDIS_PORT" "$@"; }

# Sum of the next offsets touchpointd recorded in Redis for a group.
recorded() {
    r -n "$2" HVALS "tp:offsets:$1" | awk '{ s += $1 } END { print s + 0 }'
}
drained() { # GROUP DB TOTAL
    [ "$(recorded "$1" "$2")" -eq "$3" ]
}
stop_checked() { # LABEL: SIGTERM to touchpointd at $pid, which must exit 0
    local rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    check "$1: exit status 0" test "$rc" -eq 0
}

# run_drained NAME GROUP DB SECONDS WHAT: touchpointd run -c $dir/NAME.yaml
# (log $dir/NAME.err, pid in $pid) until GROUP's offsets in Redis DB sum to
# the backlog's $btotal, waiting at most SECONDS for WHAT; caught is
# tp_wait_for's status (0: drained in time).
run_drained() {
    build/touchpointd run -c "$dir/$1.yaml" 2>"$dir/$1.err" &
    pid=$!
    caught=0
    tp_wait_for "$5" "$4" drained "$2" "$3" "$btotal" || caught=$?
}

write_config() { # FILE GROUP TOPIC DB
    cat >"$1" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: $2
input:
  topics: [$3]
redis:
  url: ${REDIS_URL%/0}/$4
http:
  port: 0
log:
  stats_interval: 2s
YAML
}

# ---- the keyed stream ----
start=$(($(now_ms) - 60000))
build/tpgen --seed 5 --count 30000 --start "$start" --span 1m \
    --duplicates 100 --invalid 30 --brokers "$KAFKA_BOOTSTRAP" \
    --topic touchpoints --out "$dir/stream.ndjson" \
    --valid-out "$dir/valid.ndjson" --invalid-out "$dir/invalid.ndjson" \
    2>"$dir/tpgen.err"
# Clock rules in run: 10 minutes ahead is rejected ("occurred_at in the
# future"), 2 minutes ahead (within the 5m skew) is accepted and waits in its
# own bucket, outside the current windows.
future() { # ID OFFSET_MS
    printf '%s\t{"event_id":"%s","type":"survey.csat","occurred_at":%d,"tenant":"acme","channel":"phone","customer_id":"%s","score":4}\n' \
        "$1" "$1" $(($(now_ms) + $2)) "$1"
}
future fut-far 600000 >"$dir/future.tsv"
future fut-near 120000 >>"$dir/future.tsv"
kcat -P -b "$KAFKA_BOOTSTRAP" -t touchpoints -K $'\t' <"$dir/future.tsv"
head -n 1 "$dir/future.tsv" | cut -f 2- >>"$dir/invalid.ndjson"
tail -n 1 "$dir/future.tsv" | cut -f 2- >>"$dir/valid.ndjson"

total=$(tp_topic_count touchpoints)
echo "produced $total messages to 4 partitions"
check "the topic holds every produced message" test "$total" -eq 30132

write_config "$dir/run.yaml" itest touchpoints 0
build/touchpointd run -c "$dir/run.yaml" 2>"$dir/run.err" &
pid=$!
tp_wait_for "touchpointd to record all $total offsets in Redis" 90 \
    drained itest 0 "$total"
live_min=$(now_ms)

# /metrics, /healthz, /readyz while it runs (the port was picked free).
port=$(tp_http_port "$dir/run.err")
metric_sum() { # NAME: sum over the series of a metric
    curl -sf "http://127.0.0.1:$port/metrics" |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}
metrics_caught_up() { [ "$(metric_sum touchpointd_events_accepted_total)" -eq 30001 ]; }
tp_wait_for "/metrics to show every accepted event" 10 metrics_caught_up
check "/metrics: accepted events by type sum to 30001" metrics_caught_up
check "/metrics: 31 rejected by reason" \
    test "$(metric_sum touchpointd_events_rejected_total)" -eq 31
check "/metrics: 100 duplicates" \
    test "$(metric_sum touchpointd_events_duplicate_total)" -eq 100
check "/healthz answers 200" curl -sf "http://127.0.0.1:$port/healthz" -o /dev/null
check "/readyz answers 200 (group joined, Redis writable)" \
    curl -sf "http://127.0.0.1:$port/readyz" -o /dev/null

kill -TERM "$pid"
t0=$(now_ms)
rc=0
wait "$pid" || rc=$?
live_max=$(now_ms)
check "SIGTERM: exit status 0" test "$rc" -eq 0
check "SIGTERM: drained and left within 10 s ($((live_max - t0)) ms)" \
    test $((live_max - t0)) -lt 10000
check "run summary counts the 100 duplicates once" \
    grep -Eq '^  duplicates +100$' "$dir/run.err"
check "run summary counts the 31 rejected messages (one future)" \
    grep -Eq '^  rejected +31 .*future 1' "$dir/run.err"
check "KPI and live hashes equal the independent truth" \
    build/tests/kpi_truth --events "$dir/valid.ndjson" --redis "$REDIS_URL" \
    --clock-ms "$live_max" --live-clock-min "$live_min" \
    --live-clock-max "$live_max"

# ---- dead-letter topic ----
kcat -C -b "$KAFKA_BOOTSTRAP" -t touchpoints.dlq -e -q -u \
    -f '%h\n%s\n--tp-end--\n' >"$dir/dlq.raw"
# Three lines a message: headers, payload, end marker.
awk 'NR % 3 == 2' "$dir/dlq.raw" | sort >"$dir/dlq.payloads"
sort "$dir/invalid.ndjson" >"$dir/invalid.sorted"
check "dead-letter topic holds exactly the 31 rejected messages" \
    cmp -s "$dir/dlq.payloads" "$dir/invalid.sorted"
check "every dead-letter message carries tp-error, tp-error-class, tp-source" \
    test "$(grep -c 'tp-error=.*tp-error-class=.*tp-source=touchpoints/' "$dir/dlq.raw")" -eq 31
check "the far-future event is dead-lettered as 'occurred_at in the future'" \
    grep -q 'tp-error=occurred_at in the future,tp-error-class=future' "$dir/dlq.raw"
check "the out-of-range reason names the field and range" \
    grep -q 'tp-error=score out of range' "$dir/dlq.raw"

# ---- replay of the same stream gives the same KPI hashes ----
# (without the future events: replay's clock is event time, so a future event
# would move the windows.)
build/touchpointd replay --redis "${REDIS_URL%/0}/1" "$dir/stream.ndjson" \
    >"$dir/replay.out" 2>"$dir/replay.err"
check "replay of the same stream gives the same KPI hashes as run" \
    build/tests/kpi_truth --redis "$REDIS_URL" --compare-db "${REDIS_URL%/0}/1"

# ---- unkeyed production: orphans counted, nothing crashes ----
build/tpgen --seed 9 --count 5000 --span 1m --unkeyed \
    --brokers "$KAFKA_BOOTSTRAP" --topic unkeyed 2>"$dir/tpgen2.err"
utotal=$(tp_topic_count unkeyed)
write_config "$dir/unkeyed.yaml" unkeyed unkeyed 2
build/touchpointd run -c "$dir/unkeyed.yaml" 2>"$dir/unkeyed.err" &
pid=$!
tp_wait_for "touchpointd to drain the unkeyed topic" 90 \
    drained unkeyed 2 "$utotal"
stop_checked "unkeyed stream"
orphans=$(awk '$1 == "orphan_ends" { print $2 }' "$dir/unkeyed.err")
echo "unkeyed stream: orphan_ends $orphans"
check "unkeyed stream: orphan ends are counted" test "${orphans:-0}" -gt 0
check "unkeyed stream: every message was accepted" \
    grep -Eq "^  accepted +$utotal " "$dir/unkeyed.err"

# ---- a backlog is in Redis once it is read, not a flush interval later ----
# 200,000 events wait before touchpointd starts, so its polls come in full
# runs; with a 10-minute flush interval only the flush on catching up (or
# SIGTERM's, which comes after the wait) can record the offsets in time.
tp_create_topic backlog 4
build/tpgen --seed 11 --count 200000 --span 1m \
    --brokers "$KAFKA_BOOTSTRAP" --topic backlog 2>"$dir/tpgen3.err"
btotal=$(tp_topic_count backlog)
write_config "$dir/backlog.yaml" backlog backlog 3
printf 'aggregation:\n  flush_interval: 10m\n' >>"$dir/backlog.yaml"
run_drained backlog backlog 3 60 \
    "the backlog's offsets in Redis before the 10-minute interval"
check "a backlog of $btotal events is flushed when read, within 60 s of a 10-minute interval" \
    test "$caught" -eq 0
stop_checked "backlog"

# ---- a fetcher that stops at a small prefetch bound is woken ----
# The same backlog under a 64 KiB queue bound, fetched 64 KiB per partition
# at a time: librdkafka's fetcher stops after every fetch, and without the
# wakes waits up to a second for its next turn each time (about 50 s for
# these 200,000 events here); woken when the queue is half drained, it reads
# them in a few seconds.
cat >"$dir/wake.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: wake
  queued.max.messages.kbytes: 64
  max.partition.fetch.bytes: 65536
input:
  topics: [backlog]
redis:
  url: ${REDIS_URL%/0}/4
http:
  port: 0
YAML
t0=$(now_ms)
run_drained wake wake 4 25 "the backlog read under a 64 KiB queue bound"
echo "64 KiB queue bound: $btotal events in Redis after $(($(now_ms) - t0)) ms"
wport=$(tp_http_port "$dir/wake.err")
wakes=$(curl -sf "http://127.0.0.1:$wport/metrics" |
    awk '$1 == "touchpointd_kafka_fetch_wakes_total" { print $2 }')
echo "64 KiB queue bound: touchpointd_kafka_fetch_wakes_total ${wakes:-none}"
check "a backlog of $btotal events under a 64 KiB queue bound is read within 25 s" \
    test "$caught" -eq 0
check "the fetcher was woken (touchpointd_kafka_fetch_wakes_total > 0)" \
    test "${wakes:-0}" -gt 0
stop_checked "small queue bound"

# ---- a configured message.max.bytes keeps librdkafka's fetch.max.bytes ----
# touchpointd bounds fetch.max.bytes to 2 MiB unless set, and librdkafka
# refuses a fetch.max.bytes below message.max.bytes: a larger
# message.max.bytes must leave the default alone, not stop the service.
cat >"$dir/msgmax.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: msgmax
  message.max.bytes: 4000000
input:
  topics: [backlog]
redis:
  url: ${REDIS_URL%/0}/5
http:
  port: 0
YAML
run_drained msgmax msgmax 5 25 \
    "the backlog read with message.max.bytes 4000000"
check "message.max.bytes 4000000 (above the 2 MiB fetch bound): the backlog of $btotal events is read" \
    test "$caught" -eq 0
stop_checked "message.max.bytes 4000000"

# ---- a dead letter the broker refuses for good ----
# The dead-letter topic takes messages of at most 300 bytes; a rejected
# event of about 500 is refused by the broker (not by the local queue). It
# must be counted and logged with its source, and the stream goes on: the
# good events around it are counted and every offset is recorded.
tp_create_topic small 1
tp_create_topic small.dlq 1 max.message.bytes=300
t=$(now_ms)
pad=$(printf '%*s' 400 '' | tr ' ' x)
{
    printf 'k1\t{"event_id":"s1","type":"survey.csat","occurred_at":%d,"tenant":"acme","channel":"phone","score":4}\n' "$t"
    printf 'k2\t{"event_id":"s2","type":"survey.nps","occurred_at":%d,"tenant":"acme","channel":"phone","score":99,"pad":"%s"}\n' "$t" "$pad"
    printf 'k3\t{"event_id":"s3","type":"survey.csat","occurred_at":%d,"tenant":"acme","channel":"phone","score":5}\n' "$t"
} | kcat -P -b "$KAFKA_BOOTSTRAP" -t small -K $'\t'
cat >"$dir/refused.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: refused
input:
  topics: [small]
  dead_letter_topic: small.dlq
redis:
  url: ${REDIS_URL%/0}/6
http:
  port: 0
YAML
btotal=3
run_drained refused refused 6 30 "the 3 events of topic small recorded"
check "a dead letter refused by the broker: the stream goes on (3 offsets recorded)" \
    test "$caught" -eq 0
refused_logged() { grep -q 'dead-letter message from small/0/1 not delivered to small.dlq' "$dir/refused.err"; }
check "...the refusal is logged with the message's source" \
    tp_wait_for "the refusal logged" 10 refused_logged
rport=$(tp_http_port "$dir/refused.err")
curl -sf "http://127.0.0.1:$rport/metrics" >"$dir/refused.metrics"
rfail=$(awk '$1 == "touchpointd_dead_letter_failures_total" { print $2 }' "$dir/refused.metrics")
check "...and counted (touchpointd_dead_letter_failures_total ${rfail:-none})" \
    test "${rfail:-0}" -eq 1
rrec=$(awk '$1 == "touchpointd_redis_reconnects_total" { print $2 }' "$dir/refused.metrics")
check "Redis never went away: touchpointd_redis_reconnects_total ${rrec:-none}" \
    test "${rrec:-x}" = 0
check "...the good events around it are counted (CSAT n = 2)" \
    test "$(r -n 6 HGET 'tp:{acme}:kpi:5m:_all:_all' csat_n)" = 2
stop_checked "refused dead letter"

# ---- every key written is one schemas/redis.md documents ----
# The patterns come from the document: each `tp:...` name, {TENANT} and the
# upper-case placeholders standing for one or more characters other than ':'.
grep -o '`tp:[^`]*`' schemas/redis.md | tr -d '`' | sort -u |
    sed -e 's/[.]/\\./g' -e 's/{TENANT}/\\{[^}]+\\}/' \
        -e 's/[A-Z][A-Z_]*/[^:]+/g' -e 's/^/^/' -e 's/$/$/' >"$dir/key-patterns"
redis-cli -p "$REDIS_PORT" --scan >"$dir/keys"
grep -vEf "$dir/key-patterns" "$dir/keys" >"$dir/undocumented-keys" || true
echo "keys in Redis: $(wc -l <"$dir/keys"), undocumented: $(head -n 5 "$dir/undocumented-keys" | tr '\n' ' ')"
check "every key in Redis matches a key schemas/redis.md documents ($(wc -l <"$dir/key-patterns") patterns)" \
    test -s "$dir/keys" -a ! -s "$dir/undocumented-keys"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
