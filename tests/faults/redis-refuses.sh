#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves a flush Redis refuses part-way through loses and double-counts
# nothing. The big commands of a flush (a correlation log goes in chunks of
# 1 MiB plus a line) are written to the socket by touchpointd itself, not by
# hiredis (store.c, write_direct); here Redis takes bulk arguments of at most
# 1 MiB (proto-max-bulk-len at its least), so it answers such a chunk with a
# protocol error and closes the connection while the flush is being sent.
# touchpointd must log the failure, stay up, apply nothing meanwhile (the
# MULTI never reaches its EXEC), and once the limit is raised send the same
# flush again: every KPI and live gauge then equals the independent truth.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

# A backlog of 400,000 events over 2 partitions: the first flush carries the
# correlations left open in each, well past 1 MiB of log per partition.
events=400000

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 2
tp_create_topic touchpoints.dlq 1
r CONFIG SET proto-max-bulk-len 1mb >/dev/null

"$bin"/tpgen --seed 81 --count "$events" --span 4m \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err"
total=$(tp_topic_count touchpoints)
check "the backlog is in the topic ($total messages)" test "$total" -eq "$events"

tpd_config "$dir/run.yaml" refuse touchpoints
tpd_start first "$dir/run.yaml"
pid=$TPD_PID

flush_failed() { grep -q 'flush failed' "$dir/first.err"; }
tp_wait_for "a flush to fail" 60 flush_failed
say "injected: Redis refused a flush at $(elapsed_s) s:" \
    "$(grep -m 1 'flush failed' "$dir/first.err" | cut -c 1-300)"
check "the refused flush is logged as failed, state kept" flush_failed
check "Redis closed the connection on the oversized argument" \
    grep -q 'flush failed.*\(Connection reset\|Broken pipe\|closed\|Protocol error\)' \
    "$dir/first.err"
check "touchpointd stays up while Redis refuses" tp__alive "$pid"
check "no offsets were recorded: nothing of the refused flush applied" \
    test "$(recorded refuse)" -eq 0

r CONFIG SET proto-max-bulk-len 512mb >/dev/null
say "limit raised at $(elapsed_s) s"
rc=0
wait_drained refuse "$total" 120 60 "$pid" || rc=$?
check "after the limit is raised the backlog is recorded whole" test "$rc" -eq 0
# (logged once the reply is read: a moment after Redis shows the offsets)
recovered() { grep -q 'flush succeeded again' "$dir/first.err"; }
check "the store logged its recovery" tp_wait_for "the recovery" 10 recovered
live_min=$(now_ms)
tpd_stop "$pid"
live_max=$(now_ms)
check "SIGTERM: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
finish
