#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the exactly-once guard of processor/flush.lua against a real
# redis-server, command by command, for the flushes the service tests reach
# only by chance: a flush that carries state but moves no offset (restored or
# evicted correlations) sent twice - its reply lost - applies once, because
# the guard finds its batch recorded; a new batch applies again; a flush that
# names a partition another instance has moved on is refused whole, even
# when it consumed nothing from it (a zombie's stale state); a flush that
# consumed from a partition and is resent applies once, as before.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh
tp_init
dir=$(tp_workdir)
tp_start_redis "$dir/redis"

passed=0
failed=0
r() { redis-cli -p "$REDIS_PORT" "$@"; }
sha=$(r SCRIPT LOAD "$(cat processor/flush.lua)")
off=tp:offsets:g
bk=tp:flushed:g:inst1

# flush GUARD_ARGS -- LIVE_ARGS: guard then live in one MULTI/EXEC (no
# buckets: the live gauges show what was applied); prints the guard's reply.
flush() {
    local guard=() live=()
    while [ "$1" != -- ]; do guard+=("$1"); shift; done
    shift
    live=("$@")
    printf 'MULTI\nEVALSHA %s 0 guard tp %s\nEVALSHA %s 0 live tp 1 %s\nEXEC\n' \
        "$sha" "${guard[*]}" "$sha" "${live[*]}" | r | sed -n 4p
}
dms() { r HGET 'tp:{acme}:live:chat:a' waiting_dms; }

# A restored wait evicted at once: -1 waiting DM, partition p/0 owned but not
# consumed from (start = next = its recorded -1), batch 1.
state_only() {
    flush "$off" 1 p/0 -1 -1 "$bk" "$1" -- \
        1 acme chat a 0 -1 0 0 "$off" 0 "$bk" "$1"
}
first=$(state_only 1)
check "a flush of state alone applies (guard: $first, waiting_dms $(dms))" \
    test "$first/$(dms)" = apply/-1
again=$(state_only 1)
check "sent again (its reply lost), it applies nothing (guard: $again, waiting_dms $(dms))" \
    test "$again/$(dms)" = applied/-1
next=$(state_only 2)
check "the next batch applies (guard: $next, waiting_dms $(dms))" \
    test "$next/$(dms)" = apply/-2
check "no offset was recorded for a partition nothing was consumed from" \
    test "$(r HEXISTS "$off" p/0)" = 0

# Another instance records p/1 at 500; this one still thinks it is at 400
# and carries state for it without having consumed from it.
r HSET "$off" p/1 500 >/dev/null
zombie=$(flush "$off" 1 p/1 400 400 tp:flushed:g:inst2 1 -- \
    1 acme chat a 0 -1 0 0 "$off" 1 p/1 400 tp:flushed:g:inst2 1)
check "a partition moved on by another instance refuses the flush (guard: ${zombie:0:40}...)" \
    grep -q '^conflict: p/1 recorded 500, flush covers 400..400' <<<"$zombie"
check "...which changes nothing (waiting_dms $(dms), p/1 at $(r HGET "$off" p/1))" \
    test "$(dms)/$(r HGET "$off" p/1)" = -2/500

# Consumed from p/1 (500 -> 510) with p/0 idle, then resent.
moved() {
    flush "$off" 2 p/0 -1 -1 p/1 500 510 "$bk" "$1" -- \
        1 acme chat a 0 1 0 0 "$off" 1 p/1 510 "$bk" "$1"
}
m1=$(moved 3)
m2=$(moved 3)
check "a flush that consumed applies once when resent (guard: $m1 then $m2; waiting_dms $(dms), p/1 at $(r HGET "$off" p/1))" \
    test "$m1/$m2/$(dms)/$(r HGET "$off" p/1)" = apply/applied/-1/510
check "the batch key expires (a day)" \
    test "$(r PTTL "$bk")" -gt 86000000
check "no reader ever sees the skip marker" test "$(r EXISTS tp:flush:skip)" = 0

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
