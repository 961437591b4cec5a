#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark behind `make bench`: one broker, one Redis, one topic, and
# every measurement side by side — raw (tpraw, the Kafka limit), run
# (touchpointd run until Redis holds every offset), replay (the same events
# from a file), micro (ns and callgrind instructions per event of the pure
# core) and the freshness of run on a live stream. Prints a table and writes
# it as JSON to build/bench/bench-TIMESTAMP.json and build/bench/latest.json.
#
# How each figure is taken
#
#   The topic is produced once (tpgen: BENCH_EVENTS keyed events, the default
#   mix, lz4, 8 partitions, event times over the last BENCH_SPAN) and every
#   consumer reads it with a fresh consumer group. tpgen writes the same
#   events to a file for replay and micro.
#
#   events/s   events over the wall time from the moment the process is
#              spawned until the work is visible: raw, tpraw's Nth message;
#              run, the first poll (every BENCH_POLL_MS) that finds
#              tp:offsets:GROUP summing to the topic's size (offsets are
#              written in the same MULTI/EXEC as the aggregates, so every
#              event is then in Redis; flushes come every flush_interval,
#              1 s, which bounds how early run can be seen done); replay,
#              the process exit (it exits after its last flush).
#   CPU s/1M   user+system CPU of the measured process per million events:
#              run from /proc/PID/stat when done (before SIGTERM), replay
#              from its rusage, raw from tpraw's own getrusage. The JSON
#              also has Redis's (redis_cpu_s_per_M) and, for raw and run,
#              the Kafka broker's (broker_cpu_s_per_M): all share the box.
#   cmd/event  Redis commands per event: the sum of `calls` over INFO
#              commandstats after CONFIG RESETSTAT, minus the harness's own
#              polls and INFO. Commands run inside the flush script count
#              too (Redis counts them); the JSON has the per-command split.
#   peak RSS   VmHWM of run when done; maxrss of replay and tpraw.
#   freshness  run on a second topic fed live by `tpgen --rate` (after the
#              group is joined): for every message, the first poll that sees
#              the partition's recorded offset past it, minus the moment tpgen
#              produced it (its occurred_at: the wall clock at emission).
#              That topic stamps messages with the broker's append time, so
#              the JSON splits it: produce -> append (broker_*) and append
#              -> visible (after_append_*). Resolution: the poll interval.
#   run.long   run again on a second topic of BENCH_LONG_EVENTS events (default
#              five times BENCH_EVENTS) at the same event-time rate: peak RSS
#              must not depend on the stream's length, so the row carries
#              rss_ratio_to_run (its peak RSS over run's; target <= 1.10).
#              Both rows carry open_correlations (the gauge when drained):
#              tpgen's tickets stay open for hours of event time, so the
#              longer stream leaves more open, and the row carries
#              rss_growth_per_added_open_b, the peak RSS it adds per added
#              open correlation (the budget for one is 128 bytes).
#   micro      tests/bench/micro.c (CPU time per event, median pass) and the
#              same under callgrind on a smaller input (instructions per
#              event, independent of machine noise). micro.aggregate is
#              process − parse: dedupe, correlation and aggregation.
#
# Each of raw, run, replay and run.long is repeated BENCH_REPEAT times
# (default 3); every figure is then the median of its repetitions (wall
# time, CPU and peak RSS of each are listed in the JSON), so one busy moment on a shared box does not decide
# a ratio. On a busy box the wall-clock figures mean little (CPU s/1M and the
# callgrind counts still hold), so the JSON says how busy it was: the load
# average, box_cpu_pressure_pct per row (PSI: the share of the time some
# task waited for a CPU) and, for run, runq_wait_s (how long touchpointd's
# threads were runnable but had no CPU).
#
# Environment:
#   BENCH_EVENTS          events in the topic (default 2000000)
#   BENCH_REPEAT          repetitions of raw, run, replay and run.long
#                         (default 3)
#   BENCH_PARTITIONS      partitions of the topic (default 8)
#   BENCH_SPAN            event time the events cover, ending now (default:
#                         4 minutes per 2,000,000 events, at least 4m, so a
#                         longer run is the same stream for longer, not a
#                         denser one: 10 M events cover 20 minutes)
#   BENCH_LONG_EVENTS     events of the run.long topic (default 5 x
#                         BENCH_EVENTS; 0 leaves the row out)
#   BENCH_POLL_MS         Redis poll interval (default 20)
#   BENCH_FRESH_RATE      events/s of the live stream (default 5000)
#   BENCH_FRESH_SECONDS   its length (default 20)
#   BENCH_MICRO_EVENTS    lines for micro (default 100000, at most BENCH_EVENTS)
#   BENCH_MICRO_TIME      CPU seconds per micro benchmark (default 1)
#   BENCH_CALLGRIND_EVENTS  lines under callgrind (default 5000; 0 skips it)
#   BENCH_TIMEOUT         seconds any one measurement may take (default 900)
#   BENCH_OUT             output directory (default build/bench)
#   BENCH_CC, BENCH_CFLAGS, BENCH_LDFLAGS, BENCH_LIBS   how to build micro
#                         (make bench passes the Makefile's)
# and lib.sh's (TP_KEEP=1 keeps the temp dir with every log).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
export LC_ALL=C

EVENTS=${BENCH_EVENTS:-2000000}
REPEAT=${BENCH_REPEAT:-3}
PARTS=${BENCH_PARTITIONS:-8}
# The default span keeps the event-time rate of the 2 M run (8,333 events per
# second of event time) whatever the length: squeezing 10 M events into the
# same 4 minutes would be a five times denser stream, with five times the
# waits open at once (past limits.max_open_correlations, so records would be
# evicted), not a longer one.
SPAN=${BENCH_SPAN:-$((EVENTS > 2000000 ? EVENTS * 240 / 2000000 : 240))s}
LONG_EVENTS=${BENCH_LONG_EVENTS:-$((EVENTS * 5))}
POLL_MS=${BENCH_POLL_MS:-20}
FRESH_RATE=${BENCH_FRESH_RATE:-5000}
FRESH_SECONDS=${BENCH_FRESH_SECONDS:-20}
MICRO_EVENTS=${BENCH_MICRO_EVENTS:-100000}
MICRO_TIME=${BENCH_MICRO_TIME:-1}
CG_EVENTS=${BENCH_CALLGRIND_EVENTS:-5000}
TIMEOUT=${BENCH_TIMEOUT:-900}
OUT=${BENCH_OUT:-build/bench}
TOPIC=bench
LONG_TOPIC=bench-long
FRESH_TOPIC=bench-fresh

