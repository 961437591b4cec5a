#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves touchpointd rides out a Redis outage: mid-stream, redis-server is
# stopped for 30 s and started again (it reloads its AOF). touchpointd stays
# alive throughout, logs the failure once, pauses consumption when its pending
# aggregate cells reach limits.max_pending_cells (so memory stays bounded: the
# peak resident set is measured against a bound derived from that cap),
# resumes when Redis is back, and the final aggregates and live gauges equal
# the independent truth exactly.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

outage_s=30
rate=3000
max_cells=150
# Dimensions wide enough that the pending cells pass the cap during the
# outage but not in normal operation: 2 tenants x 10 channels x 5 queues =
# 100 leaf rows; a cell is a row in a 1-minute bucket, so a 1 s flush holds
# at most ~100 cells, an outage that spans a minute boundary ~200.
tenants=t1,t2
channels=phone,chat,email,whatsapp,instagram,sms,voice,webchat,messenger,telegram
queues=q1,q2,q3,q4,q5

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1

# librdkafka's prefetch queue is capped too (16 MB instead of 64 MB), so the
# memory bound below is not dominated by the Kafka client.
TPD_KAFKA_EXTRA="  queued.max.messages.kbytes: 16384"
tpd_config "$dir/run.yaml" rdown touchpoints "limits:
  max_pending_cells: $max_cells"

# An endless live stream, stopped (SIGTERM; it then delivers what it has
# and exits 0) once touchpointd is consuming again after the outage.
"$bin"/tpgen --seed 21 --rate "$rate" --count 0 \
    --tenants "$tenants" --channels "$channels" --queues "$queues" \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints \
    --valid-out "$dir/valid.ndjson" 2>"$dir/tpgen.err" &
gen_pid=$!
fault_pids+=("$gen_pid")
tpd_start run "$dir/run.yaml"
pid=$TPD_PID

# outage_can_start: touchpointd has consumed a good part of the stream, and
# the wall clock is at second 30-44 of a minute, so the outage spans a
# minute boundary (two event-time buckets pending: the cap is reached).
outage_can_start() {
    local sec
    sec=$(date +%S)
    recorded_above rdown 15000 && [ "${sec#0}" -ge 30 ] && [ "${sec#0}" -lt 45 ]
}
tp_wait_for "progress, and second 30-44 of a minute" 90 outage_can_start
base_kb=$(rss_kb "$pid" VmRSS)
consumed_before=$(recorded rdown)
say "injecting: redis-server stopped for $outage_s s at $(elapsed_s) s" \
    "($(date +%T)), $consumed_before offsets recorded, touchpointd RSS ${base_kb} kB"
tp_stop_redis

# The outage. Its length is the injected fault, not a wait for anything; the
# process is sampled every 0.5 s meanwhile.
alive_samples=0
dead_samples=0
peak_outage_kb=0
outage_end=$(tp__deadline "$outage_s")
while tp__before "$outage_end"; do
    if tp__alive "$pid"; then
        alive_samples=$((alive_samples + 1))
        kb=$(rss_kb "$pid" VmRSS)
        [ "${kb:-0}" -le "$peak_outage_kb" ] || peak_outage_kb=$kb
    else
        dead_samples=$((dead_samples + 1))
    fi
    sleep 0.5 # sampling period
done
produced_during=$(tp_topic_count touchpoints)
hwm_outage_kb=$(rss_kb "$pid" VmHWM)
tp_restart_redis
back_ms=$(now_ms)
say "redis-server back at $(elapsed_s) s (AOF reloaded); the topic holds" \
    "$produced_during messages, $((produced_during - consumed_before)) past" \
    "the recorded offsets"
check "touchpointd stayed alive throughout the outage ($alive_samples samples)" \
    test "$dead_samples" -eq 0 -a "$alive_samples" -gt 0
check "Redis kept the recorded offsets across its restart (AOF)" \
    test "$(recorded rdown)" -ge "$consumed_before"
check "consumption paused at the pending-cell cap during the outage" \
    grep -q 'paused consumption' "$dir/run.err"

resume_from=$(recorded rdown)
rc=0
tp_wait_for "touchpointd to flush again after the outage" 60 \
    recorded_above rdown "$resume_from" || rc=$?
say "first flush $(($(now_ms) - back_ms)) ms after Redis was back (retry backoff)"
require "touchpointd resumed flushing after Redis came back" test "$rc" -eq 0
rc=0
tp_wait_for "touchpointd to consume 30000 more messages" 90 \
    recorded_above rdown $((resume_from + 30000)) || rc=$?
check "touchpointd consumed the stream again after the outage" test "$rc" -eq 0

kill -TERM "$gen_pid"
gen_rc=0
wait "$gen_pid" || gen_rc=$?
check "producer delivered every event (tpgen exit 0)" test "$gen_rc" -eq 0
total=$(tp_topic_count touchpoints)
valid=$(wc -l <"$dir/valid.ndjson")
check "the topic holds the $valid events produced ($total)" test "$total" -eq "$valid"
rc=0
wait_drained rdown "$total" 180 60 "$pid" || rc=$?
check "touchpointd drained the topic ($total messages)" test "$rc" -eq 0
live_min=$(now_ms)
hwm_kb=$(rss_kb "$pid" VmHWM)
tpd_stop "$pid"
live_max=$(now_ms)
check "SIGTERM: exit status 0 ($TPD_RC)" test "$TPD_RC" -eq 0
check "every KPI count, sum and live gauge equals the truth (kpi_truth)" \
    truth "$dir/valid.ndjson" "$live_min" "$live_max"

failed_lines=$(grep -c 'level=error.*flush failed' "$dir/run.err" || true)
check "the outage was logged once: one 'flush failed' error line ($failed_lines)" \
    test "$failed_lines" -eq 1
check "the recovery was logged: 'flush succeeded again'" \
    grep -q 'flush succeeded again' "$dir/run.err"

# The memory bound. While Redis is away, what may grow is the pending state:
# at most max_pending_cells leaf cells, each an agg_cell (~240 bytes) with
# two sketches of at most ~800 bins of 4 bytes, and as much again for the
# roll-up scratch of a flush attempt: 16 kB a cell, generously; plus 32 MB
# for librdkafka's prefetch queue (capped at 16 MB above) and allocator
# slack, on top of the resident set just before the outage. Without the
# pause, the ~90,000 events of the outage would be consumed and held.
bound_kb=$((base_kb + max_cells * 16 + 32 * 1024))
say "RSS: before the outage ${base_kb} kB, peak sampled during the outage" \
    "${peak_outage_kb} kB, VmHWM at the end of the outage ${hwm_outage_kb} kB" \
    "(bound ${bound_kb} kB from max_pending_cells $max_cells);" \
    "VmHWM over the whole run, catch-up included, ${hwm_kb} kB"
check "peak RSS up to the end of the outage (${hwm_outage_kb} kB) stays under ${bound_kb} kB" \
    test "$hwm_outage_kb" -lt "$bound_kb"
finish
