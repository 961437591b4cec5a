#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the test harness (tests/harness/lib.sh) works: real Redis and Kafka
# start on free loopback ports, a topic takes and returns keyed messages
# through a consumer group, data and committed offsets survive restarts of
# both servers, and no server process outlives a test that passes, fails
# midway, or is killed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/harness/lib.sh
. "$here/lib.sh"

passed=0
failed=0
t_start=$(tp__now)

# check DESCRIPTION COMMAND...: run COMMAND, count and print the outcome.
check() {
    local desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok   - $desc"
    else
        failed=$((failed + 1))
        echo "FAIL - $desc"
    fi
}

# The test is over: print the summary line and exit accordingly.
finish() {
    local total
    total=$(awk -v a="$t_start" -v b="$(tp__now)" 'BEGIN { printf "%.1f", b - a }')
    echo "# selftest took ${total}s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

eq() { [ "$1" = "$2" ] || { echo "     expected '$2', got '$1'" >&2; return 1; }; }

# A fatal step failed: later checks would only cascade.
bail() {
    failed=$((failed + 1))
    echo "FAIL - $*"
    finish || true
    exit 1
}

no_listener() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

all_free() {
    local p
    for p in "$@"; do
        no_listener "$p" || return 1
    done
}

gone() {
    local pid
    for pid in "$@"; do
        if [ -n "$pid" ] && tp__alive "$pid"; then
            echo "     pid $pid still running: $(tr '\0' ' ' <"/proc/$pid/cmdline")" >&2
            return 1
        fi
    done
}

# Processes whose command line mentions PATH (our servers put their dirs
# there): none may be left.
none_mentioning() {
    local f hits=""
    for f in /proc/[0-9]*/cmdline; do
        if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF "$1"; then
            hits+=" ${f#/proc/}"
        fi
    done
    [ -z "$hits" ] || { echo "     left:${hits//\/cmdline/}" >&2; return 1; }
}

# consume GROUP: print "partition key" for every message of topic st that
# group GROUP has not committed yet, then exit (-e) at the end of all
# partitions.
consume() {
    timeout 60 kcat -b "$KAFKA_BOOTSTRAP" -G "$1" -X auto.offset.reset=earliest \
        -e -q -f '%p %k\n' st 2>/dev/null
}

tp_init
work=$(tp_workdir)

# ---- harness primitives -------------------------------------------------------
p1=$(tp_free_port)
p2=$(tp_free_port)
two_free_ports() { [ "$p1" != "$p2" ] && no_listener "$p1" && no_listener "$p2"; }
check "tp_free_port gives two different unused ports ($p1, $p2)" two_free_ports
gives_up() {
    ! tp_wait_for "a command that never succeeds" 1 false 2>"$work/wf.err" &&
        grep -q "never succeeds" "$work/wf.err"
}
t0=$(tp__now)
check "tp_wait_for gives up after its deadline and says why" gives_up
echo "     (gave up after $(awk -v a="$t0" -v b="$(tp__now)" \
    'BEGIN { printf "%.1f", b - a }')s, deadline 1s)"
check "tp_wait_for returns at once when the condition holds" \
    tp_wait_for "true" 5 true

# ---- Redis --------------------------------------------------------------------
tp_start_redis "$work/redis" || bail "tp_start_redis"
check "redis-server answers PING on 127.0.0.1:$REDIS_PORT" \
    eq "$(redis-cli -p "$REDIS_PORT" ping)" PONG
check "REDIS_URL is $REDIS_URL" eq "$REDIS_URL" "redis://127.0.0.1:$REDIS_PORT/0"
for i in $(seq 1 1000); do echo "HSET st:h f$i $i"; done \
    | redis-cli -p "$REDIS_PORT" >/dev/null
redis-cli -p "$REDIS_PORT" HINCRBY st:n count 42 >/dev/null
check "Redis holds 1000 hash fields" \
    eq "$(redis-cli -p "$REDIS_PORT" HLEN st:h)" 1000

# ---- Kafka --------------------------------------------------------------------
tp_start_kafka "$work/kafka" || bail "tp_start_kafka"
ready_first=$TP_KAFKA_READY_S
check "Kafka $TP_KAFKA_VERSION broker on $KAFKA_BOOTSTRAP serves metadata (ready in ${ready_first}s)" \
    tp__kafka_ready "$KAFKA_BOOTSTRAP"
tp_create_topic st 4 || bail "tp_create_topic st 4"
check "topic st has 4 partitions, each with a leader" \
    tp__topic_leaders "$KAFKA_BOOTSTRAP" st 4
produce_to_missing_fails() {
    ! echo x | timeout 20 kcat -b "$KAFKA_BOOTSTRAP" -P -t nosuch \
        -X message.timeout.ms=3000 2>/dev/null
}
check "auto.create.topics.enable=false: producing to a missing topic fails" \
    produce_to_missing_fails

for i in $(seq 1 1000); do echo "key-$i:{\"n\":$i}"; done >"$work/msgs"
check "kcat produced 1000 keyed messages (acks=all)" \
    timeout 60 kcat -b "$KAFKA_BOOTSTRAP" -P -t st -K: -X acks=all -l "$work/msgs"
check "tp_topic_count st says 1000" eq "$(tp_topic_count st)" 1000

consume g1 >"$work/c1"
check "consumer group g1 read 1000 messages" eq "$(wc -l <"$work/c1")" 1000
check "... with 1000 distinct keys" eq "$(cut -d' ' -f2 "$work/c1" | sort -u | wc -l)" 1000
check "... from all 4 partitions" eq "$(cut -d' ' -f1 "$work/c1" | sort -u | wc -l)" 4
consume g1 >"$work/c2"
check "g1 committed its offsets: a second run reads nothing" eq "$(wc -l <"$work/c2")" 0

# ---- restarts -----------------------------------------------------------------
kport=$KAFKA_PORT
kpid_old=$KAFKA_PID
t0=$(tp__now)
tp_restart_kafka || bail "tp_restart_kafka"
restart_s=$(awk -v a="$t0" -v b="$(tp__now)" 'BEGIN { printf "%.1f", b - a }')
replaced() { [ "$1" = "$2" ] && [ "$3" != "$4" ] && gone "$4"; }
check "Kafka restarted on the same port ($kport) in ${restart_s}s (ready ${TP_KAFKA_READY_S}s after start)" \
    replaced "$KAFKA_PORT" "$kport" "$KAFKA_PID" "$kpid_old"
check "after the restart: topic st has 4 partitions with leaders" \
    tp_wait_for "st leaders after restart" 30 \
        tp__topic_leaders "$KAFKA_BOOTSTRAP" st 4
check "after the restart: tp_topic_count st still says 1000" \
    eq "$(tp_topic_count st)" 1000
consume g1 >"$work/c3"
check "after the restart: g1's committed offsets survived (reads nothing)" \
    eq "$(wc -l <"$work/c3")" 0
consume g2 >"$work/c4"
check "after the restart: a new group g2 reads all 1000 messages" \
    eq "$(wc -l <"$work/c4")" 1000

rport=$REDIS_PORT
rpid_old=$REDIS_PID
tp_restart_redis || bail "tp_restart_redis"
check "Redis restarted on the same port ($rport)" \
    replaced "$REDIS_PORT" "$rport" "$REDIS_PID" "$rpid_old"
check "after the restart: the AOF brought back 1000 hash fields" \
    eq "$(redis-cli -p "$REDIS_PORT" HLEN st:h)" 1000
check "after the restart: HINCRBY'd counter is 42" \
    eq "$(redis-cli -p "$REDIS_PORT" HGET st:n count)" 42

# ---- cleanup ------------------------------------------------------------------
pids=("$REDIS_PID" "$KAFKA_PID")
ports=("$REDIS_PORT" "$KAFKA_PORT" "$TP__KAFKA_CPORT")
tp_cleanup
check "tp_cleanup stopped Redis and Kafka (pids ${pids[*]})" gone "${pids[@]}"
check "tp_cleanup freed their ports (${ports[*]})" all_free "${ports[@]}"
check "tp_cleanup removed the work dir" test ! -e "$work"
check "no process mentions the work dir any more" none_mentioning "$work"

# A test that fails midway (set -e) must still leave nothing behind.
child="$(mktemp -d -t tp-selftest.XXXXXX)"
trap 'rm -rf "$child"' EXIT
cat >"$child/fails.sh" <<EOF
set -euo pipefail
. "$here/lib.sh"
tp_init
d=\$(tp_workdir)
echo "\$d" >"$child/dir"
tp_start_redis "\$d/redis"
tp_start_kafka "\$d/kafka"
echo "\$REDIS_PID \$KAFKA_PID" >"$child/pids"
false # the test fails here
echo unreachable
EOF
rc=0
env -u KAFKA_BOOTSTRAP bash "$child/fails.sh" >"$child/out" 2>&1 || rc=$?
cpids=$(cat "$child/pids" 2>/dev/null || echo missing)
read -r -a cpid_list <<<"$cpids"
midway_clean() {
    if [ "$rc" -ne 0 ] && [ "$cpids" != missing ] && gone "${cpid_list[@]}" &&
        none_mentioning "$(cat "$child/dir")"; then
        return 0
    fi
    tail -n 20 "$child/out" | sed 's/^/     | /' >&2
    return 1
}
check "a test failing midway (exit $rc) left no Redis/Kafka behind ($cpids)" \
    midway_clean

# A test killed with SIGKILL cannot run its trap: the watchdog cleans up.
cat >"$child/killed.sh" <<EOF
set -euo pipefail
. "$here/lib.sh"
tp_init
d=\$(tp_workdir)
echo "\$d" >"$child/dir2"
tp_start_redis "\$d/redis"
echo "\$REDIS_PID" >"$child/pid2"
while :; do sleep 0.1; done
EOF
env -u KAFKA_BOOTSTRAP bash "$child/killed.sh" >"$child/out2" 2>&1 &
victim=$!
tp_wait_for "the child test to start redis" 30 test -s "$child/pid2" || true
kpid=$(cat "$child/pid2" 2>/dev/null || echo missing)
kill -KILL "$victim" 2>/dev/null || true
wait "$victim" 2>/dev/null || true
watchdog_cleaned() {
    [ "$kpid" != missing ] &&
        tp_wait_for "redis $kpid to go" 30 gone "$kpid" &&
        tp_wait_for "dir removed" 10 test ! -e "$(cat "$child/dir2")"
}
check "a test killed by SIGKILL: its watchdog stopped Redis ($kpid) and removed its dir" \
    watchdog_cleaned

finish
