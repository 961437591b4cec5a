#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves a graceful stop mid-stream loses nothing and leaves consistent
# offsets: SIGTERM while a keyed stream flows makes touchpointd flush, commit
# and leave with exit status 0 within service.shutdown_timeout; the offsets
# it recorded in Redis equal the offsets the group committed in Kafka (read
# with Kafka's own consumer-group tool); a restart drains the rest and every
# KPI and live gauge equals the independent truth. Last, with Redis stopped,
# a third instance is assigned the partitions and waits for Redis to read
# their recorded offsets: SIGTERM then still ends it within the timeout
# (exit 1: nothing could be written), /healthz answering meanwhile, and the
# offsets Kafka holds for the group do not move.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

rate=5000
events=200000 # 40 s of stream
shutdown_timeout_ms=10000

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1

tpd_config "$dir/run.yaml" sigterm touchpoints # service.shutdown_timeout: 10s

"$bin"/tpgen --seed 51 --rate "$rate" --count "$events" \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
tpd_start first "$dir/run.yaml"

tp_wait_for "touchpointd to record 50000 offsets" 60 recorded_above sigterm 50000
say "injecting: SIGTERM at $(elapsed_s) s, $(recorded sigterm) offsets recorded"
check "the stream was still flowing at the SIGTERM" tp__alive "$gen_pid"
tpd_stop "$TPD_PID"
say "shutdown took $TPD_STOP_MS ms (service.shutdown_timeout ${shutdown_timeout_ms} ms)"
check "SIGTERM mid-stream: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "SIGTERM mid-stream: exited within service.shutdown_timeout ($TPD_STOP_MS ms)" \
    test "$TPD_STOP_MS" -lt "$shutdown_timeout_ms"
check "the first run printed its run summary" grep -q '^run summary' "$dir/first.err"

# offsets_agree: Redis's and Kafka's offsets for the group, both 4 partitions.
offsets_agree() {
    redis_offsets sigterm >"$dir/offsets.redis"
    group_offsets sigterm >"$dir/offsets.kafka"
    [ "$(wc -l <"$dir/offsets.redis")" -eq 4 ] && cmp -s "$dir/offsets.redis" "$dir/offsets.kafka"
}
show_offsets() {
    say "offsets in Redis: $(tr '\n' ' ' <"$dir/offsets.redis")"
    say "committed in Kafka: $(tr '\n' ' ' <"$dir/offsets.kafka")"
}
rc=0
offsets_agree || rc=1
show_offsets
check "after the SIGTERM: offsets in Redis equal the group's committed offsets in Kafka" \
    test "$rc" -eq 0
check "the recorded offsets stop short of the stream's end (a real mid-stream stop)" \
    test "$(recorded sigterm)" -lt "$events"

tpd_start second "$dir/run.yaml"
gen_rc=0
wait "$gen_pid" || gen_rc=$?
check "producer delivered every event (tpgen exit 0)" test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
rc=0
wait_drained sigterm "$total" 180 60 "$TPD_PID" || rc=$?
check "the restart drained the rest of the topic" test "$rc" -eq 0
live_min=$(now_ms)
tpd_stop "$TPD_PID"
live_max=$(now_ms)
check "second SIGTERM: exit status 0 ($TPD_RC), within the timeout ($TPD_STOP_MS ms)" \
    test "$TPD_RC" -eq 0 -a "$TPD_STOP_MS" -lt "$shutdown_timeout_ms"
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
check "the restarted instance found no orphan ends (correlations carried over)" \
    test "$(summary_count "$dir/second.err" orphan_ends)" = 0
rc=0
offsets_agree || rc=1
show_offsets
check "at the end: offsets in Redis equal the committed offsets in Kafka" \
    test "$rc" -eq 0

# ---- SIGTERM while an assignment waits for Redis -----------------------------
committed_before=$(group_offsets sigterm)
tp_stop_redis
tpd_start third "$dir/run.yaml"
waiting() { grep -q 'cannot read recorded offsets' "$dir/third.err"; }
require "the third instance waits for Redis on its assignment" \
    tp_wait_for "the assignment to wait for Redis" 60 waiting
port=$(tp_http_port "$dir/third.err")
# Past the 10 s liveness window of /healthz (a duration to let pass, not an
# event to wait for): the wait still counts as alive.
wait_t0=$(now_ms)
waited_11s() { [ $(($(now_ms) - wait_t0)) -ge 11000 ]; }
tp_wait_for "11 s of waiting" 20 waited_11s
check "/healthz answers 200 while the assignment waits for Redis" \
    curl -sf "http://127.0.0.1:$port/healthz" -o /dev/null
tpd_stop "$TPD_PID"
say "stop while waiting for Redis took $TPD_STOP_MS ms"
check "SIGTERM while waiting for Redis: exit within the timeout ($TPD_STOP_MS ms)" \
    test "$TPD_STOP_MS" -lt "$shutdown_timeout_ms"
check "...with exit status 1, nothing written ($TPD_RC)" test "$TPD_RC" -eq 1
check "...and the offsets Kafka holds for the group did not move" \
    test "$(group_offsets sigterm)" = "$committed_before"
finish