say() {
    local t=${EPOCHREALTIME/./}
    printf 'bench: [%5.1fs] %s\n' "$(((t - ${T_START:-$t}) / 100000))e-1" "$*" >&2
}
die() {
    say "error: $*"
    exit 1
}

# ---- numbers ---------------------------------------------------------------

# calc EXPR [VAR=VALUE...]: evaluate an awk expression (%.6g unless FMT set).
calc() {
    local expr=$1
    shift
    awk -v fmt="${FMT:-%.6g}" "$@" "BEGIN { printf fmt \"\\n\", ($expr) }"
}

# median VALUE...: the median (printf format FMT, default %.6g), or null when
# there are none.
median() {
    [ $# -gt 0 ] || { echo null; return; }
    printf '%s\n' "$@" | sort -g | awk -v fmt="${FMT:-%.6g}" '{ v[NR] = $1 }
        END { printf fmt "\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cpu_s PID: user+system CPU seconds of a live process.
cpu_s() {
    local st
    st=$(cat "/proc/$1/stat") || return 1
    st=${st##*) }
    # Cut after "pid (comm) ": state (field 3) is now $1, so utime (14) and
    # stime (15) are $12 and $13.
    awk -v tck="$CLK_TCK" '{ printf "%.3f\n", ($12 + $13) / tck }' <<<"$st"
}

# runq_wait_s PID: seconds the process's threads were runnable but waiting
# for a CPU (/proc/PID/task/*/schedstat, second field, ns).
runq_wait_s() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null |
        awk '{ w += $2 } END { printf "%.3f\n", w / 1e9 }'
}

# psi_us: the box's CPU pressure stall total (µs some task waited for a
# CPU, /proc/pressure/cpu), or empty where the kernel has no PSI.
psi_us() {
    sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || true
}

# open_correlations LOG: run's touchpointd_open_correlations gauge once its
# /metrics (of the instance that wrote LOG) count all TOTAL messages: the
# offsets reach Redis a moment before the flush's outcome is published.
open_correlations() {
    local port deadline=$((${EPOCHREALTIME/./} + 10000000)) m
    port=$(tp_http_port "$1")
    [ -n "$port" ] || die "no metrics port in $1"
    while :; do
        m=$(curl -sf "http://127.0.0.1:$port/metrics" |
            awk -v total="$TOTAL" '
                $1 == "touchpointd_messages_consumed_total" { n = $2 }
                $1 == "touchpointd_open_correlations" { open = $2 }
                END { if (n >= total && open != "") print open }') ||
            die "reading http://127.0.0.1:$port/metrics failed"
        if [ -n "$m" ]; then
            echo "$m"
            return 0
        fi
        [ "${EPOCHREALTIME/./}" -lt "$deadline" ] ||
            die "/metrics on port $port never counted $TOTAL messages"
        nap "$NAP_S"
    done
}

# hwm_mb PID: peak resident set (VmHWM) in MB.
hwm_mb() {
    awk '$1 == "VmHWM:" { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# ---- a Redis connection of our own (no fork per poll) ----------------------

# The polls run at BENCH_POLL_MS on a two-core box next to what is measured,
# so they use bash's /dev/tcp and builtins only: RESP by hand.
RFD=
SLEEP_FD=
POLLS=0   # commands the harness sent since redis_reset: polls,
SELECTS=0 # and SELECTs

resp_open() { # DB
    [ -z "$RFD" ] || exec {RFD}>&-
    exec {RFD}<>"/dev/tcp/127.0.0.1/$REDIS_PORT"
    resp_cmd SELECT "$1"
    SELECTS=$((SELECTS + 1))
}

# resp_cmd ARG...: send one command; the reply's lines go to REPLY_LINES
# (an array reply: its elements; otherwise the one value). Fails on -ERR.
resp_cmd() {
    local a line n i
    {
        printf '*%d\r\n' $#
        for a in "$@"; do printf '$%d\r\n%s\r\n' "${#a}" "$a"; done
    } >&"$RFD"
    REPLY_LINES=()
    IFS= read -r -u "$RFD" line
    line=${line%$'\r'}
    case $line in
    \**)
        n=${line#\*}
        for ((i = 0; i < n; i++)); do
            IFS= read -r -u "$RFD" line # $LEN
            IFS= read -r -u "$RFD" line
            REPLY_LINES+=("${line%$'\r'}")
        done
        ;;
    \$-1) ;;
    \$*)
        IFS= read -r -u "$RFD" line
        REPLY_LINES=("${line%$'\r'}")
        ;;
    -*)
        say "redis: $line"
        return 1
        ;;
    *) REPLY_LINES=("${line:1}") ;;
    esac
}

# offsets_sum GROUP: SUM = the sum of the next offsets recorded for GROUP
# (a global: a $(...) would lose the POLLS count).
offsets_sum() {
    local v
    resp_cmd HVALS "tp:offsets:$1" || return 1
    POLLS=$((POLLS + 1))
    SUM=0
    for v in "${REPLY_LINES[@]}"; do SUM=$((SUM + v)); done
}

# A pipe nobody writes: `read -t` on it is a sleep without a fork.
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# alive PID: the process exists and is no zombie (builtins only).
alive() {
    local st
    { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# commandstats: "NAME CALLS" lines of INFO commandstats.
commandstats() {
    rcli INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p'
}

# redis_reset: empty every DB and zero the command counters.
redis_reset() {
    rcli FLUSHALL >/dev/null
    rcli CONFIG RESETSTAT >/dev/null
    POLLS=0
    SELECTS=0
}

# redis_cmds TOTAL: print "PER_EVENT JSON_SPLIT": commands since redis_reset
# per event, less the harness's own (its polls, SELECT, INFO), and the split
# by command (calls per event) as a JSON object.
redis_cmds() {
    commandstats | awk -v polls="$POLLS" -v selects="$SELECTS" -v total="$1" '
        $1 == "info" || $1 ~ /^config/ || $1 == "flushall" { next }
        $1 == "hvals" { $2 -= polls }
        $1 == "select" { $2 -= selects }
        $2 > 0 { n[$1] = $2; sum += $2 }
        END {
            printf "%.4g {", sum / total
            sep = ""
            for (c in n) { printf "%s\"%s\": %.4g", sep, c, n[c] / total; sep = ", " }
            printf "}\n"
        }'
}

# ---- JSON ------------------------------------------------------------------

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/ }
    printf '"%s"' "$s"
}

# Rows: ROWS holds names in order; VAL["row.field"] the figures (JSON text).
ROWS=()
declare -A VAL

set_val() { VAL["$1.$2"]=${3:-null}; } # ROW FIELD JSON_VALUE (empty: null)

# ---- setup -----------------------------------------------------------------

build_micro() {
    local cc=${BENCH_CC:-cc} cflags libs
    cflags=${BENCH_CFLAGS:-"-std=c11 -O2 -g -D_POSIX_C_SOURCE=200809L -Iprocessor"}
    libs=${BENCH_LIBS:-"$(pkg-config --libs rdkafka jansson hiredis yaml-0.1 libmicrohttpd) -lm -lpthread"}
    # shellcheck disable=SC2086
    $cc $cflags ${BENCH_LDFLAGS:-} tests/bench/micro.c build/libtp.a $libs \
        -o "$OUT/micro"
}

check_build() {
    local b
    for b in build/touchpointd build/tpgen build/tpraw build/libtp.a; do
        [ -e "$b" ] || die "$b missing: run make (or make bench)"
    done
    mkdir -p "$OUT"
    build_micro || die "cannot build tests/bench/micro.c"
}

write_config() { # FILE GROUP TOPIC DB
    cat >"$1" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: $2
input:
  topics: [$3]
  dead_letter_topic: $3.dlq
redis:
  url: redis://127.0.0.1:$REDIS_PORT/$4
http:
  port: 0
log:
  stats_interval: 1h
YAML
}

BG_PIDS=()
tp_cleanup_hook() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
}

