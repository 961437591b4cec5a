#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Differential fuzzing of scan_event() against event_parse(): replays the seed
# corpus under ASan/UBSan, builds tests/fuzz/fuzz_event_diff.c with clang's
# libFuzzer and fuzzes for FUZZ_SECONDS (default 60). Any difference in
# decision, class, field or parsed values, any sanitizer report, crash or
# timeout fails. Last line: "N passed, M failed".
#
#   FUZZ_SECONDS=3600 tests/fuzz/run.sh     a longer run by hand
#   FUZZ_JOBS=2                             libFuzzer -fork=2
#   FUZZ_OUT=DIR                            work dir (default build/fuzz); its
#                                           corpus/ grows from run to run
#   FUZZ_CFLAGS=...                         extra flags for both builds
# A difference is kept as DIR/artifacts/crash-*; replay it with
#   DIR/fuzz_event_diff DIR/artifacts/crash-...   (prints both results)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${FUZZ_OUT:-$root/build/fuzz}
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
cc=${CC:-cc}
fuzz_cc=${FUZZ_CC:-clang}
read -r -a extra <<<"${FUZZ_CFLAGS:-}"

passed=0
failed=0
pass() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# The reference and the scanner, compiled from source into each binary so
# that both carry the sanitizers (and, for libFuzzer, coverage).
srcs=("$root/processor/event.c" "$root/processor/scan.c" "$root/processor/scan_json.c"
      "$root/processor/tstamp.c")
target="$root/tests/fuzz/fuzz_event_diff.c"
warn=(-std=c11 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes
      -Wmissing-prototypes -Wwrite-strings -Wvla -Wformat=2 -fno-common
      -D_POSIX_C_SOURCE=200809L -I"$root/processor")
san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
read -r -a jansson_cflags <<<"$(pkg-config --cflags jansson)"
read -r -a jansson_libs <<<"$(pkg-config --libs jansson)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

mkdir -p "$out/corpus" "$out/artifacts"

# 1. Replay: the seed corpus and the stored cases, plain driver, $cc + ASan/UBSan.
if "$cc" "${warn[@]}" -O1 -g "${san[@]}" "${extra[@]}" "${jansson_cflags[@]}" "$target" \
        "${srcs[@]}" "${jansson_libs[@]}" -lm -o "$out/replay" \
        >"$out/replay-build.log" 2>&1; then
    if "$out/replay" "$root/tests/fuzz/corpus" "$root/tests/data/events/valid" \
            "$root/tests/data/events/invalid" >"$out/replay.log" 2>&1; then
        pass "replay: $(tail -n 1 "$out/replay.log") ($cc, ASan/UBSan)"
    else
        fail "replay ($cc): differences, see $out/replay.log"
        grep -A4 DIFFERENCE "$out/replay.log" | head -n 40
    fi
else
    fail "replay build ($cc), see $out/replay-build.log"
    tail -n 20 "$out/replay-build.log"
fi

# 2. The libFuzzer target.
if "$fuzz_cc" "${warn[@]}" -O1 -g -DFUZZ_LIBFUZZER -fsanitize=fuzzer "${san[@]}" \
        "${extra[@]}" "${jansson_cflags[@]}" "$target" "${srcs[@]}" "${jansson_libs[@]}" -lm \
        -o "$out/fuzz_event_diff" >"$out/fuzz-build.log" 2>&1; then
    pass "libFuzzer build ($fuzz_cc)"
else
    fail "libFuzzer build ($fuzz_cc): is libclang-rt-14-dev installed? see $out/fuzz-build.log"
    tail -n 20 "$out/fuzz-build.log"
    echo "$passed passed, $failed failed"
    exit 1
fi

# 3. Fuzz for a bounded time. New inputs go to $out/corpus; the committed
# seeds are read only.
rm -f "$out"/artifacts/crash-* "$out"/artifacts/leak-* "$out"/artifacts/timeout-* \
      "$out"/artifacts/oom-* "$out"/artifacts/slow-unit-*
fork=()
if [ "$jobs" -gt 1 ]; then
    fork=(-fork="$jobs")
fi
"$out/fuzz_event_diff" -max_len=70000 -dict="$root/tests/fuzz/event.dict" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/" "${fork[@]}" \
    "$out/corpus" "$root/tests/fuzz/corpus" >"$out/fuzz.log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$out/fuzz.log" | tail -n 1)
corpus=$(find "$out/corpus" -type f | wc -l)
artifacts=$(find "$out/artifacts" -type f | wc -l)
if [ "$rc" -eq 0 ] && [ "$artifacts" -eq 0 ]; then
    pass "fuzz ${secs}s: ${execs:-?} execs, ${cov:-cov: ?}, corpus $corpus"
else
    fail "fuzz ${secs}s: exit $rc, $artifacts artifact(s) in $out/artifacts, see $out/fuzz.log"
    grep -A6 -e DIFFERENCE -e 'ERROR:' -e 'runtime error' "$out/fuzz.log" | head -n 40
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
