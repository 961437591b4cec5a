#!/usr/bin/env bash
# Proves correlation state survives a crash: one keyed stream is cut in two;
# touchpointd consumes the first half, is killed with SIGKILL, a new instance
# consumes the second half, and every KPI and live hash equals the independent
# truth over the whole stream. Waits, TTRs and gauges that span the crash are
# only right if the open tickets, waiting DMs and queued calls were persisted
# with the offsets and restored on assignment. A second cut ends with SIGTERM
# and a restart into the same group.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4

passed=0
failed=0
now_ms() { date +%s%3N; }
r() { redis-cli -p "$REDIS_PORT" "$@"; }
recorded() { r HVALS tp:offsets:restart | awk '{ s += $1 } END { print s + 0 }'; }
drained() { [ "$(recorded)" -eq "$1" ]; }
tp_cleanup_hook() {
    [ "${TP_EXIT_STATUS:-1}" -eq 0 ] && [ "${failed:-1}" -eq 0 ] ||
        tail -n 20 "$dir"/run*.err
}

cat >"$dir/run.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: restart
  group.instance.id: restart-1
  session.timeout.ms: 6000
redis:
  url: $REDIS_URL
http:
  port: 0
aggregation:
  flush_interval: 10m
YAML

# 4 minutes of event time ending now: tickets, DMs and calls open in one
# third and close in the next, across the cuts. 750,000 events make each
# partition's log longer than one 1 MiB chunk, so the logs restored are ones
# a flush sent in pieces while it was being built.
build/tpgen --seed 21 --count 750000 --start $(($(now_ms) - 240000)) --span 4m \
    --keys --out "$dir/keyed.tsv" --valid-out "$dir/valid.ndjson" 2>/dev/null
n=$(wc -l <"$dir/keyed.tsv")
third=$((n / 3))
head -n "$third" "$dir/keyed.tsv" >"$dir/part1.tsv"
sed -n "$((third + 1)),$((2 * third))p" "$dir/keyed.tsv" >"$dir/part2.tsv"
tail -n +$((2 * third + 1)) "$dir/keyed.tsv" >"$dir/part3.tsv"

produce() { kcat -P -b "$KAFKA_BOOTSTRAP" -t touchpoints -K $'\t' <"$1"; }
start_instance() {
    build/touchpointd run -c "$dir/run.yaml" 2>>"$dir/run$1.err" &
    pid=$!
}

produce "$dir/part1.tsv"
start_instance 1
tp_wait_for "the first third to be recorded" 60 drained "$third"
open1=$(r HGET 'tp:{acme}:live:_all:_all' waiting_dms)
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
echo "killed with SIGKILL after $third messages ($open1 acme DMs waiting)"
check "the killed instance left open correlations persisted in Redis" \
    test "$(r --scan --pattern 'tp:corr:restart:*' | wc -l)" -gt 0
# The longest element of the logs: a chunk cut at a line end after 1 MiB.
longest=$(r EVAL "local m = 0
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
  for _, e in ipairs(redis.call('LRANGE', k, 0, -1)) do
    if #e > m then m = #e end
  end
end
return m" 0 'tp:corr:restart:*')
echo "longest correlation log element: $longest bytes"
check "the logs were sent in 1 MiB chunks (longest element 1 MiB + a line)" \
    test "$longest" -ge 1048576 -a "$longest" -lt $((1048576 + 200))

produce "$dir/part2.tsv"
start_instance 2
tp_wait_for "the second third to be recorded" 60 drained $((2 * third))
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
check "the second instance stops cleanly on SIGTERM" test "$rc" -eq 0

produce "$dir/part3.tsv"
live_min=$(now_ms)
start_instance 3
tp_wait_for "the whole stream to be recorded" 60 drained "$n"
kill -TERM "$pid"
wait "$pid" || true
live_max=$(now_ms)

check "after two cuts no end event was an orphan" \
    test -z "$(grep -h '^  orphan_ends' "$dir"/run*.err | awk '$2 != 0')"
check "KPI and live hashes equal the truth over the whole stream" \
    build/tests/kpi_truth --events "$dir/valid.ndjson" --redis "$REDIS_URL" \
    --clock-ms "$live_max" --live-clock-min "$live_min" \
    --live-clock-max "$live_max"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
