#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tpgen-test: proves build/tpgen writes valid, ordered, reproducible streams with the asked mix.
#
# Checks, each printed as "ok - ..." or "FAIL - ...":
#   1. same seed + --start => byte-identical --out (with invalid, duplicates
#      and --keys); another seed => different bytes;
#   2. --count N => exactly N lines in --valid-out;
#   3. --invalid K => K lines in --invalid-out, --out has N + dups + K lines;
#      duplicates repeat an earlier line byte for byte with its key; the
#      malformed lines cycle through the rejection classes;
#   4. every valid line is JSON with the fields, types, ranges and charsets
#      schemas/events.md asks for its type, ids unique, no orphan ends,
#      wait_ms equal to the gap the stream shows; sizes ~150-300 bytes;
#      (and a sample passes schemas/touchpoint.schema.json when python's
#      jsonschema is importable);
#   5. occurred_at never decreases;
#   6. a wait-spike raises the queued->answered gap on its queue and only in
#      its window; a detractor surge turns NPS there mostly 0-6;
#   7. --keys gives the contract's key per type (empty with --unkeyed);
#   8. usage errors exit 2 and name the option; --rate paces a live stream
#      stamped with the wall clock; memory follows open sessions, not --count;
#   9. speed: events/s for 1,000,000 events to /dev/null (informational);
#  10. with tests/harness/lib.sh and the broker jars: --brokers produces every
#      message, keyed so one correlation id stays on one partition.
# Ends with "N passed, M failed"; exits non-zero if anything failed.
#
# Environment: TPGEN=path of the binary (default build/tpgen),
# TPGEN_KAFKA=0 to skip the Kafka check.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tpgen=${TPGEN:-$root/build/tpgen}
start=2024-05-01T09:00:00Z
start_ms=1714554000000

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    echo "ok - $*"
}
bad() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}
# check NAME COMMAND...: ok when COMMAND succeeds; its output goes with a FAIL.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        bad "$name"
        printf '%s\n' "$out" | tail -n 15 | sed 's/^/    /'
    fi
}

if [ ! -x "$tpgen" ]; then
    make -C "$root" -s build/tpgen >/dev/null || {
        bad "build/tpgen builds"
        echo "$passed passed, $failed failed"
        exit 1
    }
fi

tmp=$(mktemp -d -t tpgen-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- the Python side: parsing and statistics of the produced files ---------
cat >"$tmp/tp.py" <<'PY'
"""Checks on tpgen output; each mode exits 1 with a reason on failure."""
import fnmatch, json, re, statistics, sys
from datetime import datetime, timezone

RFC = re.compile(r'^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)'
                 r'(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$')
TENANT = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
DIM = re.compile(r'^[a-z0-9_-]{1,32}$')
CORR = {'dm': 'conversation_id', 'call': 'call_id', 'ticket': 'ticket_id'}
SCORES = {'survey.nps': (0, 10), 'survey.csat': (1, 5), 'survey.ces': (1, 7)}
TYPES = {'dm.received', 'dm.replied', 'call.queued', 'call.answered',
         'call.abandoned', 'call.ended', 'ticket.opened', 'ticket.replied',
         'ticket.closed', 'ticket.reopened', *SCORES}
WAIT_TYPES = {'dm.replied', 'call.answered', 'call.abandoned', 'ticket.replied'}
MAX_MS = 253402300799999


def fail(msg):
    print(msg)
    sys.exit(1)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def ms(v):
    """occurred_at / opened_at in epoch ms, or None when malformed."""
    if is_int(v):
        return v if 0 <= v <= MAX_MS else None
    m = RFC.match(v) if isinstance(v, str) else None
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                     tzinfo=timezone.utc)
    except ValueError:
        return None
    out = int(t.timestamp()) * 1000 + int((frac or '0').ljust(3, '0')[:3])
    if off not in 'Zz':
        sign = 1 if off[0] == '+' else -1
        out -= sign * (int(off[1:3]) * 60 + int(off[4:6])) * 60000
    return out


def events(path):
    with open(path, 'rb') as f:
        for raw in f:
            yield raw.rstrip(b'\n'), json.loads(raw)


