#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# alerts-test: proves alert rules end to end against a real Kafka broker, a
# real redis-server and a real Prometheus Alertmanager (Debian's
# prometheus-alertmanager on a free loopback port, clustering off).
#
# A bash producer writes keyed events with occurred_at = now (epoch ms) once
# a second (touchpointd runs on the wall clock), so every value is known:
#   healthy   acme/phone/billing, acme/phone/sales, globex/phone/default:
#             call.answered with wait_ms 3-7 s; acme/chat/support,
#             globex/chat/default, globex/chat/vip, globex/phone/default:
#             survey.nps, one detractor in five;
#             acme/phone/vip: one 200 s wait every 20 s (never min_samples);
#   incident  acme/phone/billing waits 200-220 s           -> wait-spike
#             globex/chat/default +3 detractors a second   -> detractor-surge
#             decoys the rules' `match` must ignore: acme/chat/support DM
#             waits of 200 s, globex/phone/default +3 detractors a second;
#   healthy   again, until both alerts resolved and a while after.
# Rules: wait_p90_ms > 60000 (phone; resolve line 30000) and detractor_rate
# > 0.5 (chat; resolve line 0.4) over a 1m window of 10s buckets,
# min_samples 5, for 0s. The resolve lines keep a rate that leaves the
# window bucket by bucket from flapping across the threshold (without them
# a firing/resolved/firing at 0.5/0.51 would be correct and the count here
# would not be exact).
#
# Verified: exactly one firing and one resolved notification per incident
# group and none for any other group, on the Kafka topic (valid per
# schemas/alert.schema.json, keyed by the fingerprint, which is recomputed
# here), in the Redis streams tp:{T}:alerts and on the channel tp:alerts;
# tp:{T}:alerts:active empty at the end; Alertmanager's GET /api/v2/alerts
# lists exactly the two alerts while they fire and neither after. Mid-
# incident touchpointd is killed with SIGKILL and restarted (same group,
# static membership): it restores the two firing alerts, sends no second
# firing, Alertmanager keeps the original startsAt, and both still resolve.
# Every produced event (unique event_ids) is counted exactly once: no
# duplicates on /metrics or in the run summary, and the 5m KPIs, which span
# the whole run, add up to the number produced. Finally `touchpointd
# backtest` on every produced event prints the same transitions per group
# (times within two buckets).
#
# Ends with "N passed, M failed"; exits non-zero if anything failed.
# Installs prometheus-alertmanager (apt) and check-jsonschema (pip) when
# missing. TP_KEEP=1 keeps the temp dir with every log.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh

t_begin=$(date +%s%3N)
now_ms() { date +%s%3N; }
say() { printf '# %s\n' "$*"; }

# ---- prerequisites -----------------------------------------------------------
AM_BIN=/usr/bin/prometheus-alertmanager
if [ ! -x "$AM_BIN" ]; then
    say "installing prometheus-alertmanager (apt)"
    as_root() {
        if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
    }
    apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 -q -y)
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
        install --no-install-recommends prometheus-alertmanager \
        >/tmp/alerts-test-apt.log 2>&1; then
        as_root apt-get "${apt_opts[@]}" update >>/tmp/alerts-test-apt.log 2>&1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" \
            install --no-install-recommends prometheus-alertmanager \
            >>/tmp/alerts-test-apt.log 2>&1 || {
            tail -n 20 /tmp/alerts-test-apt.log >&2
            echo "alerts-test: cannot install prometheus-alertmanager" >&2
            exit 1
        }
    fi
    [ -x "$AM_BIN" ] || AM_BIN=$(command -v prometheus-alertmanager)
fi
if ! python3 -m check_jsonschema --version >/dev/null 2>&1; then
    python3 -m pip install --quiet check-jsonschema
fi
[ -x build/touchpointd ] || make -s all

tp_init
dir=$(tp_workdir)

