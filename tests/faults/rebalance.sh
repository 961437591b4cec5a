#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves partitions can move between instances mid-stream without losing or
# double-counting anything: three instances of one group consume an
# 8-partition topic while a keyed stream flows; a fourth joins (partitions
# move to it) and one of the original three is killed with SIGKILL (its
# partitions move to the survivors after the session timeout). After the
# stream, every KPI and live gauge equals the independent truth, no moved
# conversation closed as an orphan, and the three remaining instances exit 0
# on SIGTERM.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

rate=5000
events=300000 # 60 s of stream

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 8
tp_create_topic touchpoints.dlq 1

for name in a b c d; do
    TPD_KAFKA_EXTRA="  group.instance.id: reb-$name
  session.timeout.ms: 6000"
    tpd_config "$dir/$name.yaml" reb touchpoints
done
declare -A pid

# assigned NAME: the instance's log shows partitions assigned to it.
assigned() {
    grep -q 'assigned touchpoints/' "$dir/$1.err"
}
# all_partitions_recorded: every one of the 8 partitions has an offset in Redis.
all_partitions_recorded() {
    [ "$(r HLEN tp:offsets:reb)" -eq 8 ]
}

"$bin"/tpgen --seed 41 --rate "$rate" --count "$events" \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
for name in a b c; do
    tpd_start "$name" "$dir/$name.yaml"
    pid[$name]=$TPD_PID
done
say "started instances a, b, c in group reb (8 partitions)"
three_assigned() { assigned a && assigned b && assigned c; }
rc=0
tp_wait_for "instances a, b and c to get partitions" 60 three_assigned || rc=1
require "each of the three instances got partitions" test "$rc" -eq 0
rc=0
tp_wait_for "all 8 partitions to record offsets" 60 all_partitions_recorded || rc=1
require "all 8 partitions are consumed and recorded" test "$rc" -eq 0

mark=$(recorded reb)
say "injecting: instance d joins at $(elapsed_s) s ($mark offsets recorded)"
tpd_start d "$dir/d.yaml"
pid[d]=$TPD_PID
rc=0
tp_wait_for "instance d to get partitions" 60 assigned d || rc=1
require "the joining instance d took partitions over mid-stream" test "$rc" -eq 0
rc=0
tp_wait_for "progress after d joined" 60 recorded_above reb "$(recorded reb)" || rc=1
require "the group consumes again after d joined" test "$rc" -eq 0

mark=$(recorded reb)
produced=$(tp_topic_count touchpoints)
say "injecting: SIGKILL instance b at $(elapsed_s) s ($mark of $produced recorded)"
kill -KILL "${pid[b]}"
wait "${pid[b]}" 2>/dev/null || true
check "the producer was still running when b was killed" tp__alive "$gen_pid"

gen_rc=0
wait "$gen_pid" || gen_rc=$?
check "producer delivered every event (tpgen exit 0)" test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
rc=0
wait_drained reb "$total" 180 60 "${pid[a]}" "${pid[c]}" "${pid[d]}" || rc=$?
check "the survivors drained all 8 partitions, b's included" test "$rc" -eq 0

live_min=$(now_ms)
for name in a c d; do
    kill -TERM "${pid[$name]}"
done
for name in a c d; do
    tpd_stop "${pid[$name]}" "$live_min" # signalled above; waits, collects
    check "SIGTERM: instance $name exit status 0 ($TPD_RC), within 10 s" \
        test "$TPD_RC" -eq 0 -a "$TPD_STOP_MS" -lt 10000
done
live_max=$(now_ms)
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"
orphans=0
for name in a c d; do
    n=$(summary_count "$dir/$name.err" orphan_ends)
    say "instance $name run summary: orphan_ends $n"
    [ "$n" = 0 ] || orphans=1
done
check "no conversation that moved with its partition closed as an orphan" \
    test "$orphans" -eq 0
finish