def id_ok(v):
    return isinstance(v, str) and 1 <= len(v.encode()) <= 128


def check_event(e):
    """Reason the event breaks the contract, or None."""
    if not isinstance(e, dict):
        return 'not an object'
    t = e.get('type')
    if t not in TYPES:
        return f'type {t!r}'
    for f in ('event_id',):
        if not id_ok(e.get(f)):
            return f'{f} {e.get(f)!r}'
    if ms(e.get('occurred_at')) is None:
        return f'occurred_at {e.get("occurred_at")!r}'
    if not isinstance(e.get('tenant'), str) or not TENANT.match(e['tenant']):
        return f'tenant {e.get("tenant")!r}'
    for f in ('channel', 'queue'):
        if f == 'queue' and f not in e:
            continue
        v = e.get(f)
        if not isinstance(v, str) or not DIM.match(v) or v in ('_all', '_other'):
            return f'{f} {v!r}'
    fam = t.split('.')[0]
    if fam in CORR and not id_ok(e.get(CORR[fam])):
        return f'{CORR[fam]} missing or bad for {t}'
    for f in ('customer_id', 'agent_id'):
        if f in e and not id_ok(e[f]):
            return f'{f} {e[f]!r}'
    if t in SCORES:
        lo, hi = SCORES[t]
        if not is_int(e.get('score')) or not lo <= e['score'] <= hi:
            return f'score {e.get("score")!r} for {t}'
    if 'wait_ms' in e and t in WAIT_TYPES:
        if not is_int(e['wait_ms']) or e['wait_ms'] < 0:
            return f'wait_ms {e["wait_ms"]!r}'
    if 'opened_at' in e and t == 'ticket.closed':
        if ms(e['opened_at']) is None:
            return f'opened_at {e["opened_at"]!r}'
    return None


def corr_of(e):
    fam = e['type'].split('.')[0]
    return e.get(CORR[fam]) if fam in CORR else None


def mode_valid(path):
    """Contract, unique ids, no orphan ends, wait_ms consistent, sizes."""
    seen_ids, open_wait, started, sizes = set(), {}, set(), []
    n = 0
    for raw, e in events(path):
        n += 1
        why = check_event(e)
        if why:
            fail(f'line {n}: {why}: {raw[:200]!r}')
        if e['event_id'] in seen_ids:
            fail(f'line {n}: event_id {e["event_id"]} repeats')
        seen_ids.add(e['event_id'])
        sizes.append(len(raw))
        t, c, at = e['type'], corr_of(e), ms(e['occurred_at'])
        if t in ('call.queued', 'dm.received', 'ticket.opened'):
            started.add(c)
            open_wait.setdefault(c, at)
        elif c is not None:
            if c not in started:
                fail(f'line {n}: {t} for {c} that never started (orphan)')
            begun = open_wait.pop(c, None)
            if 'wait_ms' in e and begun is not None and e['wait_ms'] != at - begun:
                fail(f'line {n}: wait_ms {e["wait_ms"]} but the stream '
                     f'shows {at - begun}')
        if t == 'ticket.closed' and 'opened_at' in e and ms(e['opened_at']) > at:
            fail(f'line {n}: opened_at after occurred_at')
    med = statistics.median(sizes)
    if not 150 <= med <= 300 or max(sizes) > 512:
        fail(f'sizes: median {med}, max {max(sizes)} bytes')
    print(f'{n} events valid, median {med} bytes, max {max(sizes)}')


def mode_order(path):
    last, n = None, 0
    for raw, e in events(path):
        n += 1
        t = ms(e['occurred_at'])
        if last is not None and t < last:
            fail(f'line {n}: occurred_at {t} < previous {last}')
        last = t
    print(f'{n} events in order')


def mode_span(path, lo, hi):
    """The first and last occurred_at lie within [lo, hi] (epoch ms)."""
    ts = [ms(e['occurred_at']) for _, e in events(path)]
    if not (int(lo) <= ts[0] and ts[-1] <= int(hi)):
        fail(f'stream from {ts[0]} to {ts[-1]}, expected within {lo}..{hi}')


