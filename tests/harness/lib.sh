# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Test harness library: starts real throwaway Redis and Kafka servers on free
# 127.0.0.1 ports inside temp dirs, and always cleans them up. Sourced by the
# integration tests, the demo and the benchmarks:
#
#     . tests/harness/lib.sh
#     tp_init                      # EXIT trap: tp_cleanup
#     dir=$(tp_workdir)
#     tp_start_redis "$dir/redis"  # REDIS_PORT REDIS_URL REDIS_PID
#     tp_start_kafka "$dir/kafka"  # KAFKA_PORT KAFKA_BOOTSTRAP KAFKA_PID
#     tp_create_topic events 4
#
# or, for a broker whose clients must authenticate (SASL/SCRAM-SHA-512):
#
#     tp_start_kafka_sasl "$dir/kafka" alice s3cret  # + KAFKA_SASL_BOOTSTRAP
#
# Every function prints its errors to stderr and returns non-zero on failure;
# none stands a fixed sleep in for readiness, they poll with a deadline.
# Safe to source under `set -euo pipefail`.
#
# State that must survive `$(...)` subshells (temp dirs, reserved ports,
# server pids) is kept as files under $TP_STATE, made by tp_init. Servers are
# started with setsid, so each is the leader of its own process group and is
# stopped by signalling the whole group.
#
# Environment read:
#   KAFKA_BOOTSTRAP  set before tp_start_kafka: use that broker, start none.
#   TP_KEEP=1        keep temp dirs (and logs) after cleanup.
#   TP_KAFKA_HEAP    broker heap, default 512m.
#   TP_VERBOSE=1     say what is being started on stderr.

if [ -n "${TP__LIB_LOADED:-}" ]; then
    return 0
fi
TP__LIB_LOADED=1

TP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TP_KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' \
    "$TP_ROOT/tests/harness/kafka/pom.xml")
TP_KAFKA_LIBS="$TP_ROOT/.cache/kafka-$TP_KAFKA_VERSION/libs"
TP_KAFKA_LOG4J="$TP_ROOT/tests/harness/kafka/log4j.properties"

# ---- small helpers ---------------------------------------------------------

tp__err() {
    echo "tp: error: $*" >&2
}

tp__say() {
    if [ "${TP_VERBOSE:-0}" = 1 ]; then
        echo "tp: $*" >&2
    fi
}

# Seconds since the epoch with microseconds (bash 5 builtin, no fork).
tp__now() {
    echo "${EPOCHREALTIME:-$(date +%s.%N)}"
}

# tp__before DEADLINE: true while now < DEADLINE (both decimal seconds).
tp__before() {
    local now=${EPOCHREALTIME:-$(date +%s.%N)}
    # Compare as integers of microseconds to avoid floating point in bash.
    local n=${now/./} d=${1/./}
    n=${n:0:16}
    d=${d:0:16}
    [ "$n" -lt "$d" ]
}

