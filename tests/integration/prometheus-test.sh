#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves touchpointd's /metrics works with a real Prometheus: Debian's
# `prometheus` server, on a free loopback port, scrapes touchpointd every
# second while tpgen produces a live stream (valid events, malformed ones and
# duplicates) to a real Kafka broker; the test then asks Prometheus's HTTP
# API, not touchpointd, and finds the accepted, rejected and duplicate
# counters equal to what was produced, the per-reason split equal to
# touchpointd's own /metrics, and intermediate values seen while the stream
# flowed. Prometheus, like the servers, is stopped by the harness cleanup.
#
# Environment: PROM_COUNT (valid events, default 20000), PROM_RATE (events/s,
# default 4000), PROM_INVALID (default 20), PROM_DUPLICATES (default 50).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh

count=${PROM_COUNT:-20000}
rate=${PROM_RATE:-4000}
n_invalid=${PROM_INVALID:-20}
n_dup=${PROM_DUPLICATES:-50}

passed=0
failed=0
t_start=$(tp__now)
elapsed() { awk -v a="$t_start" -v b="$(tp__now)" 'BEGIN { printf "%.1f", b - a }'; }
show_logs() {
    local f
    [ -n "${dir:-}" ] || return 0
    for f in "$dir"/run.err "$dir"/prometheus/prometheus.log "$dir"/tpgen.err; do
        [ -s "$f" ] || continue
        echo "--- tail of $f"
        tail -n 20 "$f"
    done
}
finished=0
finish() {
    finished=1
    [ "$failed" -eq 0 ] || show_logs
    echo "# prometheus-test took $(elapsed)s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
# A step everything after depends on failed: stop here, say so.
bail() {
    failed=$((failed + 1))
    echo "FAIL - $*"
    finish || true
    exit 1
}

if ! command -v prometheus >/dev/null 2>&1; then
    echo "no prometheus on PATH: run make deps (tests/harness/deps.sh installs Debian's prometheus)" >&2
    bail "prometheus is installed"
fi

dir=
tpd_pid=
tp_init
dir=$(tp_workdir)
tp_cleanup_hook() {
    if [ -n "$tpd_pid" ] && kill -0 "$tpd_pid" 2>/dev/null; then
        kill -TERM "$tpd_pid" 2>/dev/null || true
        wait "$tpd_pid" 2>/dev/null || true
    fi
    # A command failed under set -e before the end: say so, in the same form.
    if [ "$finished" = 0 ]; then
        failed=$((failed + 1))
        echo "FAIL - the test stopped early (a step above failed)"
        finish || true
    fi
}

tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
echo "# servers up at $(elapsed)s: redis $REDIS_PORT, kafka $KAFKA_BOOTSTRAP"

r() { redis-cli -p "$REDIS_PORT" "$@"; }
recorded() { r HVALS tp:offsets:prom | awk '{ s += $1 } END { print s + 0 }'; }
drained() { [ "$(recorded)" -eq "$1" ]; }

# ---- touchpointd, HTTP on a port it picks -----------------------------------
cat >"$dir/run.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: prom
input:
  topics: [touchpoints]
redis:
  url: $REDIS_URL
http:
  port: 0
YAML
build/touchpointd run -c "$dir/run.yaml" 2>"$dir/run.err" &
tpd_pid=$!
http_port() {
    tp_http_port "$dir/run.err"
}
port_known() { [ -n "$(http_port)" ]; }
tp_wait_for "touchpointd to say which port serves /metrics" 20 port_known ||
    bail "touchpointd serves /metrics"
tpd_port=$(http_port)
ready() { curl -sf "http://127.0.0.1:$tpd_port/readyz" -o /dev/null; }
tp_wait_for "touchpointd /readyz to answer 200" 60 ready ||
    bail "touchpointd became ready"
echo "# touchpointd ready at $(elapsed)s, /metrics on 127.0.0.1:$tpd_port"

# ---- Prometheus ----------------------------------------------------------------
mkdir -p "$dir/prometheus/data"
prom_port=$(tp_free_port)
cat >"$dir/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: touchpointd
    static_configs:
      - targets: ['127.0.0.1:$tpd_port']
YAML
config_ok() { promtool check config "$dir/prometheus/prometheus.yml" >/dev/null; }
check "promtool accepts the scrape config" config_ok
prom_pid=$(tp__spawn "$dir/prometheus/prometheus.log" prometheus \
    --config.file="$dir/prometheus/prometheus.yml" \
    --storage.tsdb.path="$dir/prometheus/data" \
    --web.listen-address="127.0.0.1:$prom_port" \
    --log.level=warn) || bail "prometheus starts"
prom="http://127.0.0.1:$prom_port"
prom_ready() { curl -sf "$prom/-/ready" -o /dev/null; }
tp_wait_for "prometheus on 127.0.0.1:$prom_port to be ready" 60 prom_ready ||
    bail "prometheus answers /-/ready"
echo "# prometheus $(prometheus --version 2>&1 | awk 'NR == 1 { print $3 }') ready at $(elapsed)s on 127.0.0.1:$prom_port (pid $prom_pid)"

# prom_query EXPR: the instant vector's samples, one "LABELS VALUE" a line
# (LABELS as Prometheus prints them, {} for none); fails unless the query
# succeeded. Prometheus answers with compact JSON on one line.
prom_query() {
    local out
    out=$(curl -sf -G "$prom/api/v1/query" --data-urlencode "query=$1") || return 1
    case $out in *'"status":"success"'*) ;; *) return 1 ;; esac
    printf '%s\n' "$out" |
        grep -oE '"metric":\{[^}]*\},"value":\[[^]]*\]' |
        sed -E 's/^"metric":(\{[^}]*\}),"value":\[[^,]*,"([^"]*)"\]$/\1 \2/'
}
# prom_value EXPR: the value of a one-sample result, or fail.
prom_value() {
    local out
    out=$(prom_query "$1") || return 1
    [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] || return 1
    printf '%s\n' "${out##* }"
}
prom_equals() { # EXPR VALUE
    [ "$(prom_value "$1" 2>/dev/null)" = "$2" ]
}
scraped_up() { prom_equals 'up{job="touchpointd"}' 1; }
tp_wait_for "prometheus to scrape touchpointd (up == 1)" 30 scraped_up || true
check "Prometheus scrapes touchpointd: up{job=\"touchpointd\"} == 1" scraped_up
check "before the stream: sum(touchpointd_events_accepted_total) == 0" \
    prom_equals 'sum(touchpointd_events_accepted_total)' 0