def queued_gaps(path):
    """(tenant, channel, queue, queued_ms, gap) of each answered call."""
    queued = {}
    for _, e in events(path):
        if e['type'] == 'call.queued':
            queued[e['call_id']] = ms(e['occurred_at'])
        elif e['type'] == 'call.answered' and e['call_id'] in queued:
            q0 = queued.pop(e['call_id'])
            yield (e['tenant'], e['channel'], e.get('queue', 'default'), q0,
                   ms(e['occurred_at']) - q0)


def mode_spike(path, dims, ratio):
    """Mean gap on dims is > ratio x the mean gap elsewhere."""
    on, off = [], []
    for t, c, q, _, gap in queued_gaps(path):
        (on if f'{t}/{c}/{q}' == dims else off).append(gap)
    if len(on) < 20 or len(off) < 20:
        fail(f'too few answered calls: {len(on)} on {dims}, {len(off)} elsewhere')
    m_on, m_off = statistics.mean(on), statistics.mean(off)
    print(f'mean queued->answered: {dims} {m_on/1000:.1f} s (n={len(on)}), '
          f'others {m_off/1000:.1f} s (n={len(off)})')
    if m_on <= float(ratio) * m_off:
        fail(f'spike ratio {m_on / m_off:.2f} not above {ratio}')


def mode_window(path, dims, lo, hi, ratio):
    """On dims, calls queued in [lo, hi) wait > ratio x those queued outside."""
    inside, outside = [], []
    for t, c, q, q0, gap in queued_gaps(path):
        if f'{t}/{c}/{q}' == dims:
            (inside if int(lo) <= q0 < int(hi) else outside).append(gap)
    if len(inside) < 20 or len(outside) < 20:
        fail(f'too few calls: {len(inside)} inside, {len(outside)} outside')
    m_in, m_out = statistics.mean(inside), statistics.mean(outside)
    print(f'{dims}: inside the window {m_in/1000:.1f} s, outside {m_out/1000:.1f} s')
    if m_in <= float(ratio) * m_out:
        fail(f'window ratio {m_in / m_out:.2f} not above {ratio}')


def mode_surge(path, dims):
    on, off = [], []
    for _, e in events(path):
        if e['type'] == 'survey.nps':
            d = f'{e["tenant"]}/{e["channel"]}/{e.get("queue", "default")}'
            (on if fnmatch.fnmatch(d, dims) else off).append(e['score'] <= 6)
    if len(on) < 20 or len(off) < 20:
        fail(f'too few NPS answers: {len(on)} on {dims}, {len(off)} elsewhere')
    r_on, r_off = sum(on) / len(on), sum(off) / len(off)
    print(f'detractor share: {dims} {r_on:.2f} (n={len(on)}), others {r_off:.2f}')
    if not (r_on > 0.5 and r_off < 0.3):
        fail('surge not visible')


def mode_keys(path, unkeyed):
    """KEY<TAB>JSON lines: the key is the contract's correlation key."""
    n = 0
    with open(path, 'rb') as f:
        for raw in f:
            n += 1
            key, _, body = raw.rstrip(b'\n').partition(b'\t')
            try:
                e = json.loads(body)
            except ValueError:
                continue  # a malformed message: any key
            if not isinstance(e, dict) or check_event(e):
                continue
            key = key.decode()
            if unkeyed == '1':
                want = ''
            elif corr_of(e) is not None:
                want = corr_of(e)
            else:
                want = e.get('customer_id', e['event_id'])
            if key != want:
                fail(f'line {n}: key {key!r}, expected {want!r}')
    print(f'{n} keys as expected')


def mode_dups(all_path, valid_path, want):
    """Lines of --out not in --valid-out nor malformed repeat an earlier
    valid line byte for byte, shortly after it."""
    with open(valid_path, 'rb') as f:
        valid = set(f.read().split(b'\n'))
    seen, recent, dups, n = set(), [], 0, 0
    with open(all_path, 'rb') as f:
        for raw in f:
            n += 1
            line = raw.rstrip(b'\n')
            if line in seen:
                dups += 1
                if line not in recent[-40:]:
                    fail(f'line {n}: duplicate of an event more than 40 back')
            elif line in valid:
                seen.add(line)
                recent.append(line)
    if dups != int(want):
        fail(f'{dups} duplicates in --out, expected {want}')
    print(f'{dups} duplicates, each shortly after its original')