passed=0
failed=0
show_logs() {
    local f
    for f in "$dir"/touchpointd*.log "$dir"/am.log "$dir"/producer.err; do
        [ -s "$f" ] || continue
        echo "--- tail of $f"
        tail -n 25 "$f"
    done
}
tp_cleanup_hook() {
    # The producer is a child of this shell, not a registered server.
    echo stop >"$dir/phase" 2>/dev/null || true
    if [ -n "${prod_pid:-}" ] && tp__alive "$prod_pid"; then
        kill -TERM "$prod_pid" 2>/dev/null || true
        wait "$prod_pid" 2>/dev/null || true
    fi
    [ "${failed:-1}" -eq 0 ] || show_logs
}
r() { redis-cli -p "$REDIS_PORT" "$@"; }

# ---- the JSON side, in Python (stdlib json + jsonschema) ----------------------
cat >"$dir/alerts.py" <<'PY'
import json, sys
from datetime import datetime, timezone

def fnv(*parts):
    h = 0xcbf29ce484222325
    for p in parts:
        for b in p.encode() + b"\0":
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h

def ms(t):
    if t is None:
        return None
    d = datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(round(d.timestamp() * 1000))

def load(path, keyed):
    """(key, alert) pairs of a file: JSON lines, or KEY<TAB>JSON lines."""
    out = []
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        key = None
        if keyed:
            key, _, line = line.partition("\t")
        out.append((key, json.loads(line)))
    return out

def group(a):
    return "%s/%s/%s/%s" % (a["rule"], a["tenant"], a["channel"], a["queue"])

def cmd_transitions(path, keyed="0"):
    # One line a notification, in file order: GROUP STATUS
    for _, a in load(path, keyed == "1"):
        print(group(a), a["status"])

def cmd_validate(schema_path, path, keyed="0"):
    import jsonschema
    schema = json.load(open(schema_path))
    v = jsonschema.Draft202012Validator(schema)
    bad = 0
    for i, (_, a) in enumerate(load(path, keyed == "1")):
        for e in v.iter_errors(a):
            bad += 1
            print("message %d: %s at %s" % (i + 1, e.message, list(e.path)))
    return 1 if bad else 0

def cmd_fingerprints(path, keyed="0"):
    # Every fingerprint is FNV-1a 64 of rule, tenant, channel, queue (each
    # NUL-terminated); on a keyed file the key is the fingerprint too.
    bad = 0
    for key, a in load(path, keyed == "1"):
        want = fnv(a["rule"], a["tenant"], a["channel"], a["queue"])
        if a["fingerprint"] != want or (keyed == "1" and key != want):
            bad += 1
            print("%s: fingerprint %s key %s, expected %s" % (group(a), a["fingerprint"], key, want))
    return 1 if bad else 0

def cmd_episodes(path, t_inc0, t_inc1, resolve, keyed="0"):
    # Each group: firing then resolved, the same starts_at, the firing value
    # beyond the threshold, the resolved one within its rule's resolve line
    # (RESOLVE: RULE=LINE,...); fired after the incident began, resolved
    # after it ended.
    t_inc0, t_inc1 = int(t_inc0), int(t_inc1)
    lines = {k: float(v) for k, v in (x.split("=") for x in resolve.split(","))}
    seen, bad = {}, 0
    for _, a in load(path, keyed == "1"):
        seen.setdefault(group(a), []).append(a)
    for g, l in sorted(seen.items()):
        if [a["status"] for a in l] != ["firing", "resolved"]:
            print("%s: statuses %s" % (g, [a["status"] for a in l])); bad += 1
            continue
        f, r = l
        s0, s1, e1 = ms(f["starts_at"]), ms(r["starts_at"]), ms(r["ends_at"])
        thr = f.get("threshold")
        print("%s: fired %s value %s (threshold %s), resolved %s value %s: %.1f s after the incident began, %.1f s after it ended"
              % (g, f["starts_at"], f["value"], thr, r["ends_at"], r["value"],
                 (s0 - t_inc0) / 1000, (e1 - t_inc1) / 1000))
        if s0 != s1:
            print("%s: resolved starts_at %s != firing %s" % (g, r["starts_at"], f["starts_at"])); bad += 1
        if f["ends_at"] is not None or e1 is None or e1 <= s0:
            print("%s: bad ends_at" % g); bad += 1
        if not (isinstance(f["value"], (int, float)) and f["value"] > thr):
            print("%s: firing value %s not above %s" % (g, f["value"], thr)); bad += 1
        if not (isinstance(r["value"], (int, float)) and r["value"] <= lines[f["rule"]]):
            print("%s: resolved value %s, expected a number <= %s" % (g, r["value"], lines[f["rule"]])); bad += 1
        if s0 < t_inc0:
            print("%s: fired before the incident began" % g); bad += 1
        if e1 < t_inc1:
            print("%s: resolved before the incident ended" % g); bad += 1
    return 1 if bad else 0

