#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves a Redis at its memory limit (maxmemory with the noeviction policy)
# loses and double-counts nothing. Redis refuses a write command when it is
# over the limit, but a Lua script that has already written once may go on
# writing; a flush is several script calls in one MULTI/EXEC, so a flush that
# met the limit part-way could record its offsets without its aggregates
# (those events never counted) unless Redis refuses the whole transaction.
# First, flush.lua alone: a transaction queued under the limit whose EXEC
# finds Redis over it must apply nothing (not the offsets of a `live` whose
# first write, a ZREM, Redis allows). Then the service: the limit is set a
# little above what Redis holds before touchpointd starts, so flushes meet
# the limit from the first or second on. touchpointd
# must log the failure, stay up, move no recorded offset while refused, and
# once the limit is lifted send its state again: every KPI and live gauge then
# equals the independent truth.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

events=200000

tp_start_redis "$dir/redis"

# ---- flush.lua: a transaction that meets the limit at EXEC ----------------
r CONFIG SET maxmemory-policy noeviction >/dev/null
sha=$(r SCRIPT LOAD "$(cat processor/flush.lua)")
r ZADD 'tp:{acme}:oldest:chat:a' 1 0/c1 >/dev/null
exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT"
# live: no gauges, the wait 0/c1 of acme chat:a ended, offset 100 recorded.
printf 'MULTI\r\nEVALSHA %s 0 live tp 1 0 1 acme chat a 0/c1 -1 tp:offsets:probe 1 touchpoints/0 100\r\n' \
    "$sha" >&3
queued() { r CLIENT LIST | grep -q ' flags=x .* multi=1 '; }
require "the flush is queued" tp_wait_for "the queued EVALSHA" 10 queued
r CONFIG SET maxmemory 1 >/dev/null
printf 'EXEC\r\n' >&3
read -r -t 10 line <&3 || line="(no reply)" # +OK of MULTI
read -r -t 10 line <&3 || line="(no reply)" # +QUEUED
read -r -t 10 line <&3 || line="(no reply)" # EXEC's reply
exec 3>&-
r CONFIG SET maxmemory 0 >/dev/null
say "EXEC over the limit: ${line%$'\r'}"
check "Redis refuses the transaction as a whole (EXECABORT)" \
    grep -q '^-EXECABORT' <<<"$line"
check "no offset is recorded by a refused transaction" \
    test -z "$(r HGET tp:offsets:probe touchpoints/0)"
check "the wait it would have removed is still there" \
    test "$(r ZSCORE 'tp:{acme}:oldest:chat:a' 0/c1)" = 1
r FLUSHALL >/dev/null

# ---- the service ------------------------------------------------------------
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 2
tp_create_topic touchpoints.dlq 1

"$bin"/tpgen --seed 82 --count "$events" --span 4m \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err"
total=$(tp_topic_count touchpoints)
check "the backlog is in the topic ($total messages)" test "$total" -eq "$events"

used=$(r INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
r CONFIG SET maxmemory $((used + 1024 * 1024)) >/dev/null
say "maxmemory set to $((used + 1024 * 1024)) bytes ($used in use)"

tpd_config "$dir/run.yaml" oom touchpoints
tpd_start first "$dir/run.yaml"
pid=$TPD_PID

# Failed Redis calls so far, from the last stats line (every 5 s); the
# first failed flush is logged, its retries are counted.
failures() {
    sed -n 's/.*component=stats.* redis_errors=\([0-9]*\).*/\1/p' \
        "$dir/first.err" | tail -n 1 | grep . || echo 0
}
oom_logged() { grep -q 'flush failed.*OOM' "$dir/first.err"; }
require "Redis refuses a flush for memory" \
    tp_wait_for "a flush refused for memory" 60 oom_logged
say "injected: Redis over maxmemory at $(elapsed_s) s:" \
    "$(grep -m 1 'flush failed.*OOM' "$dir/first.err" | cut -c 1-300)"
check "touchpointd stays up while Redis refuses" tp__alive "$pid"
# Offsets move only with a flush that was applied whole; none is now, so
# they stay where they are across two more refused flushes.
at=$(recorded oom)
seen=$(failures)
more_refused() { [ "$(failures)" -ge $((seen + 2)) ]; }
check "two more flushes are refused" \
    tp_wait_for "two more refused flushes" 60 more_refused
check "no offsets move while Redis is over its limit ($at)" \
    test "$(recorded oom)" -eq "$at"
check "the backlog is not recorded whole yet" test "$at" -lt "$total"

r CONFIG SET maxmemory 0 >/dev/null
say "limit lifted at $(elapsed_s) s"
rc=0
wait_drained oom "$total" 120 60 "$pid" || rc=$?
check "after the limit is lifted the backlog is recorded whole" test "$rc" -eq 0
recovered() { grep -q 'flush succeeded again' "$dir/first.err"; }
check "the store logged its recovery" tp_wait_for "the recovery" 10 recovered
live_min=$(now_ms)
tpd_stop "$pid"
live_max=$(now_ms)
check "SIGTERM: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
finish