def mode_invalid(path, count):
    """Malformed lines cycle: not_json, not_object, missing_field,
    wrong_type, out_of_range, unknown_type, bad_charset, bad_timestamp,
    too_large, reserved dimension; each breaks the contract."""
    with open(path, 'rb') as f:
        lines = f.read().split(b'\n')[:-1]
    if len(lines) != int(count):
        fail(f'{len(lines)} malformed lines, expected {count}')
    for k, raw in enumerate(lines):
        cls = k % 10
        try:
            e = json.loads(raw)
        except ValueError:
            e = ValueError
        if (cls == 0) != (e is ValueError):
            fail(f'line {k + 1}: JSON parse {"succeeded" if cls == 0 else "failed"}')
        if cls == 1 and isinstance(e, dict):
            fail(f'line {k + 1}: an object, expected not_object')
        if (cls == 8) != (len(raw) > 65536):
            fail(f'line {k + 1}: {len(raw)} bytes for class {cls}')
        if cls >= 2 and cls != 8 and (not isinstance(e, dict) or
                                      check_event(e) is None):
            fail(f'line {k + 1}: passes the contract: {raw[:200]!r}')
    print(f'{len(lines)} malformed messages, classes cycling')


def mode_schema(path, schema_path, n):
    """A sample of valid events passes the JSON Schema (if jsonschema)."""
    try:
        import jsonschema
    except ImportError:
        print('skip: python jsonschema not importable')
        return
    with open(schema_path) as f:
        v = jsonschema.Draft202012Validator(json.load(f))
    for i, (raw, e) in enumerate(events(path)):
        if i >= int(n):
            break
        errs = list(v.iter_errors(e))
        if errs:
            fail(f'line {i + 1}: {errs[0].message}: {raw[:200]!r}')
    print(f'{min(i + 1, int(n))} events pass {schema_path}')


MODES = {'valid': mode_valid, 'order': mode_order, 'span': mode_span,
         'spike': mode_spike, 'window': mode_window, 'surge': mode_surge,
         'keys': mode_keys, 'dups': mode_dups, 'invalid': mode_invalid,
         'schema': mode_schema}
MODES[sys.argv[1]](*sys.argv[2:])
PY
py() {
    python3 "$tmp/tp.py" "$@"
}

# ---- 1. reproducible --------------------------------------------------------
mix=(--count 20000 --span 10m --start "$start" --invalid 30 --duplicates 20)
"$tpgen" --seed 42 "${mix[@]}" --keys --out "$tmp/a1" 2>/dev/null
"$tpgen" --seed 42 "${mix[@]}" --keys --out "$tmp/a2" 2>/dev/null
"$tpgen" --seed 43 "${mix[@]}" --keys --out "$tmp/b" 2>/dev/null
check "same seed and --start give byte-identical output" cmp "$tmp/a1" "$tmp/a2"
if cmp -s "$tmp/a1" "$tmp/b"; then
    bad "another seed gives different output"
else
    ok "another seed gives different output"
fi

# ---- 2, 3. counts ---------------------------------------------------------
N=30000 K=25 D=15
"$tpgen" --seed 7 --count $N --span 1h --start "$start" --invalid $K \
    --duplicates $D --out "$tmp/all" --valid-out "$tmp/valid" \
    --invalid-out "$tmp/invalid" 2>"$tmp/summary"
rc=$?
check "exit status 0" test $rc -eq 0
check "--count $N gives $N lines in --valid-out" \
    test "$(wc -l <"$tmp/valid")" -eq $N
check "--invalid $K gives $K lines in --invalid-out" \
    test "$(wc -l <"$tmp/invalid")" -eq $K
check "--out has N + duplicates + invalid = $((N + D + K)) lines" \
    test "$(wc -l <"$tmp/all")" -eq $((N + D + K))