def cmd_timing(a_path, b_path, tol_ms):
    # Same groups; starts_at and ends_at of the two files within tol_ms.
    tol_ms = int(tol_ms)
    def times(p):
        d = {}
        for _, a in load(p, False):
            d.setdefault(group(a), {})[a["status"]] = a
        return d
    A, B = times(a_path), times(b_path)
    bad = 0
    for g in sorted(set(A) | set(B)):
        for st, field in (("firing", "starts_at"), ("resolved", "ends_at")):
            x, y = A.get(g, {}).get(st), B.get(g, {}).get(st)
            if x is None or y is None:
                print("%s %s: missing on one side" % (g, st)); bad += 1
                continue
            d = ms(y[field]) - ms(x[field])
            print("%s %s: run %s, backtest %s (%+.1f s)" % (g, st, x[field], y[field], d / 1000))
            if abs(d) > tol_ms:
                bad += 1
    return 1 if bad else 0

def cmd_xrange(path):
    # redis-cli XRANGE raw output (id, field, value, ...) -> JSON lines; the
    # entry's fingerprint field must equal the alert's.
    lines = [l.rstrip("\n") for l in open(path)]
    bad = 0
    for i in range(0, len(lines) - len(lines) % 5, 5):
        _, f1, fp, f2, js = lines[i:i + 5]
        a = json.loads(js)
        if (f1, f2) != ("fingerprint", "alert") or fp != a["fingerprint"]:
            bad += 1
            sys.stderr.write("stream entry %s: fields %s %s fingerprint %s\n" % (lines[i], f1, f2, fp))
        print(json.dumps(a, separators=(",", ":")))
    if len(lines) % 5:
        sys.stderr.write("stream output of %d lines is not whole entries\n" % len(lines)); bad += 1
    return 1 if bad else 0

def cmd_published(path):
    # redis-cli SUBSCRIBE raw output -> the JSON of each message.
    lines = [l.rstrip("\n") for l in open(path)]
    i = 0
    while i + 2 < len(lines):
        if lines[i] == "message" and lines[i + 1] == "tp:alerts":
            print(lines[i + 2]); i += 3
        else:
            i += 1

def cmd_am(path, rules):
    # GET /api/v2/alerts -> ALERTNAME/TENANT/CHANNEL/QUEUE STATE STARTS_AT
    # SEVERITY/TEAM for the alerts of our rules, sorted.
    rules = rules.split(",")
    out = []
    for a in json.load(open(path)):
        l = a.get("labels", {})
        if l.get("alertname") in rules:
            out.append("%s/%s/%s/%s %s %s %s/%s" % (l.get("alertname"), l.get("tenant"), l.get("channel"),
                                                     l.get("queue"), a.get("status", {}).get("state"),
                                                     a.get("startsAt"), l.get("severity"), l.get("team", "-")))
    for o in sorted(out):
        print(o)

def cmd_starts(path):
    # GROUP STARTS_AT of the firing notifications (Alertmanager's startsAt form)
    for _, a in load(path, True):
        if a["status"] == "firing":
            print(group(a), a["starts_at"])

sys.exit(globals()["cmd_" + sys.argv[1]](*sys.argv[2:]) or 0)
PY
py() { python3 "$dir/alerts.py" "$@"; }

# ---- servers -------------------------------------------------------------------
tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
say "kafka ready after ${TP_KAFKA_READY_S:-?} s at $KAFKA_BOOTSTRAP, redis at $REDIS_URL"

am_port=$(tp_free_port)
mkdir -p "$dir/am"
cat >"$dir/am/alertmanager.yml" <<'YAML'
route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blackhole
YAML
am_pid=$(tp__spawn "$dir/am.log" "$AM_BIN" \
    --config.file="$dir/am/alertmanager.yml" --storage.path="$dir/am/data" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    --log.level=warn)
