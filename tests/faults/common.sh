# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2034  # TPD_* and others are read by the tests
# Shared by the fault tests in tests/faults/: harness start-up, the ok/FAIL
# bookkeeping, touchpointd instances run in the background, and the probes the
# tests poll (offsets recorded in Redis, resident memory, Kafka's committed
# offsets). TP_BUILD names another build tree than build/ (say, a sanitizer
# build). Sourced after `set -euo pipefail`; the test is a script in
# tests/faults/, the working directory becomes the repository root.
#
#     . "$(dirname "$0")/common.sh"   # tp_init, $dir, check, finish, ...
#     tp_start_redis "$dir/redis"; tp_start_kafka "$dir/kafka"
#     tpd_config "$dir/a.yaml" GROUP TOPIC [EXTRA_YAML]
#     tpd_start a "$dir/a.yaml"        # TPD_PID; log in $dir/a.err
#     wait_drained GROUP "$(tp_topic_count TOPIC)" 180 60 "$TPD_PID"
#     tpd_stop "$TPD_PID"              # SIGTERM; TPD_RC, TPD_STOP_MS
#     finish                           # "N passed, M failed", exit status

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
# shellcheck source=tests/harness/lib.sh
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
# The binaries under test: build/ (make), or another build tree.
bin=${TP_BUILD:-build}
fault_t0=$(date +%s%3N)

passed=0
failed=0
# Background processes of the test (touchpointd instances, producers): the
# cleanup hook kills whichever is still running when the test ends early.
fault_pids=()


# require DESCRIPTION COMMAND...: a check the rest of the test depends on;
# when it fails the test ends here, so a broken product fails fast instead
# of waiting out every later timeout.
require() {
    local before=$failed
    check "$@"
    [ "$failed" -ne "$before" ] || return 0
    say "stopping early: the remaining checks depend on this one"
    finish || true
    exit 1
}

# say TEXT: what the test injects or measured (not a check).
say() {
    echo "# $*"
}

now_ms() { date +%s%3N; }

# Seconds since the test started, one decimal.
elapsed_s() {
    awk -v a="$fault_t0" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'
}