check "summary: one stderr line with the counts" \
    grep -qE '^tpgen: valid 30000, duplicates 15, invalid 25, open waits [0-9]+, elapsed [0-9.]+ s, rate [0-9]+ msg/s$' "$tmp/summary"
check "duplicates repeat an earlier valid line byte for byte, shortly after" \
    py dups "$tmp/all" "$tmp/valid" $D
"$tpgen" --seed 7 --count 2000 --span 1h --start "$start" --invalid 100 \
    --invalid-out "$tmp/invalid100" >/dev/null 2>&1
check "malformed messages cycle through the rejection classes" \
    py invalid "$tmp/invalid100" 100
check "no malformed message holds a newline (lines = messages)" \
    test "$(grep -c '' "$tmp/invalid100")" -eq 100

# ---- 4, 5. valid and ordered ------------------------------------------------
check "every valid event meets schemas/events.md; no orphans; wait_ms agrees" \
    py valid "$tmp/valid"
check "occurred_at never decreases" py order "$tmp/valid"
check "the stream starts at --start and covers about --span" \
    py span "$tmp/valid" $start_ms $((start_ms + 3600000 * 11 / 10))
if [ -f "$root/schemas/touchpoint.schema.json" ]; then
    check "a sample passes schemas/touchpoint.schema.json" \
        py schema "$tmp/valid" "$root/schemas/touchpoint.schema.json" 3000
fi

# ---- 6. incidents ---------------------------------------------------------
"$tpgen" --seed 3 --count 60000 --span 2h --start "$start" \
    --incident 'wait-spike:acme/phone/billing*8' \
    --incident 'detractor-surge:globex/*/default' \
    --valid-out "$tmp/inc" --out /dev/null 2>/dev/null
check "wait-spike raises the queued->answered gap on its queue" \
    py spike "$tmp/inc" acme/phone/billing 3
check "detractor-surge makes NPS there mostly 0-6" \
    py surge "$tmp/inc" 'globex/*/default'
"$tpgen" --seed 4 --count 60000 --span 2h --start "$start" \
    --incident 'wait-spike:acme/phone/default@40m+30m*6' \
    --valid-out "$tmp/win" --out /dev/null 2>/dev/null
check "wait-spike@40m+30m acts only inside its window" \
    py window "$tmp/win" acme/phone/default $((start_ms + 2400000)) \
    $((start_ms + 4200000)) 3

# ---- 7. keys ----------------------------------------------------------------
"$tpgen" --seed 5 --count 5000 --start "$start" --invalid 20 --duplicates 5 \
    --keys >"$tmp/keyed" 2>/dev/null
check "--keys: KEY<TAB> is call_id / conversation_id / ticket_id / customer_id or event_id" \
    py keys "$tmp/keyed" 0
"$tpgen" --seed 5 --count 500 --start "$start" --keys --unkeyed \
    >"$tmp/unkeyed" 2>/dev/null
check "--unkeyed --keys: empty keys" py keys "$tmp/unkeyed" 1

# ---- 8. usage errors, live streams, memory --------------------------------
usage() { # usage PATTERN ARGS...: exit 2, stderr names the option
    local pat=$1 err
    shift
    err=$("$tpgen" "$@" 2>&1 >/dev/null)
    if [ $? -ne 2 ] || ! printf '%s' "$err" | grep -q -- "$pat"; then
        echo "got: $err"
        return 1
    fi
}
check "usage: --count abc" usage '--count: expected a non-negative integer' --count abc
check "usage: unknown option" usage '--bogus: unknown option' --bogus
check "usage: --span 10" usage '--span: expected a duration' --span 10
check "usage: --start junk" usage '--start: expected epoch ms' --start junk
check "usage: bad --incident" usage '--incident: expected' --incident 'spike:acme/phone/x'
check "usage: bad channel name" usage "--channels: 'Phone' does not match" --channels Phone,chat
check "usage: reserved channel" usage "--channels: '_all' is reserved" --channels _all
check "usage: --brokers without --topic" usage '--brokers: needs --topic' --brokers localhost:9092
check "usage: bad -X property" usage '-X: .*no.such' --brokers 127.0.0.1:1 --topic t -X no.such=1
check "usage: --rate with --start" usage '--start: not with --rate' --rate 10 --start now
help_lists_all() {
    local h o
    h=$("$tpgen" --help) || return 1
    for o in --seed --count --rate --start --span --tenants --channels \
        --queues --incident --invalid --duplicates --unkeyed --brokers --topic \
        -X --out --valid-out --invalid-out --keys; do
        if ! printf '%s' "$h" | grep -q -- "^  $o "; then
            echo "missing $o"
            return 1
        fi
    done
}
check "--help documents every option" help_lists_all