AM="http://127.0.0.1:$am_port"
tp_wait_for "alertmanager on $AM to be ready" 30 curl -sf "$AM/-/ready" -o /dev/null
say "alertmanager $("$AM_BIN" --version 2>&1 | head -n 1 | awk '{print $3}') ready at $AM (pid $am_pid)"

# Topic creation starts a JVM each: the three in parallel.
topic_pids=()
for t in "touchpoints 2" "touchpoints.dlq 1" "touchpoint.alerts 1"; do
    # shellcheck disable=SC2086
    tp_create_topic $t &
    topic_pids+=($!)
done
for p in "${topic_pids[@]}"; do wait "$p"; done

# ---- touchpointd -----------------------------------------------------------------
cfg=$dir/touchpointd.yaml
cat >"$cfg" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: alerts-itest
  group.instance.id: alerts-itest-1
  session.timeout.ms: 6000
input:
  topics: [touchpoints]
redis:
  url: $REDIS_URL
aggregation:
  bucket: 10s
  windows: [1m, 5m]
  flush_interval: 1s
http:
  port: 0
log:
  stats_interval: 5s
alerts:
  - name: wait-spike
    metric: wait_p90_ms
    window: 1m
    match: {channel: phone}
    by: [tenant, channel, queue]
    above: 60000
    resolve: 30000
    min_samples: 5
    severity: page
    summary: "p90 wait {{value}} ms on {{channel}}/{{queue}}"
    labels: {team: voice}
  - name: detractor-surge
    metric: detractor_rate
    window: 1m
    match: {channel: chat}
    by: [tenant, channel, queue]
    above: 0.5
    resolve: 0.4
    min_samples: 5
    summary: "detractor rate {{value}} on {{tenant}} {{channel}}/{{queue}}"
alert_outputs:
  kafka_topic: touchpoint.alerts
  alertmanager_url: $AM
  resend_interval: 5s
YAML
check "touchpointd check accepts the config and its 2 rules" \
    grep -q '(2 alert rules)' <(build/touchpointd check -c "$cfg" 2>&1)

# start_tpd LOG: start `touchpointd run` as a child of this shell (so its
# exit status can be waited for) in a session of its own, registered with the
# harness so cleanup and its watchdog stop it; wait until it evaluates alerts.
start_tpd() {
    tpd_log=$1
    setsid build/touchpointd run -c "$cfg" </dev/null >"$tpd_log" 2>&1 &
    tpd_pid=$!
    : >"$TP_STATE/pids/$tpd_pid"
    tp_wait_for "touchpointd to take over alerting ($tpd_log)" 60 \
        grep -q 'active alerts restored' "$tpd_log" || return 1
    tpd_port=$(tp_http_port "$tpd_log")
    tp_wait_for "touchpointd /readyz" 30 \
        curl -sf "http://127.0.0.1:$tpd_port/readyz" -o /dev/null || return 1
}
# abort WHY: a failure the rest cannot run without.
abort() {
    echo "FAIL - $*"
    failed=$((failed + 1))
    echo "$passed passed, $failed failed"
    exit 1
}