tp__deadline() {
    local now
    now=$(tp__now)
    local s=${now%.*} us=${now#*.}
    us=${us:0:6}
    printf '%d.%06d\n' $((s + $1)) $((10#$us))
}

# tp__alive PID: the process exists and is not a zombie.
tp__alive() {
    local stat
    [ -r "/proc/$1/stat" ] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

tp__need_init() {
    if [ -z "${TP_STATE:-}" ] || [ ! -d "$TP_STATE" ]; then
        tp__err "call tp_init first"
        return 1
    fi
}

# tp__java_tool CLASS ARGS...: run a Kafka CLI class from the pinned jars.
tp__java_tool() {
    local logs="${TP_STATE:-/tmp}/tools-log"
    mkdir -p "$logs"
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$TP_KAFKA_LOG4J" \
        -Dkafka.logs.dir="$logs" \
        -cp "$TP_KAFKA_LIBS/*" "$@"
}

tp__check_jars() {
    if [ ! -f "$TP_KAFKA_LIBS/kafka_2.13-$TP_KAFKA_VERSION.jar" ]; then
        tp__err "Kafka $TP_KAFKA_VERSION jars not in $TP_KAFKA_LIBS: run make deps"
        return 1
    fi
    if ! command -v java >/dev/null 2>&1; then
        tp__err "no java on PATH: run make deps"
        return 1
    fi
}

# tp__spawn LOGFILE CMD...: start CMD in its own session/process group with
# stdout+stderr to LOGFILE; print its pid. The child itself records its pid
# in $TP_STATE/pids before it execs, so cleanup knows it even if this shell
# dies right after the fork.
tp__spawn() {
    local log=$1 pidfile pid
    shift
    pidfile=$(mktemp "$TP_STATE/spawn.XXXXXX") || return 1
    # shellcheck disable=SC2016
    setsid sh -c 'echo $$ >"$1"; : >"$2/pids/$$"; shift 2; exec "$@"' \
        sh "$pidfile" "$TP_STATE" "$@" </dev/null >>"$log" 2>&1 &
    local deadline
    deadline=$(tp__deadline 5)
    while [ ! -s "$pidfile" ]; do
        if ! tp__before "$deadline"; then
            tp__err "could not start $1"
            return 1
        fi
        sleep 0.01
    done
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    echo "$pid"
}

# tp__kill_group PID TIMEOUT_S: SIGTERM the process group led by PID, wait
# up to TIMEOUT_S for the leader to exit, then SIGKILL the group.
tp__kill_group() {
    local pid=$1 timeout=$2 deadline
    if tp__alive "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        deadline=$(tp__deadline "$timeout")
        while tp__alive "$pid" && tp__before "$deadline"; do
            sleep 0.05
        done
        if tp__alive "$pid"; then
            tp__err "pid $pid ignored SIGTERM for ${timeout}s; sending SIGKILL"
        fi
    fi
    # Whatever is left in the group (the leader or stray children) goes now;
    # only for a pid we registered, so a recycled pid is never signalled.
    if tp__alive "$pid" || [ -e "${TP_STATE:-/nonexistent}/pids/$pid" ]; then
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    deadline=$(tp__deadline 5)
    while tp__alive "$pid" && tp__before "$deadline"; do
        sleep 0.02
    done
    wait "$pid" 2>/dev/null || true # reap it if it is our child
    rm -f "${TP_STATE:-/nonexistent}/pids/$pid"
    if tp__alive "$pid"; then
        tp__err "pid $pid survived SIGKILL"
        return 1
    fi
}

# ---- public API ------------------------------------------------------------

# tp__start_watchdog: a detached helper that, should this shell die without
# running tp_cleanup (SIGKILL, a CI timeout killing its process group), stops
# the servers it left and removes its temp dirs. It holds none of the
# caller's file descriptors, so `$(test)` or a CI log pipe never waits on it.
tp__start_watchdog() {
    # shellcheck disable=SC2016
    setsid bash -c '
        owner=$1 state=$2 keep=$3
        alive() {
            local st
            st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
            st=${st##*) }
            [ "${st%% *}" != Z ]
        }
        while alive "$owner" && [ -d "$state" ]; do sleep 0.5; done
        [ -d "$state" ] || exit 0
        for f in "$state"/pids/*; do
            [ -e "$f" ] && kill -TERM -- "-${f##*/}" 2>/dev/null
        done
        for i in $(seq 300); do
            left=0
            for f in "$state"/pids/*; do
                [ -e "$f" ] && alive "${f##*/}" && left=1
            done
            [ "$left" = 0 ] && break
            sleep 0.1
        done
        for f in "$state"/pids/*; do
            [ -e "$f" ] && kill -KILL -- "-${f##*/}" 2>/dev/null
        done
        for f in "$state"/ports/*; do
            [ -e "$f" ] && rm -rf "/tmp/touchpointd-ports/${f##*/}"
        done
        if [ "$keep" != 1 ]; then
            for f in "$state"/dirs/*; do
                [ -e "$f" ] && rm -rf "$(printf "%s" "${f##*/}" | tr % /)"
            done
            rm -rf "$state"
        fi
    ' tp-watchdog "$TP__OWNER" "$TP_STATE" "${TP_KEEP:-0}" \
        </dev/null >/dev/null 2>&1 &
    TP__WATCHDOG_PID=$!
}