# ---- the stream, produced while Prometheus scrapes ----------------------------
t_prod=$(tp__now)
build/tpgen --seed 17 --count "$count" --rate "$rate" \
    --invalid "$n_invalid" --duplicates "$n_dup" \
    --brokers "$KAFKA_BOOTSTRAP" --topic touchpoints 2>"$dir/tpgen.err" ||
    bail "tpgen produced the stream ($(cat "$dir/tpgen.err"))"
cat "$dir/tpgen.err"
summary=$(tail -n 1 "$dir/tpgen.err")
made() { # WORD: the number after WORD in tpgen's summary line
    printf '%s\n' "$summary" | sed -n "s/.*[: ,]$1 \([0-9][0-9]*\).*/\1/p"
}
valid=$(made valid)
dups=$(made duplicates)
invalid=$(made invalid)
total=$(tp_topic_count touchpoints)
echo "# produced $total messages in $(awk -v a="$t_prod" -v b="$(tp__now)" \
    'BEGIN { printf "%.1f", b - a }')s: $valid valid, $dups duplicates, $invalid invalid"
check "tpgen made what was asked ($count valid, $n_dup duplicates, $n_invalid invalid)" \
    test "$valid:$dups:$invalid" = "$count:$n_dup:$n_invalid"
check "the topic holds every produced message ($total)" \
    test "$total" -eq $((valid + dups + invalid))

tp_wait_for "touchpointd to record all $total offsets in Redis" 90 drained "$total" ||
    bail "touchpointd consumed the stream (recorded $(recorded) of $total)"
accepted_in_prom() { prom_equals 'sum(touchpointd_events_accepted_total)' "$valid"; }
t_wait=$(tp__now)
tp_wait_for "Prometheus to show $valid accepted events" 30 accepted_in_prom || true
echo "# Prometheus caught up $(awk -v a="$t_wait" -v b="$(tp__now)" \
    'BEGIN { printf "%.1f", b - a }')s after the offsets were in Redis"