# ---- the producer ------------------------------------------------------------------
# One tick a second; every event of a tick has occurred_at = the tick's wall
# clock. Phase from $dir/phase: healthy | incident | stop. Each tick's events
# go to Kafka (kcat, keyed by correlation id) and to events.ndjson in order.
ev=0
emit() { # KEY JSON-BODY-WITHOUT-ID-AND-TIME
    ev=$((ev + 1))
    printf '%s\t{"event_id":"ev-%d","occurred_at":%s,%s}\n' "$1" "$ev" "$now" "$2"
}
call() { # TENANT QUEUE WAIT_MS
    emit "call-$((ev + 1))" "$(printf '"type":"call.answered","tenant":"%s","channel":"phone","queue":"%s","call_id":"call-%d","wait_ms":%d' \
        "$1" "$2" $((ev + 1)) "$3")"
}
dm_reply() { # TENANT CHANNEL QUEUE WAIT_MS
    emit "conv-$((ev + 1))" "$(printf '"type":"dm.replied","tenant":"%s","channel":"%s","queue":"%s","conversation_id":"conv-%d","wait_ms":%d' \
        "$1" "$2" "$3" $((ev + 1)) "$4")"
}
nps() { # TENANT CHANNEL QUEUE SCORE
    emit "cust-$((ev + 1))" "$(printf '"type":"survey.nps","tenant":"%s","channel":"%s","queue":"%s","customer_id":"cust-%d","score":%d' \
        "$1" "$2" "$3" $((ev + 1)) "$4")"
}
healthy_score() { # one detractor in five
    local s=(10 9 10 9 3)
    echo "${s[$(((tick + $1) % 5))]}"
}
gen_tick() {
    local i
    for i in 1 2; do
        if [ "$phase" = incident ]; then
            call acme billing $((200000 + RANDOM % 20000))
        else
            call acme billing $((4000 + RANDOM % 2000))
        fi
        call acme sales $((3000 + RANDOM % 4000))
        call globex default $((4000 + RANDOM % 2000))
    done
    [ $((tick % 20)) -ne 0 ] || call acme vip 200000 # sparse: < min_samples
    nps acme chat support "$(healthy_score 0)"
    nps globex chat default "$(healthy_score 1)"
    nps globex chat vip "$(healthy_score 2)"
    nps globex phone default "$(healthy_score 3)"
    if [ "$phase" = incident ]; then
        for i in 1 2 3; do
            nps globex chat default 1   # detractor surge
            nps globex phone default 0  # decoy: the rule matches chat only
        done
        dm_reply acme chat support 200000 # decoy: wait-spike matches phone only
    fi
}
producer() {
    local t0 next wait_ms n
    tick=0
    RANDOM=20261123
    t0=$(now_ms)
    while :; do
        phase=$(cat "$dir/phase")
        [ "$phase" != stop ] || break
        now=$(now_ms)
        gen_tick >"$dir/tick.tsv"
        if ! kcat -P -b "$KAFKA_BOOTSTRAP" -t touchpoints -K $'\t' \
            -X linger.ms=5 <"$dir/tick.tsv" 2>>"$dir/producer.err"; then
            echo "tick $tick: kcat failed" >>"$dir/producer.err"
        fi
        cut -f 2- "$dir/tick.tsv" >>"$dir/events.ndjson"
        n=$(wc -l <"$dir/tick.tsv")
        echo "$tick $phase $now $n" >>"$dir/ticks.log"
        tick=$((tick + 1))
        echo "$tick" >"$dir/ticks.tmp" && mv "$dir/ticks.tmp" "$dir/ticks"
        next=$((t0 + tick * 1000))
        wait_ms=$((next - $(now_ms)))
        if [ "$wait_ms" -gt 0 ]; then
            sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
        fi
    done
}
set_phase() { echo "$1" >"$dir/phase.tmp" && mv "$dir/phase.tmp" "$dir/phase"; }
ticks() { cat "$dir/ticks" 2>/dev/null || echo 0; }
ticks_at_least() { [ "$(ticks)" -ge "$1" ]; }
wait_ticks() { # N: wait until N more ticks were produced
    local until=$(($(ticks) + $1))
    tp_wait_for "$1 producer ticks" $(($1 * 3 + 10)) ticks_at_least "$until"
}