# tp_init: set up harness state and install tp_cleanup as the EXIT trap
# (INT/TERM exit through it too). Call once, first.
tp_init() {
    if [ -n "${TP_STATE:-}" ] && [ -d "$TP_STATE" ]; then
        return 0
    fi
    TP_STATE=$(mktemp -d -t tp-state.XXXXXX) || return 1
    mkdir -p "$TP_STATE/pids" "$TP_STATE/dirs" "$TP_STATE/ports"
    TP__OWNER=$BASHPID
    tp__start_watchdog || return 1
    trap tp_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# check DESCRIPTION COMMAND...: run COMMAND; print "ok - DESCRIPTION" or
# "FAIL - DESCRIPTION" and count it in the caller's passed / failed (which the
# test sets to 0 and reports at its end). A test needing other output
# defines its own check after sourcing this file.
check() {
    local name=$1
    shift
    if "$@"; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "FAIL - $name"
        failed=$((failed + 1))
    fi
}

# tp_wait_for DESCRIPTION TIMEOUT_S COMMAND...: run COMMAND (a program or a
# shell function) every 0.1 s until it succeeds; after TIMEOUT_S (whole
# seconds) print DESCRIPTION and COMMAND's last output, and fail.
tp_wait_for() {
    if [ $# -lt 3 ]; then
        tp__err "usage: tp_wait_for DESCRIPTION TIMEOUT_S COMMAND..."
        return 2
    fi
    local desc=$1 timeout=$2 deadline out
    shift 2
    deadline=$(tp__deadline "$timeout")
    while :; do
        if out=$("$@" 2>&1); then
            return 0
        fi
        if ! tp__before "$deadline"; then
            tp__err "timed out after ${timeout}s waiting for: $desc"
            if [ -n "$out" ]; then
                printf '%s\n' "$out" | tail -n 5 | sed 's/^/tp:   /' >&2
            fi
            return 1
        fi
        sleep 0.1
    done
}

# tp_free_port: print a TCP port that nothing listens on at 127.0.0.1, and
# reserve it (machine-wide, by an atomic mkdir) until tp_cleanup, so two
# callers never get the same port. Ports come from 20000-32767, below Linux's
# ephemeral range, so outgoing connections do not take them meanwhile.
tp_free_port() {
    tp__need_init || return 1
    local base=/tmp/touchpointd-ports p owner i
    [ -d "$base" ] || mkdir -m 1777 "$base" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        if ! mkdir "$base/$p" 2>/dev/null; then
            # Taken; reclaim it if its owner shell is gone.
            owner=$(cat "$base/$p/owner" 2>/dev/null) || continue
            if [ -n "$owner" ] && ! tp__alive "$owner"; then
                rm -rf "${base:?}/$p"
            fi
            continue
        fi
        echo "$TP__OWNER" >"$base/$p/owner"
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            rm -rf "${base:?}/$p" # something listens there
            continue
        fi
        : >"$TP_STATE/ports/$p"
        echo "$p"
        return 0
    done
    tp__err "no free port found in 200 tries"
    return 1
}

# tp_http_port LOG: print the port of the first "serving ... on
# 127.0.0.1:PORT" line touchpointd wrote to LOG (http.port 0 picks a free
# one); nothing while it has not said. One sed reading the file, no pipe.
tp_http_port() {
    sed -n '/.*serving .* on 127\.0\.0\.1:\([0-9]*\).*/{s//\1/p;q}' "$1"
}

# tp_workdir: create a temp dir, print its path; tp_cleanup removes it
# unless TP_KEEP=1.
tp_workdir() {
    tp__need_init || return 1
    local d
    d=$(mktemp -d -t touchpointd.XXXXXX) || return 1
    : >"$TP_STATE/dirs/$(printf '%s' "$d" | tr / %)"
    echo "$d"
}

# ---- Redis -------------------------------------------------------------------

tp__redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

tp__redis_launch() {
    local dir=$TP__REDIS_DIR port=$TP__REDIS_PORT pid deadline
    pid=$(tp__spawn "$dir/redis.out" redis-server \
        --bind 127.0.0.1 --port "$port" --dir "$dir" \
        --save '' --appendonly yes --appendfsync everysec \
        --daemonize no --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log" --protected-mode yes) || return 1
    deadline=$(tp__deadline 20)
    until tp__redis_ping "$port"; do
        if ! tp__alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            return 3 # died: most likely the port was taken meanwhile
        fi
        if ! tp__before "$deadline"; then
            tp__err "redis-server on port $port not answering PING after 20s"
            tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
            tp__kill_group "$pid" 5
            return 1
        fi
        sleep 0.05
    done
    REDIS_PID=$pid
}

# tp_start_redis DIR: start redis-server (AOF on, no RDB snapshots) with its
# data in DIR; wait for PONG. Exports REDIS_PORT, REDIS_URL, REDIS_PID.
tp_start_redis() {
    tp__need_init || return 1
    if [ $# -ne 1 ]; then
        tp__err "usage: tp_start_redis DIR"
        return 2
    fi
    if [ -n "${REDIS_PID:-}" ] && tp__alive "$REDIS_PID"; then
        tp__err "redis already started by this shell (pid $REDIS_PID)"
        return 1
    fi
    command -v redis-server >/dev/null 2>&1 \
        || { tp__err "no redis-server: run make deps"; return 1; }
    mkdir -p "$1" || return 1
    TP__REDIS_DIR=$(cd "$1" && pwd)
    local try rc
    for try in 1 2 3; do
        TP__REDIS_PORT=$(tp_free_port) || return 1
        tp__say "starting redis on 127.0.0.1:$TP__REDIS_PORT in $TP__REDIS_DIR"
        rc=0
        tp__redis_launch || rc=$?
        [ "$rc" -eq 3 ] || break
        tp__err "redis-server exited at start on port $TP__REDIS_PORT (try $try)"
        tail -n 5 "$TP__REDIS_DIR/redis.log" >&2 2>/dev/null || true
    done
    [ "$rc" -eq 0 ] || return 1
    export REDIS_PORT=$TP__REDIS_PORT
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    export REDIS_PID
}

# tp_stop_redis: stop the Redis started by tp_start_redis (SIGTERM: it syncs
# the AOF and exits). Ports and dir are kept for tp_restart_redis.
tp_stop_redis() {
    if [ -z "${REDIS_PID:-}" ]; then
        tp__err "no redis started by this shell"
        return 1
    fi
    tp__kill_group "$REDIS_PID" 20 || return 1
    REDIS_PID=
}

# tp_restart_redis: stop Redis and start it again on the same port and dir;
# it reloads its AOF. Waits for PONG (which Redis sends only after loading).
tp_restart_redis() {
    if [ -z "${TP__REDIS_DIR:-}" ]; then
        tp__err "no redis started by this shell"
        return 1
    fi
    if [ -n "${REDIS_PID:-}" ]; then
        tp_stop_redis || return 1
    fi
    local rc=0
    tp__redis_launch || rc=$?
    if [ "$rc" -ne 0 ]; then
        tp__err "redis-server did not restart on port $TP__REDIS_PORT"
        tail -n 20 "$TP__REDIS_DIR/redis.log" >&2 2>/dev/null || true
        return 1
    fi
    export REDIS_PID
}

# ---- Kafka -------------------------------------------------------------------

# tp__kafka_ready BOOTSTRAP: the broker answers a metadata request and lists
# itself (so it is registered and unfenced).
tp__kafka_ready() {
    local first=${1%%,*}
    # A cheap connect first: kcat against a closed port waits out -m.
    (exec 3<>"/dev/tcp/${first%:*}/${first##*:}") 2>/dev/null || return 1
    kcat -b "$1" -L -m 3 -J 2>/dev/null | grep -q '"brokers":\[{'
}

# tp__kafka_write_config [SASL_PORT]: write server.properties. With
# SASL_PORT, add a SASL_PLAINTEXT listener there that takes SCRAM-SHA-512
# (the PLAINTEXT and CONTROLLER listeners stay unauthenticated).
tp__kafka_write_config() {
    local dir=$TP__KAFKA_DIR sasl=${1:-}
    local listeners="PLAINTEXT://127.0.0.1:$TP__KAFKA_PORT"
    local map="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if [ -n "$sasl" ]; then
        listeners+=",SASL_PLAINTEXT://127.0.0.1:$sasl"
        map+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
    fi
    cat >"$dir/server.properties" <<EOF
# Single-node KRaft test broker written by tests/harness/lib.sh.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$TP__KAFKA_CPORT
listeners=$listeners,CONTROLLER://127.0.0.1:$TP__KAFKA_CPORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$map
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
# 50 partitions by default: slow to create on first group join, no use here.
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
# Two cores: fewer threads than the defaults (3 network, 8 io).
num.network.threads=2
num.io.threads=4
EOF
    if [ -n "$sasl" ]; then
        # The users are SCRAM credentials in the cluster metadata (added at
        # format time); the listener only needs the login module.
        cat >>"$dir/server.properties" <<EOF
# Clients on the SASL_PLAINTEXT listener authenticate with SCRAM-SHA-512.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
}

# tp__kafka_format [STORAGE_TOOL_ARGS...]: format the data dir with a new
# cluster id; extra arguments go to `StorageTool format` (e.g. --add-scram).
tp__kafka_format() {
    local dir=$TP__KAFKA_DIR id
    rm -rf "$dir/data"
    # A cluster id is 16 random bytes, base64url without padding; making it
    # here saves a JVM start of `StorageTool random-uuid`.
    # An id starting with '-' would be read as an option by the tool's
    # argument parser (1 start in 64), so draw again.
    id=-
    while [[ $id == -* ]]; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    tp__java_tool kafka.tools.StorageTool format -t "$id" \
        -c "$dir/server.properties" "$@" >>"$dir/format.log" 2>&1 || {
        tp__err "kafka storage format failed (see $dir/format.log)"
        tail -n 20 "$dir/format.log" >&2
        return 1
    }
}

tp__kafka_launch() {
    local dir=$TP__KAFKA_DIR heap=${TP_KAFKA_HEAP:-512m} pid deadline
    local boot="127.0.0.1:$TP__KAFKA_PORT"
    TP__KAFKA_T0=$(tp__now)
    pid=$(tp__spawn "$dir/kafka.out" java "-Xmx$heap" "-Xms$heap" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$TP_KAFKA_LOG4J" \
        -Dkafka.logs.dir="$dir" \
        -cp "$TP_KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties") || return 1
    deadline=$(tp__deadline 60)
    until tp__kafka_ready "$boot"; do
        if ! tp__alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            if grep -q 'Address already in use' "$dir/broker.log" \
                "$dir/kafka.out" 2>/dev/null; then
                return 3
            fi
            tp__err "kafka broker exited during start (logs in $dir)"
            tail -n 20 "$dir/broker.log" "$dir/kafka.out" >&2 2>/dev/null || true
            return 1
        fi
        if ! tp__before "$deadline"; then
            tp__err "kafka broker on $boot not serving metadata after 60s"
            tail -n 20 "$dir/broker.log" "$dir/kafka.out" >&2 2>/dev/null || true
            tp__kill_group "$pid" 10
            return 1
        fi
        sleep 0.1
    done
    KAFKA_PID=$pid
    TP_KAFKA_READY_S=$(awk -v a="$TP__KAFKA_T0" -v b="$(tp__now)" \
        'BEGIN { printf "%.2f", b - a }')
    tp__say "kafka ready on $boot after ${TP_KAFKA_READY_S}s"
}

# tp_start_kafka DIR: format and start a single-node KRaft broker with its
# config, data and logs in DIR; wait (60 s at most) until it serves metadata.
# Exports KAFKA_PORT, KAFKA_BOOTSTRAP, KAFKA_PID (and TP_KAFKA_READY_S, the
# seconds from start to ready). If KAFKA_BOOTSTRAP is already set, start
# nothing: wait until that broker answers and use it (KAFKA_PID stays empty).
tp_start_kafka() {
    tp__need_init || return 1
    if [ $# -ne 1 ]; then
        tp__err "usage: tp_start_kafka DIR"
        return 2
    fi
    if [ -n "${KAFKA_BOOTSTRAP:-}" ] && [ -z "${TP__KAFKA_DIR:-}" ]; then
        TP_KAFKA_EXTERNAL=1
        export KAFKA_PID=
        KAFKA_PORT=${KAFKA_BOOTSTRAP##*:}
        KAFKA_PORT=${KAFKA_PORT%%,*}
        export KAFKA_PORT
        tp__say "using external kafka at $KAFKA_BOOTSTRAP"
        tp_wait_for "external kafka at $KAFKA_BOOTSTRAP to serve metadata" 60 \
            tp__kafka_ready "$KAFKA_BOOTSTRAP"
        return
    fi
    if [ -n "${KAFKA_PID:-}" ] && tp__alive "$KAFKA_PID"; then
        tp__err "kafka already started by this shell (pid $KAFKA_PID)"
        return 1
    fi
    tp__check_jars || return 1
    command -v kcat >/dev/null 2>&1 \
        || { tp__err "no kcat: run make deps"; return 1; }
    mkdir -p "$1" || return 1
    TP__KAFKA_DIR=$(cd "$1" && pwd)
    local try rc
    for try in 1 2 3; do
        TP__KAFKA_PORT=$(tp_free_port) || return 1
        TP__KAFKA_CPORT=$(tp_free_port) || return 1
        tp__say "starting kafka on 127.0.0.1:$TP__KAFKA_PORT" \
            "(controller $TP__KAFKA_CPORT) in $TP__KAFKA_DIR"
        tp__kafka_write_config || return 1
        tp__kafka_format || return 1
        rc=0
        tp__kafka_launch || rc=$?
        [ "$rc" -eq 3 ] || break
        tp__err "kafka port taken at start (try $try); new ports"
    done
    if [ "$rc" -ne 0 ]; then
        TP__KAFKA_DIR=
        return 1
    fi
    export KAFKA_PORT=$TP__KAFKA_PORT
    export KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
    export KAFKA_PID
}

# tp_start_kafka_sasl DIR USER PASS: like tp_start_kafka, but the broker has
# a second client listener, SASL_PLAINTEXT with SCRAM-SHA-512, and the SCRAM
# credential USER/PASS is created when the storage is formatted (KRaft
# bootstrap metadata, `StorageTool format --add-scram`). The PLAINTEXT
# listener stays (inter-broker traffic, and the harness's own tools:
# tp_create_topic, tp_topic_count); clients under test should be pointed at
# KAFKA_SASL_BOOTSTRAP. Exports what tp_start_kafka does, plus
# KAFKA_SASL_PORT, KAFKA_SASL_BOOTSTRAP, KAFKA_SASL_USER and
# KAFKA_SASL_MECHANISM (SCRAM-SHA-512). Always starts its own broker (an
# external KAFKA_BOOTSTRAP is ignored). tp_stop_kafka and tp_restart_kafka
# work on it as on any harness broker.
tp_start_kafka_sasl() {
    tp__need_init || return 1
    if [ $# -ne 3 ]; then
        tp__err "usage: tp_start_kafka_sasl DIR USER PASS"
        return 2
    fi
    local user=$2 pass=$3
    # The --add-scram value is parsed as [key=value,...]: keep it parseable.
    local bad='*[],=[\"]*'
    # shellcheck disable=SC2053
    if [[ -z $user || -z $pass || $user == $bad || $pass == $bad ]]; then
        tp__err "tp_start_kafka_sasl: USER and PASS must be non-empty and" \
            "hold none of , = [ ] \" \\"
        return 2
    fi
    if [ -n "${KAFKA_PID:-}" ] && tp__alive "$KAFKA_PID"; then
        tp__err "kafka already started by this shell (pid $KAFKA_PID)"
        return 1
    fi
    tp__check_jars || return 1
    command -v kcat >/dev/null 2>&1 \
        || { tp__err "no kcat: run make deps"; return 1; }
    mkdir -p "$1" || return 1
    TP__KAFKA_DIR=$(cd "$1" && pwd)
    TP_KAFKA_EXTERNAL=0
    local try rc sport
    for try in 1 2 3; do
        TP__KAFKA_PORT=$(tp_free_port) || return 1
        TP__KAFKA_CPORT=$(tp_free_port) || return 1
        sport=$(tp_free_port) || return 1
        tp__say "starting kafka on 127.0.0.1:$TP__KAFKA_PORT, SASL/SCRAM on" \
            "127.0.0.1:$sport (controller $TP__KAFKA_CPORT) in $TP__KAFKA_DIR"
        tp__kafka_write_config "$sport" || return 1
        tp__kafka_format --add-scram \
            "SCRAM-SHA-512=[name=$user,password=$pass]" || return 1
        rc=0
        tp__kafka_launch || rc=$?
        [ "$rc" -eq 3 ] || break
        tp__err "kafka port taken at start (try $try); new ports"
    done
    if [ "$rc" -ne 0 ]; then
        TP__KAFKA_DIR=
        return 1
    fi
    export KAFKA_PORT=$TP__KAFKA_PORT
    export KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
    export KAFKA_PID
    export KAFKA_SASL_PORT=$sport
    export KAFKA_SASL_BOOTSTRAP="127.0.0.1:$sport"
    export KAFKA_SASL_USER=$user
    export KAFKA_SASL_MECHANISM=SCRAM-SHA-512
}

# tp_stop_kafka: stop the broker started by tp_start_kafka (SIGTERM, clean
# shutdown, SIGKILL after 30 s). Ports and dir are kept for tp_restart_kafka.
tp_stop_kafka() {
    if [ "${TP_KAFKA_EXTERNAL:-0}" = 1 ]; then
        tp__err "kafka at $KAFKA_BOOTSTRAP is external; not stopping it"
        return 1
    fi
    if [ -z "${KAFKA_PID:-}" ]; then
        tp__err "no kafka started by this shell"
        return 1
    fi
    tp__kill_group "$KAFKA_PID" 30 || return 1
    KAFKA_PID=
}

# tp_restart_kafka: stop the broker and start it again on the same ports and
# data dir (no re-format); wait until it serves metadata.
tp_restart_kafka() {
    if [ "${TP_KAFKA_EXTERNAL:-0}" = 1 ]; then
        tp__err "kafka at $KAFKA_BOOTSTRAP is external; cannot restart it"
        return 1
    fi
    if [ -z "${TP__KAFKA_DIR:-}" ]; then
        tp__err "no kafka started by this shell"
        return 1
    fi
    if [ -n "${KAFKA_PID:-}" ]; then
        tp_stop_kafka || return 1
    fi
    local rc=0
    tp__kafka_launch || rc=$?
    if [ "$rc" -ne 0 ]; then
        tp__err "kafka did not restart on port $TP__KAFKA_PORT"
        return 1
    fi
    export KAFKA_PID
}

# tp__topic_leaders BOOTSTRAP TOPIC N: metadata shows TOPIC with exactly N
# partitions, each with a leader.
tp__topic_leaders() {
    local md n
    md=$(kcat -b "$1" -L -t "$2" -m 3 2>/dev/null) || return 1
    if printf '%s\n' "$md" | grep -q 'Broker:'; then
        return 1 # a partition or topic error, e.g. "Leader not available"
    fi
    n=$(printf '%s\n' "$md" | grep -cE '^ +partition [0-9]+, leader [0-9]+,') \
        || return 1
    [ "$n" -eq "$3" ]
}

# tp_create_topic NAME PARTITIONS [KEY=VALUE...]: create the topic
# (replication factor 1, or the broker default on an external cluster), with
# the given topic configs, and wait until all its partitions have leaders.
tp_create_topic() {
    if [ $# -lt 2 ]; then
        tp__err "usage: tp_create_topic NAME PARTITIONS [KEY=VALUE...]"
        return 2
    fi
    local configs=() c
    for c in "${@:3}"; do
        configs+=(--config "$c")
    done
    if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
        tp__err "no kafka: call tp_start_kafka first"
        return 1
    fi
    tp__check_jars || return 1
    local rf=(--replication-factor 1) out
    if [ "${TP_KAFKA_EXTERNAL:-0}" = 1 ]; then
        rf=()
    fi
    if ! out=$(tp__java_tool org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP" --create --topic "$1" \
        --partitions "$2" "${rf[@]}" "${configs[@]}" 2>&1); then
        tp__err "creating topic $1 failed:"
        printf '%s\n' "$out" | grep -v '^\s*at ' | head -n 5 >&2
        return 1
    fi
    tp_wait_for "topic $1: $2 partitions with leaders" 30 \
        tp__topic_leaders "$KAFKA_BOOTSTRAP" "$1" "$2"
}

# tp_topic_count NAME: print the number of messages in the topic, the sum
# over partitions of (end offset - start offset), from offsets only (no
# consuming; instant for any size). Transaction markers would count too.
tp_topic_count() {
    if [ $# -ne 1 ]; then
        tp__err "usage: tp_topic_count NAME"
        return 2
    fi
    if [ -z "${KAFKA_BOOTSTRAP:-}" ]; then
        tp__err "no kafka: call tp_start_kafka first"
        return 1
    fi
    local md parts
    md=$(kcat -b "$KAFKA_BOOTSTRAP" -L -t "$1" -m 5 2>&1) || {
        tp__err "metadata for topic $1: $md"
        return 1
    }
    parts=$(printf '%s\n' "$md" \
        | sed -n 's/^ *partition \([0-9][0-9]*\), leader [0-9].*/\1/p')
    if [ -z "$parts" ]; then
        tp__err "topic $1 has no partitions with leaders:"
        printf '%s\n' "$md" >&2
        return 1
    fi
    # kcat's query mode: timestamp -1 asks for the end offset, -2 the start.
    # One call each: kcat merges repeated partitions within one call.
    local ends starts plist
    read -r -d '' -a plist <<<"$parts" || true
    ends=$(tp__query_offsets "$1" -1 "${plist[@]}") || return 1
    starts=$(tp__query_offsets "$1" -2 "${plist[@]}") || return 1
    printf '%s\n%s\n' "$ends" "$starts" | awk -v nparts="${#plist[@]}" '
        NR <= nparts { e[$1] = $2; next }
        { s[$1] = $2 }
        END {
            n = 0
            for (p in e) {
                if (!(p in s)) { exit 1 }
                n += e[p] - s[p]
            }
            printf "%d\n", n
        }'
}

# tp__query_offsets TOPIC TS PARTITION...: print "partition offset" lines.
tp__query_offsets() {
    local topic=$1 ts=$2 q=() p out lines
    shift 2
    for p in "$@"; do
        q+=(-t "$topic:$p:$ts")
    done
    out=$(kcat -b "$KAFKA_BOOTSTRAP" -Q -m 10 "${q[@]}" 2>&1) || {
        tp__err "offset query for topic $topic failed: $out"
        return 1
    }
    lines=$(printf '%s\n' "$out" | awk -v topic="$topic" '
        $1 == topic && $3 == "offset" && $4 ~ /^[0-9]+$/ {
            gsub(/[][]/, "", $2)
            print $2, $4
        }')
    if [ "$(printf '%s\n' "$lines" | grep -c .)" -ne "$#" ]; then
        tp__err "unexpected offset answer for topic $topic:"
        printf '%s\n' "$out" >&2
        return 1
    fi
    printf '%s\n' "$lines"
}

# tp_cleanup: stop every server this shell started (process groups, SIGTERM
# then SIGKILL), release reserved ports, remove temp dirs unless TP_KEEP=1.
# The EXIT trap that tp_init installs; safe to call more than once. Calls a
# function tp_cleanup_hook first if the caller defined one (with
# TP_EXIT_STATUS set to the script's exit status).
tp_cleanup() {
    local rc=$? f pid d p
    [ -n "${TP_STATE:-}" ] && [ -d "$TP_STATE" ] || return "$rc"
    # Only the shell that ran tp_init cleans up, not a subshell of it.
    [ "${BASHPID}" = "${TP__OWNER:-}" ] || return "$rc"
    if declare -F tp_cleanup_hook >/dev/null; then
        TP_EXIT_STATUS=$rc tp_cleanup_hook || true
    fi
    for f in "$TP_STATE"/pids/*; do
        [ -e "$f" ] || continue
        pid=${f##*/}
        tp__kill_group "$pid" 30 || true
    done
    for f in "$TP_STATE"/ports/*; do
        [ -e "$f" ] || continue
        p=${f##*/}
        rm -rf "/tmp/touchpointd-ports/$p"
    done
    for f in "$TP_STATE"/dirs/*; do
        [ -e "$f" ] || continue
        d=$(printf '%s' "${f##*/}" | tr % /)
        if [ "${TP_KEEP:-0}" = 1 ]; then
            echo "tp: kept $d" >&2
        else
            rm -rf "$d"
        fi
    done
    if [ "${TP_KEEP:-0}" = 1 ]; then
        echo "tp: kept $TP_STATE" >&2
    else
        rm -rf "$TP_STATE"
    fi
    if [ -n "${TP__WATCHDOG_PID:-}" ]; then
        kill -TERM "$TP__WATCHDOG_PID" 2>/dev/null || true
        wait "$TP__WATCHDOG_PID" 2>/dev/null || true
        TP__WATCHDOG_PID=
    fi
    TP_STATE=
    # Forget the servers, so a later tp_init/tp_start_* (or a child test
    # inheriting the environment) does not take them for an external broker.
    if [ "${TP_KAFKA_EXTERNAL:-0}" != 1 ] && [ -n "${TP__KAFKA_DIR:-}" ]; then
        unset KAFKA_BOOTSTRAP KAFKA_PORT
    fi
    unset KAFKA_PID REDIS_PID REDIS_PORT REDIS_URL TP__KAFKA_DIR TP__REDIS_DIR \
        KAFKA_SASL_PORT KAFKA_SASL_BOOTSTRAP KAFKA_SASL_USER KAFKA_SASL_MECHANISM
    return "$rc"
}
