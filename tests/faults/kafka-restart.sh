#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves touchpointd rides out a Kafka broker restart: mid-stream the single
# broker is stopped (clean shutdown) and started again on the same ports and
# data; touchpointd stays up, resumes consuming once the broker is back, and
# the final aggregates and live gauges equal the independent truth exactly.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

rate=5000
events=250000 # 50 s of stream: before, during and after the restart

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1

tpd_config "$dir/run.yaml" krestart touchpoints

# The producer must outlast the broker's absence without losing, repeating or
# reordering anything: idempotent, a long delivery timeout, a queue that
# holds the whole outage.
"$bin"/tpgen --seed 31 --rate "$rate" --count "$events" \
    -X enable.idempotence=true -X message.timeout.ms=180000 \
    -X queue.buffering.max.messages=1000000 \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
tpd_start run "$dir/run.yaml"
pid=$TPD_PID

tp_wait_for "touchpointd to record 50000 offsets" 60 recorded_above krestart 50000
before=$(recorded krestart)
say "injecting: Kafka broker restart at $(elapsed_s) s, $before offsets recorded"
t0=$(now_ms)
tp_restart_kafka
say "broker back after $(($(now_ms) - t0)) ms"
check "touchpointd stayed alive while the broker was away" tp__alive "$pid"

at_restart=$(recorded krestart)
rc=0
tp_wait_for "touchpointd to consume again after the broker restart" 60 \
    recorded_above krestart "$at_restart" || rc=$?
require "touchpointd resumed consuming after the restart" test "$rc" -eq 0

gen_rc=0
wait "$gen_pid" || gen_rc=$?
check "producer delivered every event across the restart (tpgen exit 0)" \
    test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
check "the topic holds exactly the $events events ($total)" test "$total" -eq "$events"
rc=0
wait_drained krestart "$total" 180 60 "$pid" || rc=$?
check "touchpointd drained the topic" test "$rc" -eq 0
live_min=$(now_ms)
tpd_stop "$pid"
live_max=$(now_ms)
check "SIGTERM: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "SIGTERM: left within 10 s ($TPD_STOP_MS ms)" test "$TPD_STOP_MS" -lt 10000
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
check "run summary: no orphan ends" \
    test "$(summary_count "$dir/run.err" orphan_ends)" = 0
finish