# ---- observers ---------------------------------------------------------------------
sub_pid=$(tp__spawn "$dir/published.raw" redis-cli -p "$REDIS_PORT" SUBSCRIBE tp:alerts)
tp_wait_for "redis-cli to subscribe to tp:alerts" 10 grep -qx subscribe "$dir/published.raw"
kafka_alerts() { # -> $dir/kafka.tsv (KEY<TAB>JSON)
    kcat -C -b "$KAFKA_BOOTSTRAP" -t touchpoint.alerts -e -q -f '%k\t%s\n' \
        >"$dir/kafka.tsv" 2>"$dir/kcat-c.err"
}
kafka_has() { # N STATUS: at least N notifications of STATUS on the topic
    kafka_alerts
    [ "$(py transitions "$dir/kafka.tsv" 1 | grep -c " $2\$")" -ge "$1" ]
}
am_alerts() { # -> lines GROUP STATE STARTS_AT of our rules
    curl -sf "$AM/api/v2/alerts" -o "$dir/am.json" &&
        py am "$dir/am.json" wait-spike,detractor-surge
}
expected_am="detractor-surge/globex/chat/default warning/-
wait-spike/acme/phone/billing page/voice"
am_shows_both_active() {
    [ "$(am_alerts | awk '$2 == "active" { print $1, $4 }')" = "$expected_am" ]
}
am_shows_none() { [ -z "$(am_alerts)" ]; }
# want TENANT CHANNEL:QUEUE FIELD OP NUMBER: a field of the 1m KPI hash
# compared (OP one of > >= <= <); prints it; clears $want_ok on a miss.
want() {
    local v
    v=$(r HGET "tp:{$1}:kpi:1m:$2" "$3")
    printf '#   %s/%s 1m %s = %s (want %s %s)\n' "$1" "${2/://}" "$3" "${v:-absent}" "$4" "$5"
    awk -v a="$v" -v op="$4" -v b="$5" 'BEGIN {
        if (a == "") exit 1
        if (op == ">") exit !(a > b)
        if (op == ">=") exit !(a >= b)
        if (op == "<=") exit !(a <= b)
        if (op == "<") exit !(a < b)
        exit 1 }' || want_ok=1
}
decoys_beyond_the_lines() {
    want_ok=0
    want acme chat:support wait_n '>=' 5
    want acme chat:support wait_p90_ms '>' 60000
    want globex phone:default nps_n '>=' 5
    want globex phone:default detractor_rate '>' 0.5
    return "$want_ok"
}
sparse_below_min_samples() {
    want_ok=0
    want acme phone:vip wait_n '>=' 1
    want acme phone:vip wait_n '<' 5
    want acme phone:vip wait_p90_ms '>' 60000
    return "$want_ok"
}
healthy_under_the_lines() {
    want_ok=0
    want acme phone:sales wait_n '>=' 5
    want acme phone:sales wait_p90_ms '<=' 60000
    want globex phone:default wait_n '>=' 5
    want globex phone:default wait_p90_ms '<=' 60000
    want acme chat:support nps_n '>=' 5
    want acme chat:support detractor_rate '<=' 0.5
    want globex chat:vip nps_n '>=' 5
    want globex chat:vip detractor_rate '<=' 0.5
    return "$want_ok"
}
incident_beyond_the_lines() {
    want_ok=0
    want acme phone:billing wait_p90_ms '>' 60000
    want globex chat:default detractor_rate '>' 0.5
    return "$want_ok"
}

# ---- run ---------------------------------------------------------------------------
start_tpd "$dir/touchpointd-1.log" || abort "touchpointd did not start"
check "first start: evaluates 2 rules, nothing to restore" \
    grep -q 'evaluating 2 rules; 0 active alerts restored' "$dir/touchpointd-1.log"

set_phase healthy
producer 2>>"$dir/producer.err" &
prod_pid=$!
say "producer: healthy traffic on 7 queues of acme and globex, ~10 events a second"
wait_ticks 12
kafka_alerts
check "healthy phase (12 s): no alert on the topic" test ! -s "$dir/kafka.tsv"

set_phase incident
t_inc0=$(now_ms)
say "incident from $(date -u -d "@$((t_inc0 / 1000))" +%T): acme/phone/billing waits 200-220 s;" \
    "globex/chat/default +3 NPS detractors a second; decoys on acme/chat/support, globex/phone/default"
tp_wait_for "both alerts firing on the Kafka topic" 60 kafka_has 2 firing || true
check "both incident groups fire on the Kafka topic ($(( ($(now_ms) - t_inc0) / 1000 )) s into the incident)" \
    kafka_has 2 firing
py transitions "$dir/kafka.tsv" 1 | sed 's/^/#   kafka: /'
tp_wait_for "alertmanager to list both alerts active" 20 am_shows_both_active || true
check "alertmanager lists exactly the two alerts, active, labels alertname/tenant/channel/queue/severity/team" \
    am_shows_both_active
am_alerts | sed 's/^/#   alertmanager: /'
am_before=$(am_alerts)
check "tp:{acme}:alerts:active and tp:{globex}:alerts:active hold one alert each" \
    test "$(r HLEN 'tp:{acme}:alerts:active')/$(r HLEN 'tp:{globex}:alerts:active')" = 1/1

