#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the exactly-once effect survives crashes: a live keyed stream of
# 1,000,000 events flows into a 4-partition topic while touchpointd is killed
# with SIGKILL at random moments at least 20 times and restarted each time
# (static membership, so the new process takes its partitions back at once).
# Once the producer is done and the last instance has drained the topic, every
# KPI count and sum and every live gauge equals the independent truth
# (kpi_truth), and SIGTERM exits 0. Prints the number of kills and the time.
#
# FAULT_SEED=N repeats the same kill moments (bash $RANDOM seed).
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

kills_min=20
events=1000000
# 40 s of stream. A restarted instance needs 1.5-4 s to rejoin, restore its
# open correlations from Redis and flush once, so at 40,000/s (25 s) most
# of the 20 kills would come after the stream; at 25,000/s they fall inside.
rate=25000
seed=${FAULT_SEED:-$$}
RANDOM=$seed

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1

# Static membership: a restarted instance rejoins as the same member and gets
# its partitions back without waiting out the session of the killed one.
TPD_KAFKA_EXTRA="  group.instance.id: fault-1
  session.timeout.ms: 6000"
tpd_config "$dir/run.yaml" kill9 touchpoints

# A live stream: occurred_at is the wall clock at emission, so all events
# stay inside the 5m window while the test runs (checked at the end).
stream_t0=$(now_ms)
"$bin"/tpgen --seed 11 --rate "$rate" --count "$events" \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
say "injecting: $events keyed events at $rate/s into 4 partitions;" \
    "SIGKILL touchpointd at random moments >= $kills_min times (seed $seed)"

# Kill loop. A life ends with SIGKILL at a random moment 0.3-3 s after its
# start: while it joins the group, restores state from Redis, consumes or
# flushes. A life that was killed before it recorded any progress is
# followed by one that first waits for progress and then dies within a
# random 0-1 s, so at least every other kill hits an instance that is
# consuming and flushing.

# life_up OFFSET_SUM ASSIGNED_LINES: the life started when the recorded offsets
# were OFFSET_SUM and the log held ASSIGNED_LINES assignments has moved the
# offsets on, or (nothing left to consume) has taken its partitions.
life_up() {
    recorded_above kill9 "$1" && return 0
    [ "$(grep -c 'assigned touchpoints/' "$dir/run.err")" -gt "$2" ] &&
        drained kill9 "$(tp_topic_count touchpoints)"
}

# random_s R LO HI: seconds in [LO, HI) from R, a $RANDOM drawn by the
# caller (a subshell would draw from a reseeded generator).
random_s() {
    awk -v r="$1" -v lo="$2" -v hi="$3" \
        'BEGIN { printf "%.3f", lo + r / 32768 * (hi - lo) }'
}

: >>"$dir/run.err"
kills=0
kills_working=0 # kills of an instance that had recorded progress
kills_backlog=0 # kills while the topic still held unconsumed messages
kills_streaming=0 # kills while the producer was still running
kills_mid=0 # kills while the producer ran or a backlog was left
need_progress=0
while [ "$kills" -lt "$kills_min" ]; do
    before=$(recorded kill9)
    assigned=$(grep -c 'assigned touchpoints/' "$dir/run.err" || true)
    life_t0=$(now_ms)
    tpd_start run "$dir/run.yaml"
    if [ "$need_progress" = 1 ]; then
        if ! tp_wait_for "life $((kills + 1)) to make progress past offset sum $before" 60 \
            life_up "$before" "$assigned"; then
            kill -KILL "$TPD_PID"
            wait "$TPD_PID" 2>/dev/null || true
            require "instance $((kills + 1)) made progress after a restart" false
        fi
        delay=$(random_s "$RANDOM" 0 1)
    else
        delay=$(random_s "$RANDOM" 0.3 3)
    fi
    # Random kill moment: the randomness is the point here, not a wait for
    # a condition.
    sleep "$delay"
    produced=$(tp_topic_count touchpoints)
    done_now=$(recorded kill9)
    streaming=0
    tp__alive "$gen_pid" && streaming=1
    kill -KILL "$TPD_PID"
    wait "$TPD_PID" 2>/dev/null || true
    kills=$((kills + 1))
    kills_streaming=$((kills_streaming + streaming))
    backlog=0
    [ "$done_now" -ge "$produced" ] || backlog=1
    kills_backlog=$((kills_backlog + backlog))
    [ $((streaming + backlog)) -eq 0 ] || kills_mid=$((kills_mid + 1))
    if [ "$done_now" -gt "$before" ]; then
        kills_working=$((kills_working + 1))
        need_progress=0
        what="after progress"
    else
        need_progress=1
        what="before any progress"
    fi
    say "kill $kills at $(elapsed_s) s, $(($(now_ms) - life_t0)) ms into the life," \
        "$what; recorded $done_now of $produced produced"
done
gen_rc=0
wait "$gen_pid" || gen_rc=$?
say "killed touchpointd with SIGKILL $kills times, $(elapsed_s) s into the test:" \
    "$kills_streaming while the producer ran, $kills_backlog with a backlog," \
    "$kills_working after the instance had recorded progress"
check "producer delivered every event (tpgen exit 0)" test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
check "the topic holds the $events events ($total)" test "$total" -eq "$events"
check "touchpointd was SIGKILLed at least $kills_min times ($kills)" \
    test "$kills" -ge "$kills_min"
check "3/4 of the kills came mid-stream: producer running or a backlog ($kills_mid)" \
    test $((kills_mid * 4)) -ge $((kills * 3))
check "2/5 of the kills hit an instance that had consumed and flushed ($kills_working)" \
    test $((kills_working * 5)) -ge $((kills * 2))

# The last instance takes its partitions back and drains the rest.
assigned=$(grep -c 'assigned touchpoints/' "$dir/run.err" || true)
tpd_start run "$dir/run.yaml"
last=$TPD_PID
echo "--- last instance" >>"$dir/run.err"
last_assigned() {
    [ "$(grep -c 'assigned touchpoints/' "$dir/run.err")" -gt "$assigned" ]
}
drain_rc=0
tp_wait_for "the last instance to take its partitions" 60 last_assigned ||
    drain_rc=$?
[ "$drain_rc" -ne 0 ] || wait_drained kill9 "$total" 180 60 "$last" || drain_rc=$?
check "the last instance drained the topic (offsets recorded in Redis)" \
    test "$drain_rc" -eq 0
live_min=$(now_ms)
tpd_stop "$last"
live_max=$(now_ms)
check "SIGTERM: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "SIGTERM: left within 10 s ($TPD_STOP_MS ms)" test "$TPD_STOP_MS" -lt 10000
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
orphans=$(awk '/^--- last instance/ { on = 1 } on && $1 == "orphan_ends" { print $2 }' \
    "$dir/run.err")
check "the last instance found no orphan ends (${orphans:-none})" \
    test "${orphans:-x}" = 0
span_s=$(((live_max - stream_t0) / 1000))
check "the stream start to the final check took ${span_s} s, well inside the 5m window" \
    test "$span_s" -lt 240
finish