finish() {
    fault_finished=1
    say "took $(elapsed_s) s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

r() { redis-cli -p "$REDIS_PORT" "$@"; }

# recorded GROUP: sum of the next offsets touchpointd recorded in Redis.
recorded() {
    r HVALS "tp:offsets:$1" | awk '{ s += $1 } END { printf "%d\n", s }'
}

# drained GROUP TOTAL: the recorded offsets cover TOTAL messages.
drained() {
    [ "$(recorded "$1")" -eq "$2" ]
}

# recorded_above GROUP N: the recorded offsets moved past N.
recorded_above() {
    [ "$(recorded "$1")" -gt "$2" ]
}

# wait_drained GROUP TOTAL MAX_S STALL_S [PID...]: poll until the recorded
# offsets of GROUP cover TOTAL messages. Gives up after MAX_S seconds, or
# as soon as the offsets have not moved for STALL_S seconds (a stuck
# instance fails fast instead of using up MAX_S), or when none of the PIDs
# is alive any more.
wait_drained() {
    local group=$1 total=$2 max_s=$3 stall_s=$4 deadline cur last=-1
    local moved=$SECONDS p any
    shift 4
    deadline=$(tp__deadline "$max_s")
    while :; do
        cur=$(recorded "$group")
        [ "$cur" -lt "$total" ] || return 0
        if [ "$cur" -ne "$last" ]; then
            last=$cur
            moved=$SECONDS
        fi
        if [ $((SECONDS - moved)) -ge "$stall_s" ]; then
            tp__err "offsets of $group stuck at $cur of $total for ${stall_s}s"
            return 1
        fi
        if ! tp__before "$deadline"; then
            tp__err "offsets of $group at $cur of $total after ${max_s}s"
            return 1
        fi
        if [ $# -gt 0 ]; then
            any=0
            for p in "$@"; do
                tp__alive "$p" && any=1
            done
            if [ "$any" = 0 ]; then
                tp__err "no touchpointd alive; offsets of $group at $cur of $total"
                return 1
            fi
        fi
        sleep 0.2 # polling period
    done
}

# tpd_config FILE GROUP TOPIC [EXTRA_YAML]: a run config for the test servers.
# EXTRA_YAML is appended as is; kafka properties go in TPD_KAFKA_EXTRA (lines
# of "  key: value"), since `kafka:` may appear only once.
tpd_config() {
    cat >"$1" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: $2
${TPD_KAFKA_EXTRA:-}
input:
  topics: [$3]
redis:
  url: $REDIS_URL
log:
  stats_interval: 5s
service:
  shutdown_timeout: 10s
http:
  port: 0 # a free port: several instances share this host
${4:-}
YAML
    "$bin"/touchpointd check -c "$1" >/dev/null
}

# tpd_start NAME CONFIG: start `touchpointd run` in the background, stderr
# appended to $dir/NAME.err; sets TPD_PID.
tpd_start() {
    echo "--- start $(date -u +%FT%T.%3NZ)" >>"$dir/$1.err"
    "$bin"/touchpointd run -c "$2" >>"$dir/$1.out" 2>>"$dir/$1.err" &
    TPD_PID=$!
    fault_pids+=("$TPD_PID")
}

# tpd_stop PID [SIGNALLED_AT_MS]: SIGTERM (unless already sent at
# SIGNALLED_AT_MS), wait for the exit; sets TPD_RC (exit status) and
# TPD_STOP_MS (signal to exit). A process still there 30 s after the signal
# (three times service.shutdown_timeout) is killed: TPD_RC then says 137.
tpd_stop() {
    local t0=${2:-}
    if [ -z "$t0" ]; then
        t0=$(now_ms)
        kill -TERM "$1"
    fi
    while tp__alive "$1" && [ $(($(now_ms) - t0)) -lt 30000 ]; do
        sleep 0.05 # polling for the exit, bounded
    done
    if tp__alive "$1"; then
        kill -KILL "$1" 2>/dev/null || true
    fi
    TPD_STOP_MS=$(($(now_ms) - t0))
    TPD_RC=0
    wait "$1" 2>/dev/null || TPD_RC=$?
}

# rss_kb PID FIELD: VmHWM (peak) or VmRSS of a live process, in kB.
rss_kb() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# group_offsets GROUP: "TOPIC/PARTITION OFFSET" lines of the offsets Kafka
# holds committed for GROUP, sorted (Kafka's own consumer-group tool).
group_offsets() {
    local out
    out=$(tp__java_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP" --describe --group "$1" 2>&1) || {
        echo "consumer group describe failed: $out" >&2
        return 1
    }
    printf '%s\n' "$out" | awk -v g="$1" '
        $1 == g && $3 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/ { print $2 "/" $3, $4 }' \
        | sort
}

# redis_offsets GROUP: the same lines from tp:offsets:GROUP.
redis_offsets() {
    r HGETALL "tp:offsets:$1" | paste - - | awk '{ print $1, $2 }' | sort
}

# truth EVENTS LIVE_MIN LIVE_MAX: kpi_truth over the valid events, windows at
# LIVE_MAX, oldest_wait_ms judged against any clock in [LIVE_MIN, LIVE_MAX].
truth() {
    local rc=0
    "$bin"/tests/kpi_truth --events "$1" --redis "$REDIS_URL" \
        --clock-ms "$3" --live-clock-min "$2" --live-clock-max "$3" \
        >"$dir/truth.out" 2>&1 || rc=$?
    # The first mismatches and the closing count.
    if [ "$(wc -l <"$dir/truth.out")" -gt 14 ]; then
        head -n 12 "$dir/truth.out"
        echo "..."
        tail -n 1 "$dir/truth.out"
    else
        cat "$dir/truth.out"
    fi
    return "$rc"
}

# summary_count LOG NAME: the number on the last run summary line "  NAME  N"
# in LOG; "none" when there is none.
summary_count() {
    awk -v n="$2" '$1 == n && $2 ~ /^[0-9]+$/ { v = $2 }
        END { print (v == "" ? "none" : v) }' "$1"
}

show_logs() {
    local f
    for f in "$dir"/*.err; do
        [ -e "$f" ] || continue
        echo "--- tail of $f"
        tail -n 15 "$f"
    done
}

fault_cleanup() {
    local p
    # A test that froze redis-server (SIGSTOP) and died meanwhile: thaw it,
    # so the harness can stop it with SIGTERM.
    if [ -n "${REDIS_PID:-}" ]; then
        kill -CONT "$REDIS_PID" 2>/dev/null || true
    fi
    for p in "${fault_pids[@]}"; do
        if tp__alive "$p"; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    if [ "${failed:-1}" -ne 0 ] || [ -z "${fault_finished:-}" ]; then
        show_logs
    fi
}
tp_cleanup_hook() { fault_cleanup; }