dup_metric() {
    curl -sf "http://127.0.0.1:$tpd_port/metrics" |
        awk '$1 == "touchpointd_events_duplicate_total" { print $2 }'
}
d1=$(dup_metric)
check "first instance: no event taken for a duplicate (every event_id is unique; /metrics says ${d1:-nothing})" \
    test "${d1:-x}" = 0

# ---- kill -9 mid-incident, restart ----------------------------------------------------
kill -KILL "$tpd_pid"
{ wait "$tpd_pid"; } 2>/dev/null || true
rm -f "$TP_STATE/pids/$tpd_pid"
say "touchpointd killed with SIGKILL mid-incident (tick $(ticks)); restarting"
wait_ticks 2
start_tpd "$dir/touchpointd-2.log" || abort "touchpointd did not restart"
check "restart: the two firing alerts are restored from Redis" \
    grep -q 'evaluating 2 rules; 2 active alerts restored' "$dir/touchpointd-2.log"
wait_ticks 8
echo "# KPIs at the height of the incident:"
check "the incident groups are beyond their lines" incident_beyond_the_lines
check "decoys beyond the lines of rules whose match excludes them (chat waits, phone detractors)" \
    decoys_beyond_the_lines
check "sparse acme/phone/vip: p90 beyond the line on fewer than min_samples waits" \
    sparse_below_min_samples
check "healthy groups: at least min_samples, under the lines" healthy_under_the_lines
set_phase healthy
t_inc1=$(now_ms)
say "incident ended at $(date -u -d "@$((t_inc1 / 1000))" +%T) ($(( (t_inc1 - t_inc0) / 1000 )) s); healthy traffic again"
check "after the restart alertmanager still lists both, startsAt unchanged" \
    test "$(am_alerts)" = "$am_before"
kafka_alerts
check "no second firing after the restart (topic: 2 notifications)" \
    test "$(wc -l <"$dir/kafka.tsv")" -eq 2

tp_wait_for "both alerts resolved on the Kafka topic" 150 kafka_has 2 resolved || true
check "both alerts resolve on the Kafka topic ($(( ($(now_ms) - t_inc1) / 1000 )) s after the incident)" \
    kafka_has 2 resolved
tp_wait_for "alertmanager to drop both alerts" 20 am_shows_none || true
check "alertmanager: neither alert active any more" am_shows_none
# A while more of healthy traffic: nothing may fire again, and the backtest's
# event-time clock passes the resolutions too.
wait_ticks 15
set_phase stop
wait "$prod_pid" || true
prod_pid=
produced=$(wc -l <"$dir/events.ndjson")
say "producer: $(ticks) ticks, $produced events (events.ndjson)"
check "producer: every kcat run succeeded" test ! -s "$dir/producer.err"
check "the input topic holds every produced event" \
    test "$(tp_topic_count touchpoints)" -eq "$produced"
recorded() { r HVALS tp:offsets:alerts-itest | awk '{ s += $1 } END { print s + 0 }'; }
drained() { [ "$(recorded)" -eq "$produced" ]; }
tp_wait_for "touchpointd to record all $produced offsets" 30 drained || true
check "touchpointd consumed and recorded every event" drained
sleep 2 # two more evaluations on the drained state
# The whole run fits in the 5m window: its event counts are every event,
# once (exactly-once across the SIGKILL, and no false duplicates).
counted=$(($(r HGET 'tp:{acme}:kpi:5m:_all:_all' events) + $(r HGET 'tp:{globex}:kpi:5m:_all:_all' events)))
check "5m KPIs count every produced event exactly once ($counted of $produced)" \
    test "$counted" -eq "$produced"

kill -TERM "$tpd_pid"
rc=0
wait "$tpd_pid" || rc=$?
rm -f "$TP_STATE/pids/$tpd_pid"
check "SIGTERM: touchpointd exits 0" test "$rc" -eq 0
check "restarted instance: run summary counts no duplicates ($(awk '$1 == "duplicates" { print $2 }' "$dir/touchpointd-2.log"))" \
    grep -Eq '^  duplicates +0$' "$dir/touchpointd-2.log"