t0=$(date +%s%3N)
"$tpgen" --rate 2000 --count 1000 --valid-out "$tmp/live" --out /dev/null 2>/dev/null
t1=$(date +%s%3N)
check "--rate 2000 --count 1000 takes about half a second" \
    test $((t1 - t0)) -ge 350 -a $((t1 - t0)) -le 2000
live_stamps() {
    py span "$tmp/live" $((t0 - 50)) $((t1 + 50)) && py order "$tmp/live"
}
check "a live stream is stamped with the wall clock, in order" live_stamps

rss() { # max RSS in KiB of tpgen ARGS...
    /usr/bin/time -f %M "$tpgen" "$@" 2>&1 >/dev/null | tail -n 1
}
if [ -x /usr/bin/time ]; then
    small=$(rss --count 200000 --span 20m --start "$start")
    large=$(rss --count 2000000 --span 200m --start "$start")
    check "memory follows open sessions, not --count ($small KiB vs $large KiB for 10x)" \
        test "$large" -lt $((small * 2))
fi

# ---- 9. speed ---------------------------------------------------------------
speed=$("$tpgen" --count 1000000 2>&1 >/dev/null | tail -n 1)
echo "info - 1,000,000 events to /dev/null: ${speed#tpgen: }"

# ---- 10. Kafka ----------------------------------------------------------------
# Runs in check's subshell: lib.sh's EXIT trap stops the broker there.
kafka_check() {
    # shellcheck source=tests/harness/lib.sh
    . "$root/tests/harness/lib.sh" || return 1
    tp_init || return 1
    local dir n parts
    dir=$(tp_workdir) || return 1
    tp_start_kafka "$dir/kafka" >/dev/null || return 1
    tp_create_topic tpgen 4 >/dev/null || return 1
    "$tpgen" --count 50000 --invalid 10 --duplicates 5 \
        --brokers "$KAFKA_BOOTSTRAP" --topic tpgen -X linger.ms=5 || return 1
    n=$(tp_topic_count tpgen) || return 1
    [ "$n" -eq 50015 ] || { echo "topic holds $n messages, expected 50015"; return 1; }
    # Every key on exactly one partition.
    parts=$(kcat -C -b "$KAFKA_BOOTSTRAP" -t tpgen -e -q -f '%k\t%p\n' |
        sort -u | awk -F'\t' '{ n[$1]++ } END { for (k in n) if (n[k] > 1) c++; print c + 0 }')
    [ "$parts" -eq 0 ] || { echo "$parts keys on more than one partition"; return 1; }
    # A broker that is not there: non-zero exit naming the delivery error.
    if "$tpgen" --count 5 --brokers 127.0.0.1:1 --topic tpgen \
        -X message.timeout.ms=1000 -X log_level=0 2>"$dir/err"; then
        echo "exit 0 with no broker"
        return 1
    fi
    grep -q 'deliveries failed' "$dir/err" || { cat "$dir/err"; return 1; }
}
if [ "${TPGEN_KAFKA:-1}" != 0 ] && [ -f "$root/tests/harness/lib.sh" ] &&
    command -v kcat >/dev/null && command -v java >/dev/null &&
    ls "$root"/.cache/kafka-*/libs/*.jar >/dev/null 2>&1; then
    check "--brokers: every message produced, one partition per key, failed deliveries exit non-zero" \
        kafka_check
else
    echo "skip - Kafka check (TPGEN_KAFKA=0, or no tests/harness/lib.sh, kcat, java or broker jars: make deps)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