produce() {
    local t0 t1
    say "producing $EVENTS events to $TOPIC ($PARTS partitions, lz4)"
    t0=${EPOCHREALTIME/./}
    build/tpgen --seed 1 --count "$EVENTS" --span "$SPAN" \
        --brokers "$KAFKA_BOOTSTRAP" --topic "$TOPIC" \
        --out "$dir/events.ndjson" 2>"$dir/tpgen.err" ||
        die "tpgen failed: $(tail -n 3 "$dir/tpgen.err")"
    t1=${EPOCHREALTIME/./}
    TOTAL=$(tp_topic_count "$TOPIC")
    [ "$TOTAL" -eq "$(wc -l <"$dir/events.ndjson")" ] ||
        die "topic holds $TOTAL messages, the file $(wc -l <"$dir/events.ndjson")"
    PRODUCE_S=$(calc '(b - a) / 1e6' -v a="$t0" -v b="$t1")
    say "topic $TOPIC holds $TOTAL messages (produced in ${PRODUCE_S}s)"
}

# ---- raw -------------------------------------------------------------------

declare -A KV
parse_kv() { # LINE: KEY=VALUE pairs into KV
    local kv
    KV=()
    for kv in $1; do KV["${kv%%=*}"]=${kv#*=}; done
}

measure_raw() { # REP
    local t0 out wall kcpu0
    kcpu0=$(cpu_s "$KAFKA_PID")
    t0=${EPOCHREALTIME/./}
    out=$(build/tpraw --brokers "$KAFKA_BOOTSTRAP" --topic "$TOPIC" \
        --group "bench-raw-$1" --timeout "$TIMEOUT" 2>"$dir/raw-$1.err") ||
        die "tpraw failed: $(tail -n 3 "$dir/raw-$1.err")"
    parse_kv "$out"
    [ "${KV[count]}" -eq "$TOTAL" ] || die "tpraw counted ${KV[count]} of $TOTAL"
    LIBRDKAFKA=${KV[librdkafka]:-}
    # From the spawn (not tpraw's main) to its last message.
    wall=$(calc '(s - t0) / 1e6 + e' -v s="${KV[start_us]}" -v t0="$t0" \
        -v e="${KV[elapsed_s]}")
    S_WALL+=("$wall")
    S_CPU+=("${KV[cpu_s]}")
    S_RSS+=("$(calc 'k / 1024' -v k="${KV[maxrss_kb]}")")
    S_FIRST+=("$(calc '(s - t0) / 1e6 + f' -v s="${KV[start_us]}" -v t0="$t0" \
        -v f="${KV[first_s]}")")
    S_KCPU+=("$(calc 'b - a' -v a="$kcpu0" -v b="$(cpu_s "$KAFKA_PID")")")
    say "raw #$1: ${wall}s"
}

# The first consumer group on a new broker waits for __consumer_offsets to
# be created; a throwaway group takes that wait before anything is timed.
warm_up() {
    build/tpraw --brokers "$KAFKA_BOOTSTRAP" --topic "$TOPIC" --count 1 \
        --group bench-warm-up --timeout 120 >/dev/null 2>"$dir/warm-up.err" ||
        die "warm-up consumer failed: $(tail -n 3 "$dir/warm-up.err")"
}

# ---- run -------------------------------------------------------------------

# start_run CONFIG LOG: spawn touchpointd run; sets RUN_PID, RUN_T0 (µs).
start_run() {
    RUN_T0=${EPOCHREALTIME/./}
    build/touchpointd run -c "$1" 2>"$2" &
    RUN_PID=$!
    BG_PIDS+=("$RUN_PID")
}

# stop_run LOG: SIGTERM and wait; STOP_S = seconds until it exited.
stop_run() {
    local rc=0 t0=${EPOCHREALTIME/./}
    kill -TERM "$RUN_PID"
    wait "$RUN_PID" || rc=$?
    STOP_S=$(calc '(b - a) / 1e6' -v a="$t0" -v b="${EPOCHREALTIME/./}")
    [ "$rc" -eq 0 ] || die "touchpointd run exited $rc: $(tail -n 5 "$1")"
}

# wait_drained GROUP: poll until the recorded offsets sum to TOTAL; sets
# DONE_US and FIRST_US (the first poll that saw any offset).
wait_drained() {
    local deadline=$((${EPOCHREALTIME/./} + TIMEOUT * 1000000)) t
    FIRST_US=
    while :; do
        t=${EPOCHREALTIME/./}
        offsets_sum "$1" || die "polling Redis failed"
        if [ -z "$FIRST_US" ] && [ "$SUM" -gt 0 ]; then
            FIRST_US=$t
        fi
        if [ "$SUM" -ge "$TOTAL" ]; then
            DONE_US=$t
            return 0
        fi
        alive "$RUN_PID" || die "touchpointd run died at offset sum $SUM"
        [ "$t" -lt "$deadline" ] || die "run not drained after ${TIMEOUT}s ($SUM of $TOTAL)"
        nap "$NAP_S"
    done
}

measure_run() { # REP
    local group="bench-run-$1" cfg="$dir/run-$1.yaml" log="$dir/run-$1.err"
    local rcpu0 rcpu1 kcpu0 wall cmds split
    write_config "$cfg" "$group" "$TOPIC" 0
    redis_reset
    resp_open 0
    rcpu0=$(cpu_s "$REDIS_PID")
    kcpu0=$(cpu_s "$KAFKA_PID")
    start_run "$cfg" "$log"
    wait_drained "$group"
    S_CPU+=("$(cpu_s "$RUN_PID")")
    S_RSS+=("$(hwm_mb "$RUN_PID")")
    S_OPEN+=("$(open_correlations "$log")")
    S_RUNQ+=("$(runq_wait_s "$RUN_PID")")
    rcpu1=$(cpu_s "$REDIS_PID")
    S_KCPU+=("$(calc 'b - a' -v a="$kcpu0" -v b="$(cpu_s "$KAFKA_PID")")")
    read -r cmds split < <(redis_cmds "$TOTAL")
    stop_run "$log"
    wall=$(calc '(d - s) / 1e6' -v d="$DONE_US" -v s="$RUN_T0")
    S_WALL+=("$wall")
    S_FIRST+=("$(calc '(f - s) / 1e6' -v f="$FIRST_US" -v s="$RUN_T0")")
    S_CMDS+=("$cmds")
    S_RCPU+=("$(calc 'b - a' -v a="$rcpu0" -v b="$rcpu1")")
    S_STOP+=("$STOP_S")
    SPLIT=$split
    say "run #$1: ${wall}s, $cmds Redis commands/event; SIGTERM to exit ${STOP_S}s"
}

# ---- replay ----------------------------------------------------------------

measure_replay() { # REP
    local cfg="$dir/replay-$1.yaml" t0 t1 rcpu0 rcpu1 times times0 u s m
    local cmds split
    write_config "$cfg" unused "$TOPIC" 0
    redis_reset
    rcpu0=$(cpu_s "$REDIS_PID")
    t0=${EPOCHREALTIME/./}
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%U %S %M' -o "$dir/replay-$1.time" \
            build/touchpointd replay -c "$cfg" "$dir/events.ndjson" \
            >"$dir/replay-$1.out" 2>"$dir/replay-$1.err" ||
            die "replay failed: $(tail -n 5 "$dir/replay-$1.err")"
        t1=${EPOCHREALTIME/./}
        read -r u s m <"$dir/replay-$1.time"
        S_CPU+=("$(calc 'u + s' -v u="$u" -v s="$s")")
        S_RSS+=("$(calc 'm / 1024' -v m="$m")")
    else
        # bash's `times`: CPU of the children waited for, before and after.
        times0=$(times | tail -n 1)
        build/touchpointd replay -c "$cfg" "$dir/events.ndjson" \
            >"$dir/replay-$1.out" 2>"$dir/replay-$1.err" ||
            die "replay failed: $(tail -n 5 "$dir/replay-$1.err")"
        t1=${EPOCHREALTIME/./}
        times=$(times | tail -n 1)
        # Lines of "XmY.YYYs XmY.YYYs" (children's user and system time).
        S_CPU+=("$(printf '%s\n%s\n' "$times0" "$times" | awk '{
            for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); c[NR] += a[1] * 60 + a[2] }
        } END { printf "%.3f\n", c[2] - c[1] }')")
        S_RSS+=(null)
    fi
    rcpu1=$(cpu_s "$REDIS_PID")
    read -r cmds split < <(redis_cmds "$TOTAL")
    S_WALL+=("$(calc '(b - a) / 1e6' -v a="$t0" -v b="$t1")")
    S_CMDS+=("$cmds")
    S_RCPU+=("$(calc 'b - a' -v a="$rcpu0" -v b="$rcpu1")")
    SPLIT=$split
    say "replay #$1: ${S_WALL[-1]}s, $cmds Redis commands/event"
}

