#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the flush guard fences a zombie: instance a is frozen (SIGSTOP) for
# longer than its session timeout while it holds consumed, unwritten events;
# the group gives its partitions to instance b, which resumes from the offsets
# Redis records and moves them on. Thawed, a still holds its old batch and
# tries to write it: Redis must refuse it (the offsets it starts from are no
# longer recorded) and a must exit without writing anything. b drains the
# topic and every KPI equals the independent truth: nothing counted twice.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

stall_s=15 # > session.timeout.ms (6 s): the group evicts a
rate=4000

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
TPD_KAFKA_EXTRA="  session.timeout.ms: 6000
  heartbeat.interval.ms: 1000"
tpd_config "$dir/run.yaml" zombie touchpoints

"$bin"/tpgen --seed 83 --rate "$rate" --count 0 \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
tpd_start a "$dir/run.yaml"
a_pid=$TPD_PID

tp_wait_for "instance a to record 5000 offsets" 60 recorded_above zombie 5000
say "injecting: instance a frozen (SIGSTOP) for $stall_s s at $(elapsed_s) s" \
    "with $(recorded zombie) offsets recorded; instance b started"
kill -STOP "$a_pid"
tpd_start b "$dir/run.yaml"
b_pid=$TPD_PID
frozen_at=$(recorded zombie)
tp_wait_for "instance b to take the partitions and record offsets" 60 \
    recorded_above zombie $((frozen_at + 5000))
# The freeze's length is the injected fault, not a wait for anything.
sleep "$stall_s"
kill -CONT "$a_pid"
say "instance a thawed at $(elapsed_s) s"

a_gone() { ! tp__alive "$a_pid"; }
rc=0
tp_wait_for "instance a to stop" 60 a_gone || rc=$?
check "the thawed zombie stopped by itself" test "$rc" -eq 0
if tp__alive "$a_pid"; then
    kill -KILL "$a_pid" # it did not stop: it is part of the failure
fi
a_rc=0
wait "$a_pid" || a_rc=$?
check "the zombie exited with an error status ($a_rc)" test "$a_rc" -ne 0
check "Redis refused the zombie's stale flush (logged 'flush refused, conflict')" \
    grep -q 'flush refused, conflict' "$dir/a.err"

kill -TERM "$gen_pid"
gen_rc=0
wait "$gen_pid" || gen_rc=$?
check "producer delivered every event (tpgen exit 0)" test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
rc=0
wait_drained zombie "$total" 180 60 "$b_pid" || rc=$?
check "instance b drained the topic ($total messages)" test "$rc" -eq 0
live_min=$(now_ms)
tpd_stop "$b_pid"
live_max=$(now_ms)
check "instance b: SIGTERM exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "every KPI count, sum and live gauge equals the truth: the zombie's batch counted nowhere" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
finish