# ---- what Prometheus says ------------------------------------------------------
pv() { prom_value "$1" 2>/dev/null || echo none; }
eqv() { # NAME GOT WANT
    [ "$2" = "$3" ] || { echo "     $1: Prometheus says $2, produced $3" >&2; return 1; }
}
check "Prometheus: sum(touchpointd_events_accepted_total) == $valid valid events" \
    eqv accepted "$(pv 'sum(touchpointd_events_accepted_total)')" "$valid"
check "Prometheus: sum(touchpointd_events_rejected_total) == $invalid invalid messages" \
    eqv rejected "$(pv 'sum(touchpointd_events_rejected_total)')" "$invalid"
check "Prometheus: touchpointd_events_duplicate_total == $dups duplicates" \
    eqv duplicates "$(pv 'sum(touchpointd_events_duplicate_total)')" "$dups"
check "Prometheus: touchpointd_messages_consumed_total == $total messages" \
    eqv consumed "$(pv 'sum(touchpointd_messages_consumed_total)')" "$total"

# Per reason: Prometheus's series equal touchpointd's own /metrics lines.
prom_query 'sum by (reason) (touchpointd_events_rejected_total)' |
    sed -E 's/^\{"reason":"([^"]*)"\} /\1 /' | sort >"$dir/reasons.prom"
curl -sf "http://127.0.0.1:$tpd_port/metrics" |
    sed -nE 's/^touchpointd_events_rejected_total\{reason="([^"]*)"\} ([0-9]+)$/\1 \2/p' |
    sort >"$dir/reasons.http"
echo "# rejected by reason (Prometheus): $(awk '$2 > 0 { printf "%s=%s ", $1, $2 }' "$dir/reasons.prom")"
same_reasons() {
    if [ -s "$dir/reasons.prom" ] && cmp -s "$dir/reasons.prom" "$dir/reasons.http"; then
        return 0
    fi
    diff "$dir/reasons.http" "$dir/reasons.prom" | sed 's/^/     /' >&2
    return 1
}
check "Prometheus: rejected by reason equals touchpointd's /metrics, reason for reason" \
    same_reasons
reasons_hit=$(awk '$2 > 0' "$dir/reasons.prom" | wc -l)
check "Prometheus: the invalid messages fall in several reasons ($reasons_hit)" \
    test "$reasons_hit" -ge 5
# Scraped while the stream flowed: the counter took values between 0 and
# the total, so Prometheus saw it grow, not just the end state.
window=$(awk -v a="$t_prod" -v b="$(tp__now)" 'BEGIN { printf "%d", b - a + 5 }')
changes=$(pv "changes(touchpointd_messages_consumed_total{job=\"touchpointd\"}[${window}s])")
echo "# touchpointd_messages_consumed_total changed $changes times in the last ${window}s of scrapes"
check "Prometheus saw the stream flow (consumed counter changed >= 2 times)" \
    awk -v c="$changes" 'BEGIN { exit !(c + 0 >= 2) }'
samples=$(pv 'scrape_samples_scraped{job="touchpointd"}')
check "Prometheus: the last scrape took $samples samples" \
    awk -v c="$samples" 'BEGIN { exit !(c + 0 > 0) }'
# Prometheus read the # TYPE lines: it knows the counters and histograms.
prom_type() { # METRIC TYPE
    curl -sf -G "$prom/api/v1/metadata" --data-urlencode "metric=$1" |
        grep -q "\"type\":\"$2\""
}
check "Prometheus's metadata: touchpointd_events_accepted_total is a counter" \
    prom_type touchpointd_events_accepted_total counter
check "Prometheus's metadata: touchpointd_flush_duration_seconds is a histogram" \
    prom_type touchpointd_flush_duration_seconds histogram
flushes_ok() {
    awk -v c="$(pv 'sum(touchpointd_flush_duration_seconds_count)')" 'BEGIN { exit !(c + 0 > 0) }'
}
check "Prometheus: touchpointd_flush_duration_seconds_count > 0 (flushes observed)" \
    flushes_ok

# ---- stop: touchpointd drains, Prometheus goes with the harness ---------------
kill -TERM "$tpd_pid"
rc=0
wait "$tpd_pid" || rc=$?
tpd_pid=
check "touchpointd: SIGTERM, exit status 0" test "$rc" -eq 0
tp__kill_group "$prom_pid" 20
prom_gone() { ! tp__alive "$prom_pid" && ! (exec 3<>"/dev/tcp/127.0.0.1/$prom_port") 2>/dev/null; }
check "Prometheus stopped (pid $prom_pid, port $prom_port free)" prom_gone

finish