# ---- run.long --------------------------------------------------------------

# The same stream five times longer (its own topic, the event-time rate of
# SPAN's default): run's peak RSS again, for rss_ratio_to_run.
produce_long() {
    local span=$((LONG_EVENTS * 240 / 2000000))
    [ "$span" -ge 240 ] || span=240
    LONG_SPAN=${span}s
    say "producing $LONG_EVENTS events to $LONG_TOPIC (event time ${LONG_SPAN})"
    tp_create_topic "$LONG_TOPIC" "$PARTS"
    build/tpgen --seed 3 --count "$LONG_EVENTS" --span "$LONG_SPAN" \
        --brokers "$KAFKA_BOOTSTRAP" --topic "$LONG_TOPIC" 2>"$dir/tpgen-long.err" ||
        die "tpgen failed: $(tail -n 3 "$dir/tpgen-long.err")"
    LONG_TOTAL=$(tp_topic_count "$LONG_TOPIC")
    [ "$LONG_TOTAL" -eq "$LONG_EVENTS" ] ||
        die "topic $LONG_TOPIC holds $LONG_TOTAL messages, not $LONG_EVENTS"
}

measure_run_long() { # REP
    measure_run "long-$1"
}

# Runs measure_run_long as row run.long with TOPIC and TOTAL of the long
# topic, then puts them back.
measure_long() {
    local topic=$TOPIC total=$TOTAL
    produce_long
    TOPIC=$LONG_TOPIC TOTAL=$LONG_TOTAL
    measure run.long run_long
    TOPIC=$topic TOTAL=$total
    set_val run.long span "$(json_str "$LONG_SPAN")"
    set_val run.long rss_ratio_to_run "$(FMT=%.4f calc 'l / s' \
        -v l="${VAL[run.long.peak_rss_mb]}" -v s="${VAL[run.peak_rss_mb]}")"
    # What the longer stream adds to the peak, per correlation it leaves
    # open beyond run's (the budget for one is 128 bytes).
    if [ "${VAL[run.long.open_correlations]}" -gt "${VAL[run.open_correlations]}" ]; then
        set_val run.long rss_growth_per_added_open_b "$(FMT=%.0f calc \
            '(l - r) * 1048576 / (o - s)' \
            -v l="${VAL[run.long.peak_rss_mb]}" -v r="${VAL[run.peak_rss_mb]}" \
            -v o="${VAL[run.long.open_correlations]}" \
            -v s="${VAL[run.open_correlations]}")"
    fi
}

