#!/usr/bin/env bash
# `make demo`: starts a local redis-server and Kafka broker, streams generated
# touchpoints (with a wait spike and a detractor surge) into Kafka, runs
# touchpointd, and prints the KPIs it wrote, read back from Redis. Everything
# it started is stopped at the end. DEMO_EVENTS and DEMO_RATE size the stream.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
events=${DEMO_EVENTS:-60000}
rate=${DEMO_RATE:-2000}

echo "== starting redis-server and a single-node Kafka broker (KRaft)"
tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
echo "   redis $REDIS_URL   kafka $KAFKA_BOOTSTRAP"

cat >"$dir/demo.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: demo
redis:
  url: $REDIS_URL
http:
  port: 0
log:
  stats_interval: 5s
YAML

echo "== touchpointd run -c demo.yaml"
build/touchpointd run -c "$dir/demo.yaml" 2>"$dir/touchpointd.log" &
tpd=$!

echo "== tpgen: $events events at $rate/s, a wait spike on acme/phone/billing," \
    "a detractor surge on globex/chat/default, 50 malformed messages"
build/tpgen --seed "$RANDOM" --count "$events" --rate "$rate" \
    --incident 'wait-spike:acme/phone/billing*8' \
    --incident 'detractor-surge:globex/chat/default' --invalid 50 \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints 2>"$dir/tpgen.log" &
gen=$!

r() { redis-cli -p "$REDIS_PORT" "$@"; }
applied() { # at least N events in the KPIs of all tenants
    local n=0 t
    for t in $(r SMEMBERS tp:tenants); do
        n=$((n + $(r HGET "tp:{$t}:kpi:5m:_all:_all" events)))
    done
    [ "$n" -ge "$1" ]
}

field() { r HGET "$1" "$2" | awk '{ if ($0 == "") print "-"; else printf "%s", $0 }'; }
num() { # KEY FIELD FORMAT: a formatted number or "-"
    local v
    v=$(r HGET "$1" "$2")
    if [ -z "$v" ]; then printf -- '-'; else printf "$3" "$v"; fi
}

table() {
printf '%-8s %-10s %-9s %7s %7s %9s %7s %7s %6s %6s %7s %6s %10s\n' \
    tenant channel queue events wait_n p90_wait abandon sl_pct nps csat open_tk wait_q oldest_ms
for t in $(r SMEMBERS tp:tenants | sort); do
    for dim in $(r SMEMBERS "tp:{$t}:dims" | sort) _all:_all; do
        k="tp:{$t}:kpi:5m:$dim"
        l="tp:{$t}:live:$dim"
        printf '%-8s %-10s %-9s %7s %7s %9s %7s %7s %6s %6s %7s %6s %10s\n' \
            "$t" "${dim%%:*}" "${dim#*:}" "$(field "$k" events)" \
            "$(field "$k" wait_n)" "$(num "$k" wait_p90_ms %.0f)" \
            "$(num "$k" abandon_rate %.3f)" "$(num "$k" sl_pct %.3f)" \
            "$(num "$k" nps %.1f)" "$(num "$k" csat_pct %.3f)" \
            "$(field "$l" open_tickets)" "$(field "$l" waiting_calls)" \
            "$(field "$l" oldest_wait_ms)"
    done
done
}

tp_wait_for "the first third of the stream in Redis" 120 applied $((events / 3))
echo
echo "== KPIs while the stream flows, read back from Redis, window 5m"
echo "   (redis-cli HGETALL 'tp:{TENANT}:kpi:5m:CHANNEL:QUEUE', live gauges from 'tp:{TENANT}:live:...')"
table
wait "$gen"
total=$(tp_topic_count touchpoints)
drained() {
    [ "$(r HVALS tp:offsets:demo | awk '{ s += $1 } END { print s + 0 }')" -eq "$total" ]
}
tp_wait_for "touchpointd to apply all $total messages" 60 drained
echo
echo "== KPIs after all $total messages (the wait spike shows on acme/phone/billing," \
    "the detractor surge as a low NPS on globex/chat/default)"
table
echo
echo "== the same by hand:"
echo "   redis-cli -p $REDIS_PORT HGETALL 'tp:{acme}:kpi:5m:phone:billing'"
r HGETALL 'tp:{acme}:kpi:5m:phone:billing' | paste - - | column -t | sed 's/^/   /'
echo "   redis-cli -p $REDIS_PORT HGETALL 'tp:{acme}:live:_all:_all'"
r HGETALL 'tp:{acme}:live:_all:_all' | paste - - | column -t | sed 's/^/   /'

kill -TERM "$tpd"
wait "$tpd" || true
echo
echo "== touchpointd summary (from its log)"
sed -n '/run summary/,$p' "$dir/touchpointd.log"
