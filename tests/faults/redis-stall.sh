#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves a flush whose outcome the client never learns is not applied twice:
# mid-stream, redis-server is frozen (SIGSTOP) for 12 s, longer than
# redis.timeout (5 s). touchpointd's flush, already sent, times out, so it
# keeps the state and retries; Redis, thawed (SIGCONT), then executes the
# buffered transaction anyway. Exactly once means the retry must not add the
# same deltas again: every KPI and live gauge equals the independent truth.
# Then a second instance is stopped while Redis is frozen: it exits 1 within
# service.shutdown_timeout, having written nothing.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

stall_s=12
# The ambiguous case needs the timed-out flush to reach Redis whole. Redis
# reads a client's input 16 kB at a time and answers between reads; its
# first answer to the closed socket draws a reset that discards the rest,
# and a MULTI without its EXEC is dropped. A slow stream keeps each flush
# under 16 kB (about 8 kB a second at 50 events/s), so it is read - and
# executed - in one go.
rate=50
shutdown_timeout_ms=10000 # tpd_config's service.shutdown_timeout

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
tpd_config "$dir/run.yaml" rstall touchpoints # redis.timeout: 5s (default)

# An endless live stream, stopped once touchpointd consumes again.
"$bin"/tpgen --seed 71 --rate "$rate" --count 0 \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
tpd_start run "$dir/run.yaml"
pid=$TPD_PID

tp_wait_for "touchpointd to record 500 offsets" 60 recorded_above rstall 500
say "injecting: redis-server frozen (SIGSTOP) for $stall_s s at $(elapsed_s) s," \
    "$(recorded rstall) offsets recorded"
kill -STOP "$REDIS_PID"
# The stall's length is the injected fault, not a wait for anything.
sleep "$stall_s"
kill -CONT "$REDIS_PID"
say "redis-server thawed at $(elapsed_s) s"
check "touchpointd stayed alive through the stall" tp__alive "$pid"
check "the stall made a flush time out (logged once as 'flush failed')" \
    test "$(grep -c 'level=error.*flush failed' "$dir/run.err" || true)" -eq 1

resume_from=$(recorded rstall)
rc=0
tp_wait_for "touchpointd to consume 500 more messages" 90 \
    recorded_above rstall $((resume_from + 500)) || rc=$?
check "touchpointd consumed the stream again after the stall" test "$rc" -eq 0
kill -TERM "$gen_pid"
gen_rc=0
wait "$gen_pid" || gen_rc=$?
check "producer delivered every event (tpgen exit 0)" test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
rc=0
wait_drained rstall "$total" 180 60 "$pid" || rc=$?
check "touchpointd drained the topic ($total messages)" test "$rc" -eq 0
live_min=$(now_ms)
tpd_stop "$pid"
live_max=$(now_ms)
check "SIGTERM: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "a resent flush found its first attempt applied and applied nothing" \
    grep -q 'previous attempt of this flush had been applied' "$dir/run.err"
check "every KPI count, sum and live gauge equals the truth: no delta applied twice" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"

# SIGTERM while Redis is frozen: nothing can be written, so the shutdown
# gives up once service.shutdown_timeout has passed - no Redis call, the
# flush in flight included, outlasting it - and exits 1; the next owner
# re-reads from the recorded offsets.
flushed_once() {
    grep -q 'component=stats.* flushes=[1-9]' "$dir/second.err"
}
offsets_before=$(recorded rstall)
live_min=$(now_ms)
tpd_start second "$dir/run.yaml"
pid=$TPD_PID
tp_wait_for "the second instance to apply a flush" 60 flushed_once
say "injecting: redis-server frozen (SIGSTOP) at $(elapsed_s) s, then SIGTERM"
kill -STOP "$REDIS_PID"
t0=$(now_ms)
kill -TERM "$pid"
tpd_stop "$pid" "$t0"
kill -CONT "$REDIS_PID"
live_max=$(now_ms)
say "shutdown took $TPD_STOP_MS ms (service.shutdown_timeout ${shutdown_timeout_ms} ms)"
check "SIGTERM with Redis frozen: exit status 1, the state not written ($TPD_RC)" \
    test "$TPD_RC" -eq 1
check "SIGTERM with Redis frozen: exited within service.shutdown_timeout ($TPD_STOP_MS ms)" \
    test "$TPD_STOP_MS" -lt "$shutdown_timeout_ms"
check "the log says the pending state was not written" \
    grep -q 'shutdown: pending state not written' "$dir/second.err"
check "the recorded offsets did not move ($(recorded rstall))" \
    test "$(recorded rstall)" -eq "$offsets_before"
check "every KPI count, sum and live gauge still equals the truth" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
finish
