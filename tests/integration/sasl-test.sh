#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves Kafka security through librdkafka properties: a real KRaft broker
# whose client listener is SASL_PLAINTEXT with SCRAM-SHA-512 (the harness's
# tp_start_kafka_sasl) is consumed by touchpointd with credentials from the
# config, the password read from a secret file (`sasl.password_file` under
# `kafka:`). The stream is produced over SASL too, dead letters are produced
# over SASL by touchpointd, and the password is never logged.
#
# With a wrong password touchpointd must fail clearly, not hang silently:
#   1. within 10 s an error line names the SASL authentication failure;
#   2. /readyz never answers 200, and while the process is up its 503 reason
#      names the authentication failure (not just "waiting to join");
#   3. touchpointd's own log line (component main or consumer, not librdkafka
#      passed through as component=kafka) says Kafka authentication failed;
#   4. it exits on its own, non-zero, within 30 s of start;
#   5. it consumed nothing and recorded no offsets; the password is not logged.
# A missing secret file is refused by `touchpointd check` and by `run`,
# naming the key and the file.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh

AUTH_FAIL_LOG_S=10  # the failure is logged within this many seconds
AUTH_FAIL_EXIT_S=30 # ... and touchpointd has exited non-zero within this

passed=0
failed=0
t_start=$(tp__now)
since() { awk -v a="$1" -v b="$(tp__now)" 'BEGIN { printf "%.1f", b - a }'; }
finished=0
finish() {
    finished=1
    [ "$failed" -eq 0 ] || show_logs
    echo "# sasl-test took $(since "$t_start")s"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
bail() {
    failed=$((failed + 1))
    echo "FAIL - $*"
    finish || true
    exit 1
}

tp_init
dir=$(tp_workdir)
tpd_pid=
show_logs() {
    local f
    for f in "$dir"/*.err; do
        [ -s "$f" ] || continue
        echo "--- tail of $f"
        tail -n 15 "$f" | cut -c 1-400
    done
}
tp_cleanup_hook() {
    if [ -n "$tpd_pid" ] && kill -0 "$tpd_pid" 2>/dev/null; then
        kill -KILL "$tpd_pid" 2>/dev/null || true
        wait "$tpd_pid" 2>/dev/null || true
    fi
    # A command failed under set -e before the end: say so, in the same form.
    if [ "$finished" = 0 ]; then
        failed=$((failed + 1))
        echo "FAIL - the test stopped early (a step above failed)"
        finish || true
    fi
}

# A fresh random password each run: nothing could pass with a guessed one,
# and grepping the logs for it is meaningful.
user=touchpointd
pass="tp-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
wrong="wrong-$(head -c 12 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
mkdir -p "$dir/secrets"
chmod 700 "$dir/secrets"
printf '%s\n' "$pass" >"$dir/secrets/kafka"
printf '%s\n' "$wrong" >"$dir/secrets/kafka-wrong"
chmod 600 "$dir/secrets/kafka" "$dir/secrets/kafka-wrong"

tp_start_redis "$dir/redis"
tp_start_kafka_sasl "$dir/kafka" "$user" "$pass"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
echo "# servers up at $(since "$t_start")s: redis $REDIS_PORT, kafka SASL/SCRAM-SHA-512 on $KAFKA_SASL_BOOTSTRAP (harness PLAINTEXT $KAFKA_BOOTSTRAP)"

r() { redis-cli -p "$REDIS_PORT" "$@"; }
recorded() { r HVALS "tp:offsets:$1" | awk '{ s += $1 } END { print s + 0 }'; }
drained() { [ "$(recorded "$1")" -eq "$2" ]; }
sasl_x=(-X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512
    -X "sasl.username=$user")

# ---- the broker really asks for credentials ------------------------------------
no_creds_refused() {
    ! timeout 20 kcat -L -b "$KAFKA_SASL_BOOTSTRAP" -m 3 >/dev/null 2>&1
}
check "the SASL listener refuses a client without credentials" no_creds_refused
wrong_refused() {
    local out
    out=$(timeout 20 kcat -L -b "$KAFKA_SASL_BOOTSTRAP" -m 3 "${sasl_x[@]}" \
        -X "sasl.password=$wrong" 2>&1) && return 1
    printf '%s\n' "$out" | grep -q 'SASL authentication error'
}
check "the SASL listener refuses a wrong password (kcat: SASL authentication error)" \
    wrong_refused
right_accepted() {
    timeout 20 kcat -L -b "$KAFKA_SASL_BOOTSTRAP" -m 10 "${sasl_x[@]}" \
        -X "sasl.password=$pass" -t touchpoints 2>/dev/null | grep -q 'partition 3'
}
check "the SASL listener takes $user with the right password (kcat metadata)" \
    right_accepted

# ---- the stream, produced over SASL --------------------------------------------
build/tpgen --seed 23 --count 5000 --span 1m --invalid 10 --duplicates 20 \
    --brokers "$KAFKA_SASL_BOOTSTRAP" --topic touchpoints \
    "${sasl_x[@]}" -X "sasl.password=$pass" 2>"$dir/tpgen.err" ||
    bail "tpgen produced over SASL ($(cat "$dir/tpgen.err"))"
total=$(tp_topic_count touchpoints)
echo "# $(cat "$dir/tpgen.err")"
check "tpgen produced 5030 messages over SASL/SCRAM" test "$total" -eq 5030

write_config() { # FILE GROUP SECRET_FILE
    cat >"$1" <<YAML
kafka:
  bootstrap.servers: $KAFKA_SASL_BOOTSTRAP
  group.id: $2
  security.protocol: SASL_PLAINTEXT
  sasl.mechanisms: SCRAM-SHA-512
  sasl.username: $user
  sasl.password_file: $3
input:
  topics: [touchpoints]
redis:
  url: $REDIS_URL
http:
  port: 0
YAML
}
http_port() { # LOG
    tp_http_port "$1"
}
metric_sum() { # PORT NAME
    curl -sf "http://127.0.0.1:$1/metrics" |
        awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'
}
no_secret_in() { # FILE SECRET
    ! grep -qF -- "$2" "$1"
}

# ---- right password, from the secret file ----------------------------------------
write_config "$dir/good.yaml" tp-sasl "$dir/secrets/kafka"
check_ok() { build/touchpointd check -c "$dir/good.yaml" >"$dir/check.out" 2>&1; }
check "touchpointd check accepts kafka: sasl.password_file" check_ok
check "... and does not print the password" no_secret_in "$dir/check.out" "$pass"

t_run=$(tp__now)
build/touchpointd run -c "$dir/good.yaml" 2>"$dir/good.err" &
tpd_pid=$!
if tp_wait_for "touchpointd (SASL) to record all $total offsets in Redis" 90 \
    drained tp-sasl "$total"; then
    echo "# consumed $total messages over SASL in $(since "$t_run")s"
    check "touchpointd consumed the whole topic over SASL/SCRAM-SHA-512" true
else
    check "touchpointd consumed the whole topic over SASL/SCRAM-SHA-512 (recorded $(recorded tp-sasl))" false
fi
port=$(http_port "$dir/good.err")
caught_up() { [ "$(metric_sum "$port" touchpointd_events_accepted_total)" -eq 5000 ]; }
tp_wait_for "/metrics to show 5000 accepted" 10 caught_up || true
check "/metrics: 5000 accepted, 10 rejected, 20 duplicates" test \
    "$(metric_sum "$port" touchpointd_events_accepted_total):$(metric_sum "$port" touchpointd_events_rejected_total):$(metric_sum "$port" touchpointd_events_duplicate_total)" \
    = "5000:10:20"
check "/readyz answers 200" curl -sf "http://127.0.0.1:$port/readyz" -o /dev/null
dlq_count() { [ "$(tp_topic_count touchpoints.dlq)" -eq 10 ]; }
tp_wait_for "10 dead letters" 20 dlq_count || true
check "the dead-letter producer authenticated too: touchpoints.dlq holds 10 messages" \
    dlq_count
no_auth_error() { ! grep -qi 'authentication' "$dir/good.err"; }
check "no authentication error logged with the right password" no_auth_error
kill -TERM "$tpd_pid"
rc=0
wait "$tpd_pid" || rc=$?
tpd_pid=
check "SIGTERM: exit status 0" test "$rc" -eq 0
check "the start-up line shows the password masked (kafka.sasl.password=*****)" \
    grep -qF 'kafka.sasl.password=*****' "$dir/good.err"
check "the password never appears in touchpointd's log" \
    no_secret_in "$dir/good.err" "$pass"

# ---- a missing secret file ----------------------------------------------------------
write_config "$dir/missing.yaml" tp-missing "$dir/secrets/nosuch"
missing_refused() { # COMMAND: fails, naming the key and the file
    local rc=0
    timeout 20 build/touchpointd "$1" -c "$dir/missing.yaml" >"$dir/missing-$1.err" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
        grep -q 'sasl.password_file' "$dir/missing-$1.err" &&
        grep -qF "$dir/secrets/nosuch" "$dir/missing-$1.err"
}
check "missing secret file: touchpointd check fails, naming kafka.sasl.password_file and the file" \
    missing_refused check
check "missing secret file: touchpointd run exits non-zero at once, saying the same" \
    missing_refused run
echo "#   says: $(head -n 1 "$dir/missing-check.err")"

# ---- wrong password: fail clearly ---------------------------------------------------
write_config "$dir/wrong.yaml" tp-wrong "$dir/secrets/kafka-wrong"
t0=$(tp__now)
build/touchpointd run -c "$dir/wrong.yaml" 2>"$dir/wrong.err" &
tpd_pid=$!
deadline=$(tp__deadline "$AUTH_FAIL_EXIT_S")
t_logged='' ready_200=0 ready_body='' ready_seen=0
while tp__before "$deadline" && kill -0 "$tpd_pid" 2>/dev/null; do
    if [ -z "$t_logged" ] && grep -qi 'SASL authentication' "$dir/wrong.err"; then
        t_logged=$(since "$t0")
    fi
    wport=$(http_port "$dir/wrong.err")
    if [ -n "$wport" ]; then
        # Keep only an answer asked for after touchpointd itself declared the
        # failure (its own error line; librdkafka's log line comes a moment
        # earlier, before the error reaches the service): the line is looked
        # for before the request, so the answer cannot predate it.
        declared=0
        if grep -E 'level=error component=(main|consumer)' "$dir/wrong.err" |
            grep -qi 'authentication'; then
            declared=1
        fi
        code=$(curl -s -o "$dir/wrong.readyz" -w '%{http_code}' \
            "http://127.0.0.1:$wport/readyz" 2>/dev/null || true)
        case $code in
        200) ready_200=1 ;;
        503)
            if [ "$declared" = 1 ]; then
                ready_seen=1
                ready_body=$(cat "$dir/wrong.readyz")
            fi
            ;;
        esac
    fi
    sleep 0.2
done
[ -n "$t_logged" ] || ! grep -qi 'SASL authentication' "$dir/wrong.err" ||
    t_logged=$(since "$t0")
alive_at_deadline=0
if kill -0 "$tpd_pid" 2>/dev/null; then
    alive_at_deadline=1
    kill -TERM "$tpd_pid"
fi
rc=0
wait "$tpd_pid" || rc=$?
tpd_pid=
t_end=$(since "$t0")
echo "# wrong password: failure logged after ${t_logged:-never}s; ended after ${t_end}s" \
    "($([ "$alive_at_deadline" = 1 ] && echo "still running at ${AUTH_FAIL_EXIT_S}s, stopped by SIGTERM" || echo "exited by itself"), status $rc)"
echo "#   /readyz said: ${ready_body:-(no 503 answer after the failure was logged)}"
echo "#   first error: $(grep -m 1 'level=error' "$dir/wrong.err" | cut -c 1-300)"
logged_fast() {
    [ -n "$t_logged" ] &&
        awk -v t="$t_logged" -v m="$AUTH_FAIL_LOG_S" 'BEGIN { exit !(t < m) }' &&
        grep -i 'SASL authentication' "$dir/wrong.err" | grep -q 'level=error'
}
check "wrong password: an error line names the SASL authentication failure within ${AUTH_FAIL_LOG_S}s" \
    logged_fast
check "wrong password: /readyz never answered 200" test "$ready_200" -eq 0
readyz_names_auth() {
    # Not applicable if touchpointd had already exited when asked.
    [ "$ready_seen" = 1 ] && [ -n "$ready_body" ] || return 0
    printf '%s\n' "$ready_body" | grep -qi 'auth'
}
check "wrong password: while up, /readyz's 503 reason names the authentication failure" \
    readyz_names_auth
own_line() {
    grep -E 'level=(error|fatal)' "$dir/wrong.err" |
        grep -E 'component=(main|consumer)' | grep -qi 'authentication'
}
check "wrong password: touchpointd's own error line (component main/consumer) says Kafka authentication failed" \
    own_line
check "wrong password: touchpointd exited by itself within ${AUTH_FAIL_EXIT_S}s" \
    test "$alive_at_deadline" -eq 0
check "wrong password: exit status is non-zero (got $rc)" test "$rc" -ne 0
check "wrong password: nothing consumed, no offsets recorded" \
    test "$(r EXISTS tp:offsets:tp-wrong)" -eq 0
check "wrong password: the wrong password never appears in the log" \
    no_secret_in "$dir/wrong.err" "$wrong"

finish