check "no event was dead-lettered" test "$(tp_topic_count touchpoints.dlq)" -eq 0

# ---- the record ----------------------------------------------------------------------
expected="detractor-surge/globex/chat/default firing
detractor-surge/globex/chat/default resolved
wait-spike/acme/phone/billing firing
wait-spike/acme/phone/billing resolved"
by_group() { sort -s -k1,1; } # groups sorted, each group's order kept

kafka_alerts
cut -f 2- "$dir/kafka.tsv" >"$dir/kafka.jsonl"
echo "# kafka topic touchpoint.alerts:"
sed 's/^/#   /' "$dir/kafka.tsv"
check "kafka: exactly one firing and one resolved per incident group, nothing else" \
    test "$(py transitions "$dir/kafka.tsv" 1 | by_group)" = "$expected"
check "kafka: every message valid per schemas/alert.schema.json" \
    py validate schemas/alert.schema.json "$dir/kafka.tsv" 1
check "kafka: keyed by the fingerprint, FNV-1a 64 of rule/tenant/channel/queue" \
    py fingerprints "$dir/kafka.tsv" 1
check "kafka: firing then resolved, same starts_at, values across the lines, after the incident's start and end" \
    py episodes "$dir/kafka.tsv" "$t_inc0" "$t_inc1" wait-spike=30000,detractor-surge=0.4 1

: >"$dir/stream.jsonl"
stream_ok=0
for t in acme globex; do
    r XRANGE "tp:{$t}:alerts" - + >"$dir/stream-$t.raw"
    py xrange "$dir/stream-$t.raw" >>"$dir/stream.jsonl" || stream_ok=1
done
check "redis streams: entries carry fingerprint and alert" test "$stream_ok" -eq 0
check "redis streams tp:{acme}:alerts + tp:{globex}:alerts: the same transitions" \
    test "$(py transitions "$dir/stream.jsonl" | by_group)" = "$expected"
check "redis streams: the same messages as the Kafka topic" \
    test "$(sort "$dir/stream.jsonl")" = "$(sort "$dir/kafka.jsonl")"
py published "$dir/published.raw" >"$dir/published.jsonl"
check "channel tp:alerts: the same 4 messages were published" \
    test "$(sort "$dir/published.jsonl")" = "$(sort "$dir/kafka.jsonl")"
check "tp:{acme}:alerts:active and tp:{globex}:alerts:active are empty" \
    test "$(r HLEN 'tp:{acme}:alerts:active')/$(r HLEN 'tp:{globex}:alerts:active')" = 0/0
am_starts=$(awk '{ print $1, $3 }' <<<"$am_before")
check "alertmanager's startsAt are the firing notifications' starts_at" \
    test "$am_starts" = "$(py starts "$dir/kafka.tsv" | sort)"

# ---- backtest on the same stream ----------------------------------------------------------
keys_before=$(r DBSIZE)
rc=0
build/touchpointd backtest -c "$cfg" "$dir/events.ndjson" >"$dir/backtest.jsonl" \
    2>"$dir/backtest.err" || rc=$?
check "backtest exits 0" test "$rc" -eq 0
echo "# backtest transitions:"
sed 's/^/#   /' "$dir/backtest.jsonl"
check "backtest: the same transitions per group as the Kafka topic" \
    test "$(py transitions "$dir/backtest.jsonl" | by_group)" = "$expected"
check "backtest: every line valid per schemas/alert.schema.json" \
    py validate schemas/alert.schema.json "$dir/backtest.jsonl"
check "backtest: fired and resolved within two buckets (20 s) of the live run" \
    py timing "$dir/kafka.jsonl" "$dir/backtest.jsonl" 20000
check "backtest summary: 1 firing, 1 resolved per rule" \
    test "$(grep -cE '^  (wait-spike|detractor-surge) +firing 1, resolved 1$' "$dir/backtest.err")" -eq 2
check "backtest leaves no keys behind" test "$(r DBSIZE)" -eq "$keys_before"
check "alertmanager: still nothing active after the backtest" am_shows_none

tp__kill_group "$sub_pid" 5 || true
tp__kill_group "$am_pid" 10 || true
say "run time $(( ($(now_ms) - t_begin) / 1000 )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