# ---- repeated measurements into rows ---------------------------------------

# measure NAME [FN]: run measure_FN (FN defaults to NAME) BENCH_REPEAT times;
# row NAME holds the medians.
measure() {
    local name=$1 fn=${2:-$1} r wall
    local psi0 psi1 t0
    S_WALL=() S_CPU=() S_RSS=() S_CMDS=() S_FIRST=() S_RCPU=() S_STOP=() S_RUNQ=()
    S_KCPU=()
    S_OPEN=()
    SPLIT=null
    psi0=$(psi_us)
    t0=${EPOCHREALTIME/./}
    for ((r = 1; r <= REPEAT; r++)); do
        "measure_$fn" "$r"
    done
    psi1=$(psi_us)
    if [ -n "$psi0" ] && [ -n "$psi1" ]; then
        # (clamped: the two clocks are read a moment apart)
        set_val "$name" box_cpu_pressure_pct "$(FMT=%.1f calc 'p > 100 ? 100 : p' \
            -v p="$(calc '(b - a) * 100 / (t1 - t0)' \
            -v a="$psi0" -v b="$psi1" -v t0="$t0" -v t1="${EPOCHREALTIME/./}")")"
    fi
    ROWS+=("$name")
    wall=$(median "${S_WALL[@]}")
    set_val "$name" wall_s "$wall"
    set_val "$name" events "$TOTAL"
    set_val "$name" events_per_s "$(FMT=%.0f calc 'n / w' -v n="$TOTAL" -v w="$wall")"
    set_val "$name" cpu_s_per_M "$(FMT=%.3f calc 'c * 1e6 / n' -v c="$(median "${S_CPU[@]}")" -v n="$TOTAL")"
    set_val "$name" peak_rss_mb "$(median "${S_RSS[@]}")"
    set_val "$name" redis_cmds_per_event "$(median "${S_CMDS[@]}")"
    set_val "$name" redis_cmds_split "$SPLIT"
    if [ "${#S_RCPU[@]}" -gt 0 ]; then
        set_val "$name" redis_cpu_s_per_M "$(FMT=%.3f calc 'c * 1e6 / n' -v c="$(median "${S_RCPU[@]}")" -v n="$TOTAL")"
    fi
    if [ "${#S_KCPU[@]}" -gt 0 ]; then
        set_val "$name" broker_cpu_s_per_M "$(FMT=%.3f calc 'c * 1e6 / n' -v c="$(median "${S_KCPU[@]}")" -v n="$TOTAL")"
    fi
    if [ "${#S_RUNQ[@]}" -gt 0 ]; then
        set_val "$name" runq_wait_s "$(median "${S_RUNQ[@]}")"
    fi
    if [ "${#S_OPEN[@]}" -gt 0 ]; then
        set_val "$name" open_correlations "$(FMT=%.0f median "${S_OPEN[@]}")"
    fi
    if [ "${#S_STOP[@]}" -gt 0 ]; then
        set_val "$name" stop_s "$(median "${S_STOP[@]}")"
    fi
    if [ "${#S_FIRST[@]}" -gt 0 ]; then
        set_val "$name" first_s "$(median "${S_FIRST[@]}")"
    fi
    set_val "$name" samples_wall_s "[$(IFS=,; echo "${S_WALL[*]}")]"
    set_val "$name" samples_peak_rss_mb "[$(IFS=,; echo "${S_RSS[*]}")]"
    set_val "$name" samples_cpu_s "[$(IFS=,; echo "${S_CPU[*]}")]"
}

# ---- freshness -------------------------------------------------------------

