#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves touchpointd's memory is bounded by its configured caps under hostile
# cardinality: 5,000,000 events produced as fast as possible over 2,016
# tenants x 50 channels x 20 queues, with hundreds of thousands of
# conversations that never close, against low caps (limits.max_tenants 500,
# max_dims_per_tenant 50, max_open_correlations 200000, max_pending_cells
# 50000, dedupe_capacity 500000). The peak resident set stays under a bound
# derived from those caps, every overflow is counted (tenant_limit rejections,
# folded dimensions, evicted correlations), the caps hold in Redis, and
# nothing crashes: SIGTERM exits 0. Exact KPIs are not checked: the caps
# change the numbers by design.
set -euo pipefail
# shellcheck source=tests/faults/common.sh
. "$(dirname "$0")/common.sh"

events=5000000
lists=32 # tpgen takes at most 64 tenants a run: 32 lists of 63 tenants
rounds=5 # every round produces for all 2,016 tenants, 1,000,000 events:
heavy=87500 # to each of lists 0-7 (the first 504 tenants seen: admitted)
light=12500 # to each of lists 8-31 (past max_tenants: rejected)
max_tenants=500
max_dims=50
max_open=200000
max_cells=50000
dedupe_cap=500000
channels="phone,voice,call,email,mail,chat,webchat,livechat,$(seq -f 'ch%02g' 1 42 | paste -sd,)"
queues=$(seq -f 'q%02g' 1 20 | paste -sd,)

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1

TPD_KAFKA_EXTRA="  queued.max.messages.kbytes: 16384"
tpd_config "$dir/run.yaml" memory touchpoints "limits:
  max_tenants: $max_tenants
  max_dims_per_tenant: $max_dims
  max_open_correlations: $max_open
  max_pending_cells: $max_cells
  dedupe_capacity: $dedupe_cap"

tpd_start run "$dir/run.yaml"
pid=$TPD_PID
say "injecting: $events events, $((lists * 63)) tenants x 50 channels x 20 queues," \
    "produced without rate limit while touchpointd consumes"

# Round r, list k: its own seed (distinct event ids) and the 63 tenants of
# list k; four producers at a time. Every round covers every tenant, so the
# tenant cap is met at once and hit all along; the admitted tenants carry
# most of the traffic, so open correlations pass their cap too. Every
# session spans 3 minutes of event time ending now: waits that would end
# later stay open.
produce() { # ROUND LIST
    local tenants count=$light
    [ "$2" -ge 8 ] || count=$heavy
    tenants=$(seq -f "t$2-%02g" 1 63 | paste -sd,)
    "$bin"/tpgen --seed $((1000 + $1 * 100 + $2)) --count "$count" --span 3m \
        --tenants "$tenants" --channels "$channels" --queues "$queues" \
        --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints 2>>"$dir/tpgen.err"
}
gen_failed=0
for ((round = 0; round < rounds; round++)); do
    for ((k = 0; k < lists; k += 4)); do
        batch=()
        for ((j = k; j < k + 4; j++)); do
            produce "$round" "$j" &
            batch+=("$!")
            fault_pids+=("$!")
        done
        for p in "${batch[@]}"; do
            wait "$p" || gen_failed=$((gen_failed + 1))
        done
    done
done
say "produced in $(elapsed_s) s since the start of the test"
check "all $((lists * rounds)) producer runs delivered (tpgen exit 0)" \
    test "$gen_failed" -eq 0
total=$(tp_topic_count touchpoints)
check "the topic holds the $events events ($total)" test "$total" -eq "$events"

rc=0
wait_drained memory "$total" 300 90 "$pid" || rc=$?
check "touchpointd consumed all $total messages ($(elapsed_s) s into the test)" \
    test "$rc" -eq 0
require "touchpointd stayed alive throughout" tp__alive "$pid"
hwm_kb=$(rss_kb "$pid" VmHWM)
rss_end_kb=$(rss_kb "$pid" VmRSS)
tpd_stop "$pid"
check "SIGTERM: exit status 0 ($TPD_RC) within 10 s ($TPD_STOP_MS ms)" \
    test "$TPD_RC" -eq 0 -a "$TPD_STOP_MS" -lt 10000

# The bound, from the caps (bytes per item generous, doubled where a flush
# holds a second copy):
#   open correlations: a 16-byte record, its index slot, its 16-byte place
#     in the eviction ranking and the persisted state's line in the flush
#     being written: 300 B each;
#   dedupe: a 16-byte ring entry and its map slot: 64 B each;
#   pending cells: a 240-byte cell with two sketches (<= 800 bins of 4 B)
#     plus the roll-up scratch and the flush command text: 16 kB each;
#   dimensions: tenants x dims names: 200 B each;
#   librdkafka: prefetch capped at 16 MB, the dead-letter producer's queue
#     of one flush interval, buffers: 96 MB;
#   the binary, libraries, allocator slack: 64 MB.
bound_kb=$(((max_open * 300 + dedupe_cap * 64 + max_cells * 16384 +
    max_tenants * max_dims * 200) / 1024 + (96 + 64) * 1024))
say "peak RSS (VmHWM) ${hwm_kb} kB, RSS at the end ${rss_end_kb} kB;" \
    "bound derived from the caps ${bound_kb} kB"
check "peak RSS ${hwm_kb} kB stays under the bound ${bound_kb} kB" \
    test "${hwm_kb:-999999999}" -lt "$bound_kb"

log=$dir/run.err
folded=$(summary_count "$log" folded)
evicted=$(summary_count "$log" evicted)
tenant_limit=$(sed -n 's/^  rejected .*tenant_limit \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
say "run summary: folded $folded, evicted $evicted, rejected tenant_limit ${tenant_limit:-0}"
check "events of dimensions past max_dims_per_tenant were folded (folded $folded)" \
    test "${folded/none/0}" -gt 0
check "correlations past max_open_correlations were evicted (evicted $evicted)" \
    test "${evicted/none/0}" -gt 0
check "tenants past max_tenants were rejected (tenant_limit ${tenant_limit:-0})" \
    test "${tenant_limit:-0}" -gt 0
ntenants=$(r SCARD tp:tenants)
check "Redis knows at most $max_tenants tenants ($ntenants)" \
    test "$ntenants" -le "$max_tenants" -a "$ntenants" -gt 0
maxdims=0
while read -r t; do
    n=$(r SCARD "tp:{$t}:dims")
    [ "$n" -le "$maxdims" ] || maxdims=$n
done < <(r SMEMBERS tp:tenants)
check "no tenant has more than $max_dims dims plus _other:_other ($maxdims)" \
    test "$maxdims" -le $((max_dims + 1))
finish