# Polls tp:offsets:GROUP until DONE_TOTAL is reached, appending
# "T_MS PARTITION NEXT_OFFSET" to FILE at every change.
poll_offsets_log() { # GROUP FILE GEN_PID
    local -A seen=()
    local deadline=$((${EPOCHREALTIME/./} + TIMEOUT * 1000000)) t i m o sum target=
    while :; do
        t=${EPOCHREALTIME/./}
        resp_cmd HGETALL "tp:offsets:$1" || die "polling Redis failed"
        sum=0
        for ((i = 0; i + 1 < ${#REPLY_LINES[@]}; i += 2)); do
            m=${REPLY_LINES[i]##*/}
            o=${REPLY_LINES[i + 1]}
            sum=$((sum + o))
            if [ "${seen[$m]:-}" != "$o" ]; then
                seen[$m]=$o
                echo "$((t / 1000)) $m $o" >>"$2"
            fi
        done
        if [ -z "$target" ] && ! alive "$3"; then
            wait "$3" || die "tpgen --rate failed: $(tail -n 3 "$dir/fresh-tpgen.err")"
            target=$(tp_topic_count "$FRESH_TOPIC")
        fi
        [ -n "$target" ] && [ "$sum" -ge "$target" ] && return 0
        alive "$RUN_PID" || die "touchpointd run died during the live stream"
        [ "$t" -lt "$deadline" ] || die "live stream not drained after ${TIMEOUT}s"
        nap "$NAP_S"
    done
}

# ready: /readyz answers 200 (group joined, Redis writable).
ready() {
    local port
    port=$(tp_http_port "$1")
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" -o /dev/null
}

# The live topic stamps messages with the broker's append time, so each
# message carries two clocks: occurred_at in the payload (tpgen --rate writes
# the wall clock at emission, just before it produces) and the append time.
create_fresh_topic() {
    tp__java_tool org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP" --create --topic "$FRESH_TOPIC" \
        --partitions "$PARTS" --replication-factor 1 \
        --config message.timestamp.type=LogAppendTime >"$dir/fresh-topic.log" 2>&1 ||
        die "creating $FRESH_TOPIC failed: $(grep -v '^\s*at ' "$dir/fresh-topic.log" | head -n 3)"
    tp_wait_for "topic $FRESH_TOPIC: $PARTS partitions with leaders" 30 \
        tp__topic_leaders "$KAFKA_BOOTSTRAP" "$FRESH_TOPIC" "$PARTS"
}

# Reads the offsets log (T_MS PARTITION NEXT_OFFSET), then kcat lines
# (PARTITION OFFSET APPEND_MS PAYLOAD); prints for every message
# "VISIBLE-PRODUCED APPEND-PRODUCED VISIBLE-APPEND" in ms. Both inputs are in
# offset order per partition.
# shellcheck disable=SC2016
freshness_awk='
function days(y, m, d,   era, yoe, doy) { # days since 1970-01-01 (civil)
    y -= (m <= 2)
    era = int((y >= 0 ? y : y - 399) / 400)
    yoe = y - era * 400
    doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
    return era * 146097 + yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy - 719468
}
function epoch_ms(s,   ms, rest, off) { # epoch ms or RFC 3339
    if (s ~ /^[0-9]+$/) { return s + 0 }
    ms = (days(substr(s, 1, 4) + 0, substr(s, 6, 2) + 0, substr(s, 9, 2) + 0) * 86400 \
        + substr(s, 12, 2) * 3600 + substr(s, 15, 2) * 60 + substr(s, 18, 2)) * 1000
    rest = substr(s, 20)
    if (match(rest, /^\.[0-9]+/)) {
        ms += substr(substr(rest, 2, RLENGTH - 1) "000", 1, 3) + 0
        rest = substr(rest, RLENGTH + 1)
    }
    if (rest ~ /^[+-][0-9][0-9]:[0-9][0-9]/) {
        off = (substr(rest, 2, 2) * 60 + substr(rest, 5, 2)) * 60000
        ms -= substr(rest, 1, 1) == "+" ? off : -off
    }
    return ms
}
NR == FNR { n[$2]++; t[$2, n[$2]] = $1; o[$2, n[$2]] = $3; next }
{
    p = $1
    if (!(p in k)) { k[p] = 1 }
    while (k[p] <= n[p] && o[p, k[p]] <= $2) { k[p]++ }
    if (k[p] > n[p] || !match($0, /"occurred_at":("[^"]*"|[0-9]+)/)) { next }
    v = substr($0, RSTART + 14, RLENGTH - 14)
    gsub(/"/, "", v)
    made = epoch_ms(v)
    printf "%d %d %d\n", t[p, k[p]] - made, $3 - made, t[p, k[p]] - $3
}'

# pctl FILE COLUMN Q: the Q-quantile (nearest rank) of a column.
pctl() {
    awk -v c="$2" '{ print $c }' "$1" | sort -n |
        awk -v q="$3" '{ v[NR] = $1 } END { r = int(q * NR + 0.999999); if (r < 1) r = 1; print v[r] }'
}

measure_freshness() {
    local cfg="$dir/fresh.yaml" log="$dir/fresh.err" gen n f=$dir/fresh-ms.txt
    local count=$((FRESH_RATE * FRESH_SECONDS))
    write_config "$cfg" bench-fresh "$FRESH_TOPIC" 1
    resp_open 1
    start_run "$cfg" "$log"
    tp_wait_for "touchpointd run to be ready" 60 ready "$log"
    say "live stream: $FRESH_RATE events/s for ${FRESH_SECONDS}s"
    build/tpgen --seed 2 --rate "$FRESH_RATE" --count "$count" \
        --brokers "$KAFKA_BOOTSTRAP" --topic "$FRESH_TOPIC" \
        2>"$dir/fresh-tpgen.err" &
    gen=$!
    BG_PIDS+=("$gen")
    : >"$dir/fresh-offsets.log"
    poll_offsets_log bench-fresh "$dir/fresh-offsets.log" "$gen"
    stop_run "$log"
    kcat -C -b "$KAFKA_BOOTSTRAP" -t "$FRESH_TOPIC" -e -q -f '%p %o %T %s\n' \
        >"$dir/fresh-messages.log"
    awk "$freshness_awk" "$dir/fresh-offsets.log" "$dir/fresh-messages.log" >"$f"
    n=$(wc -l <"$f")
    [ "$n" -gt 0 ] || die "no freshness samples"
    set_val run freshness_p50_ms "$(pctl "$f" 1 0.5)"
    set_val run freshness_p99_ms "$(pctl "$f" 1 0.99)"
    set_val run freshness_max_ms "$(pctl "$f" 1 1)"
    set_val run freshness_broker_p50_ms "$(pctl "$f" 2 0.5)"
    set_val run freshness_broker_p99_ms "$(pctl "$f" 2 0.99)"
    set_val run freshness_after_append_p50_ms "$(pctl "$f" 3 0.5)"
    set_val run freshness_after_append_p99_ms "$(pctl "$f" 3 0.99)"
    set_val run freshness_samples "$n"
    set_val run freshness_rate "$FRESH_RATE"
    set_val run freshness_produce_s \
        "$(sed -n 's/.*elapsed \([0-9.]*\) s.*/\1/p' "$dir/fresh-tpgen.err")"
    say "freshness over $n messages: p50 ${VAL[run.freshness_p50_ms]} ms," \
        "p99 ${VAL[run.freshness_p99_ms]} ms (after the broker's append:" \
        "p50 ${VAL[run.freshness_after_append_p50_ms]} ms," \
        "p99 ${VAL[run.freshness_after_append_p99_ms]} ms)"
}

# ---- micro -----------------------------------------------------------------

# micro_field OUTPUT NAME KEY: KEY's value on NAME's line of micro's output.
micro_field() {
    awk -v name="$2" -v key="$3" '$1 == name {
        for (i = 2; i <= NF; i++) if (index($i, key "=") == 1) print substr($i, length(key) + 2)
    }' <<<"$1"
}

# callgrind: instructions per event of each pass, from callgrind_annotate's
# inclusive costs of micro_NAME_pass (sets CG[name]).
declare -A CG
measure_callgrind() {
    local n=$CG_EVENTS in="$dir/callgrind.ndjson" out name ir
    if [ "$n" -le 0 ] || ! command -v valgrind >/dev/null 2>&1; then
        say "callgrind skipped"
        return 0
    fi
    [ "$n" -le "$TOTAL" ] || n=$TOTAL
    head -n "$n" "$dir/events.ndjson" >"$in"
    say "callgrind over $n events"
    # Collected inside the passes only: the profile saved next to the JSON
    # shows where the per-event instructions go, not the set-up's.
    out=$(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        --toggle-collect='micro_*_pass*' \
        "$OUT/micro" "$in" --once 2>"$dir/callgrind.err") ||
        die "micro under callgrind failed: $(tail -n 3 "$dir/callgrind.err")"
    callgrind_annotate --inclusive=yes --threshold=100 "$dir/callgrind.out" \
        >"$dir/callgrind-inclusive.txt" 2>/dev/null
    # No head in these pipelines: under pipefail the writer it leaves behind
    # dies of SIGPIPE once the output passes a pipe buffer (sed reads on).
    callgrind_annotate "$dir/callgrind.out" 2>/dev/null |
        sed -n '1,/^-- Auto-annotated source/p' | sed -n '1,60p' >"$OUT/callgrind-$STAMP.txt"
    for name in parse process flush sketch; do
        ir=$(sed -n "s/^ *\([0-9,]*\) ([^)]*) .*:micro_${name}_pass[. a-z0-9]*\[.*/\1/p" \
            "$dir/callgrind-inclusive.txt" | sed -n 1p | tr -d ,)
        [ -n "$ir" ] || die "no callgrind cost for micro_${name}_pass"
        CG[$name]=$(FMT=%.0f calc 'i / n' -v i="$ir" -v n="$(micro_field "$out" "$name" events)")
    done
    CG[aggregate]=$((CG[process] - CG[parse]))
    CG_N=$n
}

measure_micro() {
    local n=$MICRO_EVENTS in="$dir/micro.ndjson" out name ns
    [ "$n" -le "$TOTAL" ] || n=$TOTAL
    head -n "$n" "$dir/events.ndjson" >"$in"
    say "micro over $n events (${MICRO_TIME} CPU s each)"
    out=$("$OUT/micro" "$in" --min-time "$MICRO_TIME") || die "micro failed"
    measure_callgrind
    for name in parse process aggregate flush sketch; do
        if [ "$name" = aggregate ]; then
            ns=$(calc 'a - b' -v a="$(micro_field "$out" process ns_per_event)" \
                -v b="$(micro_field "$out" parse ns_per_event)")
        else
            ns=$(micro_field "$out" "$name" ns_per_event)
        fi
        ROWS+=("micro.$name")
        set_val "micro.$name" ns_per_event "$ns"
        set_val "micro.$name" instr_per_event "${CG[$name]:-null}"
        set_val "micro.$name" events "${n}"
        set_val "micro.$name" events_per_s "$(FMT=%.0f calc '1e9 / ns' -v ns="$ns")"
        set_val "micro.$name" cpu_s_per_M "$(FMT=%.3f calc 'ns / 1000' -v ns="$ns")"
    done
    set_val micro.sketch events "$(micro_field "$out" sketch events)"
}

# ---- report ----------------------------------------------------------------

COMMON=(events_per_s ratio_to_raw cpu_s_per_M redis_cmds_per_event peak_rss_mb
    freshness_p50_ms freshness_p99_ms ns_per_event instr_per_event)

add_ratios() {
    local raw=${VAL[raw.events_per_s]} r
    for r in "${ROWS[@]}"; do
        set_val "$r" ratio_to_raw "$(FMT=%.4f calc 'e / r' -v e="${VAL[$r.events_per_s]}" -v r="$raw")"
    done
}

row_json() { # NAME
    local f k out
    out="{\"name\": $(json_str "$1")"
    for f in "${COMMON[@]}"; do
        out+=", \"$f\": ${VAL[$1.$f]:-null}"
    done
    # Field names have no dot; "run.long.x" is not run's field "long.x".
    for k in $(printf '%s\n' "${!VAL[@]}" | sed -n "s/^${1//./\\.}\.\([^.]*\)\$/\1/p" | sort); do
        [[ " ${COMMON[*]} " == *" $k "* ]] && continue
        out+=", \"$k\": ${VAL[$1.$k]}"
    done
    echo "$out}"
}

commit_json() {
    local sha dirty changed
    if sha=$(git rev-parse HEAD 2>/dev/null); then
        # --no-optional-locks: a read, never an index refresh.
        changed=$(git --no-optional-locks status --porcelain 2>/dev/null | wc -l)
        dirty=$([ "$changed" -gt 0 ] && echo true || echo false)
        printf '{"sha": "%s", "dirty": %s, "changed_files": %d}' "$sha" "$dirty" "$changed"
    else
        printf '{"sha": null, "dirty": null, "changed_files": null}'
    fi
}

machine_json() {
    local model mem
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p)
    mem=$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)
    printf '{"nproc": %d, "cpu_model": %s, "mem_total_kb": %d, "kernel": %s, ' \
        "$(nproc)" "$(json_str "$model")" "$mem" "$(json_str "$(uname -sr)")"
    printf '"loadavg_start": %s, "loadavg_end": %s}' \
        "$(json_str "$LOAD0")" "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")"
}

write_json() { # FILE
    local r sep=''
    {
        echo "{"
        echo "  \"schema\": \"touchpointd-bench/1\","
        echo "  \"timestamp\": \"$STAMP\","
        echo "  \"commit\": $(commit_json),"
        echo "  \"machine\": $(machine_json),"
        printf '  "versions": {"redis": %s, "kafka": %s, "librdkafka": %s},\n' \
            "$(json_str "$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')")" \
            "$(json_str "$TP_KAFKA_VERSION")" "$(json_str "${LIBRDKAFKA:-}")"
        printf '  "settings": {"events": %d, "repeat": %d, "partitions": %d, ' \
            "$TOTAL" "$REPEAT" "$PARTS"
        printf '"span": %s, "compression": "lz4", "poll_ms": %s, ' "$(json_str "$SPAN")" "$POLL_MS"
        printf '"flush_interval": "1s", "fresh_rate": %d, "fresh_seconds": %d, ' \
            "$FRESH_RATE" "$FRESH_SECONDS"
        printf '"micro_cpu_s": %s, "callgrind_events": %s, "produce_s": %s, ' \
            "$MICRO_TIME" "${CG_N:-null}" "$PRODUCE_S"
        printf '"kafka_ready_s": %s, "total_s": %s},\n' "${TP_KAFKA_READY_S:-null}" \
            "$(calc '(b - a) / 1e6' -v a="$T_START" -v b="${EPOCHREALTIME/./}")"
        echo "  \"rows\": ["
        for r in "${ROWS[@]}"; do
            printf '%s    %s' "$sep" "$(row_json "$r")"
            sep=$',\n'
        done
        printf '\n  ]\n}\n'
    } >"$1"
}

# cell VALUE FORMAT: VALUE formatted, or - when null/absent.
cell() {
    # shellcheck disable=SC2059
    if [ -z "$1" ] || [ "$1" = null ]; then echo -; else printf "$2" "$1"; fi
}

print_table() {
    local r fmt='%-16s %10s %7s %9s %7s %7s %13s %9s %8s\n'
    # shellcheck disable=SC2059
    printf "$fmt" measurement events/s "x raw" "CPU s/1M" cmd/ev "RSS MB" \
        "fresh p50/p99" ns/ev Ir/ev
    for r in "${ROWS[@]}"; do
        local fresh=-
        if [ -n "${VAL[$r.freshness_p50_ms]:-}" ]; then
            fresh="${VAL[$r.freshness_p50_ms]}/${VAL[$r.freshness_p99_ms]} ms"
        fi
        # shellcheck disable=SC2059
        printf "$fmt" "$r" "$(cell "${VAL[$r.events_per_s]:-}" %.0f)" \
            "$(cell "${VAL[$r.ratio_to_raw]:-}" %.3f)" \
            "$(cell "${VAL[$r.cpu_s_per_M]:-}" %.2f)" \
            "$(cell "${VAL[$r.redis_cmds_per_event]:-}" %.2f)" \
            "$(cell "${VAL[$r.peak_rss_mb]:-}" %.1f)" "$fresh" \
            "$(cell "${VAL[$r.ns_per_event]:-}" %.0f)" \
            "$(cell "${VAL[$r.instr_per_event]:-}" %.0f)"
    done
}

# What says how far the wall-clock figures can be trusted.
print_notes() {
    local r psi=
    for r in raw run replay; do
        psi+=" $r ${VAL[$r.box_cpu_pressure_pct]:-?}%"
    done
    echo "load average $LOAD0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end;" \
        "$(nproc) CPUs"
    echo "box CPU pressure (PSI some: a task waited for a CPU):$psi"
    echo "run: ${VAL[run.runq_wait_s]}s runnable but waiting for a CPU in" \
        "${VAL[run.wall_s]}s; Redis server CPU ${VAL[run.redis_cpu_s_per_M]} s/1M events;" \
        "Kafka broker CPU ${VAL[run.broker_cpu_s_per_M]} s/1M events (raw:" \
        "${VAL[raw.broker_cpu_s_per_M]});" \
        "SIGTERM to exit ${VAL[run.stop_s]}s"
    if [ -n "${VAL[run.long.rss_ratio_to_run]:-}" ]; then
        echo "peak RSS over the stream's length: run.long (${VAL[run.long.events]} events," \
            "event time ${LONG_SPAN}) ${VAL[run.long.peak_rss_mb]} MB, run" \
            "(${VAL[run.events]} events, $SPAN) ${VAL[run.peak_rss_mb]} MB:" \
            "${VAL[run.long.rss_ratio_to_run]} x (target <= 1.10)"
        echo "open correlations when drained: run.long" \
            "${VAL[run.long.open_correlations]}, run ${VAL[run.open_correlations]};" \
            "peak RSS added per added open correlation:" \
            "${VAL[run.long.rss_growth_per_added_open_b]:-n/a} B"
    fi
    echo "run freshness after the broker's append: p50/p99" \
        "${VAL[run.freshness_after_append_p50_ms]}/${VAL[run.freshness_after_append_p99_ms]} ms;" \
        "produce -> append p50/p99" \
        "${VAL[run.freshness_broker_p50_ms]}/${VAL[run.freshness_broker_p99_ms]} ms"
}

# ---- main ------------------------------------------------------------------

main() {
    tp_init
    dir=$(tp_workdir)
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    T_START=${EPOCHREALTIME/./}
    LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
    CLK_TCK=$(getconf CLK_TCK)
    NAP_S=$(calc 'm / 1000' -v m="$POLL_MS")
    exec {SLEEP_FD}<> <(:)
    check_build
    tp_start_redis "$dir/redis"
    tp_start_kafka "$dir/kafka"
    # Two JVM starts: side by side, the live topic's while tpgen produces.
    create_fresh_topic &
    fresh_topic=$!
    tp_create_topic "$TOPIC" "$PARTS"
    produce
    wait "$fresh_topic" || die "the live topic $FRESH_TOPIC was not created"
    warm_up
    measure raw
    measure run
    set_val run threads 1 # one consumer/processing thread: no worker pool
    measure replay
    if [ "$LONG_EVENTS" -gt 0 ]; then
        measure_long
    fi
    measure_freshness
    measure_micro
    add_ratios
    write_json "$OUT/bench-$STAMP.json"
    cp "$OUT/bench-$STAMP.json" "$OUT/latest.json"
    {
        print_table
        print_notes
    } | tee "$OUT/bench-$STAMP.txt"
    echo "wrote $OUT/bench-$STAMP.json and $OUT/latest.json"
}

main "$@"
