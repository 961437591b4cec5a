#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the benchmark harness works, not how fast anything is: a tiny
# `bench.sh` (20,000 events, a 3 s live stream, short micro runs) must finish,
# print its table, and write JSON that parses and holds every row and field
# with sane values (rates > 0, ratios against raw, Redis commands for the
# Redis-writing rows only, freshness quantiles in order, callgrind counts).
# Its output goes to build/bench-test/, so the last full run's
# build/bench/latest.json stays.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${BENCH_TEST_OUT:-build/bench-test}
rm -rf "$out"
mkdir -p "$out"

# shellcheck source=tests/harness/lib.sh
. tests/harness/lib.sh # check
passed=0
failed=0

start=${EPOCHREALTIME/./}
rc=0
BENCH_EVENTS=20000 BENCH_REPEAT=1 BENCH_FRESH_RATE=2000 BENCH_FRESH_SECONDS=3 \
    BENCH_MICRO_EVENTS=5000 BENCH_MICRO_TIME=0.1 BENCH_CALLGRIND_EVENTS=500 \
    BENCH_TIMEOUT=120 BENCH_OUT="$out" \
    tests/bench/bench.sh >"$out/stdout.txt" 2>"$out/stderr.txt" || rc=$?
secs=$(((${EPOCHREALTIME/./} - start) / 1000000))
cat "$out/stdout.txt"
if [ "$rc" -ne 0 ]; then
    echo "--- bench.sh stderr (last 20 lines)"
    tail -n 20 "$out/stderr.txt"
fi
echo "bench.sh took ${secs}s"

check "bench.sh exits 0" test "$rc" -eq 0
# shellcheck disable=SC2016
check "latest.json is the same as the bench-TIMESTAMP.json it names" \
    sh -c 'f=$(ls "$1"/bench-*.json | head -n 1); cmp -s "$f" "$1/latest.json"' \
    sh "$out"
check "the table has a header and one line per row (9)" \
    test "$(grep -cE '^measurement |^(raw|run|run\.long|replay|micro\.[a-z]+) +[0-9]' \
        "$out/stdout.txt")" -eq 10
check "the table is followed by the peak RSS of run.long against run" \
    grep -qE '^peak RSS over the stream.s length: run.long \(100000 events.* MB, run \(20000 events.* x \(target' \
        "$out/stdout.txt"

# The JSON checks: one line "ok - ..." or "FAIL - ..." each.
json_checks() { # FILE IN_GIT
    python3 - "$1" "$2" <<'PY'
import json, math, sys

def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

results = []
def check(name, cond):
    results.append((name, bool(cond)))

try:
    d = json.load(open(sys.argv[1]))
except Exception as e:  # not JSON at all: one failure says why
    print(f"FAIL - latest.json parses as JSON ({e})")
    sys.exit(0)
check("latest.json parses as JSON", True)
check("schema is touchpointd-bench/1", d.get("schema") == "touchpointd-bench/1")
c = d.get("commit", {})
sha = c.get("sha")
if sys.argv[2] == "1":
    check("commit: a 40-hex sha and a dirty flag",
          isinstance(sha, str) and len(sha) == 40
          and all(ch in "0123456789abcdef" for ch in sha)
          and isinstance(c.get("dirty"), bool))
else:  # an exported tree: no commit to name
    check("commit: null outside a git checkout", sha is None and "dirty" in c)
m = d.get("machine", {})
check("machine: nproc, cpu model, memory, kernel, load averages",
      num(m.get("nproc")) and m["nproc"] >= 1 and m.get("cpu_model")
      and num(m.get("mem_total_kb")) and m["mem_total_kb"] > 0 and m.get("kernel")
      and m.get("loadavg_start") and m.get("loadavg_end"))
v = d.get("versions", {})
check("versions of redis, kafka and librdkafka",
      all(isinstance(v.get(k), str) and v[k] for k in ("redis", "kafka", "librdkafka")))
s = d.get("settings", {})
check("settings: 20000 events, 8 partitions, lz4", s.get("events") == 20000
      and s.get("partitions") == 8 and s.get("compression") == "lz4")

rows = {r.get("name"): r for r in d.get("rows", [])}
want = ["raw", "run", "replay", "run.long", "micro.parse", "micro.process",
        "micro.aggregate", "micro.flush", "micro.sketch"]
check("rows are " + ", ".join(want), [r.get("name") for r in d.get("rows", [])] == want)
common = ["events_per_s", "ratio_to_raw", "cpu_s_per_M", "redis_cmds_per_event",
          "peak_rss_mb", "freshness_p50_ms", "freshness_p99_ms", "ns_per_event",
          "instr_per_event"]
check("no row holds another row's fields (field names have no dot)",
      not any("." in k for r in rows.values() for k in r if k != "name"))
check("every row has every common field",
      all(all(k in r for k in common) for r in rows.values()))

def pos(r, k):
    return num(r.get(k)) and r[k] > 0

for name in ("raw", "run", "replay"):
    r = rows.get(name, {})
    check(f"{name}: events/s, ratio, CPU s/1M, peak RSS > 0; 20000 events",
          all(pos(r, k) for k in ("events_per_s", "ratio_to_raw", "cpu_s_per_M",
                                   "peak_rss_mb", "wall_s"))
          and r.get("events") == 20000)
    ratio = r.get("ratio_to_raw")
    check(f"{name}: ratio_to_raw is events/s over raw's",
          num(ratio) and num(rows.get("raw", {}).get("events_per_s"))
          and abs(ratio - r["events_per_s"] / rows["raw"]["events_per_s"]) < 1e-3 * max(1, ratio))
check("raw: ratio 1, no Redis commands",
      rows.get("raw", {}).get("ratio_to_raw") == 1
      and rows.get("raw", {}).get("redis_cmds_per_event") is None)
for name in ("run", "replay"):
    r = rows.get(name, {})
    check(f"{name}: Redis commands/event > 0 with a per-command split",
          pos(r, "redis_cmds_per_event") and isinstance(r.get("redis_cmds_split"), dict)
          and r["redis_cmds_split"])
run = rows.get("run", {})
check("run: freshness p50 > 0 and p50 <= p99 <= max",
      pos(run, "freshness_p50_ms") and num(run.get("freshness_p99_ms"))
      and run["freshness_p50_ms"] <= run["freshness_p99_ms"] <= run.get("freshness_max_ms", -1))
check("run: freshness split (broker, after append) and its sample count",
      all(num(run.get(k)) for k in ("freshness_broker_p50_ms", "freshness_after_append_p50_ms",
                                    "freshness_after_append_p99_ms"))
      and run.get("freshness_samples", 0) >= 1000)
check("run: the Redis server's CPU per 1M events is recorded", pos(run, "redis_cpu_s_per_M"))
check("raw and run: the Kafka broker's CPU per 1M events is recorded",
      pos(rows.get("raw", {}), "broker_cpu_s_per_M") and pos(run, "broker_cpu_s_per_M"))
long = rows.get("run.long", {})
check("run.long: 100000 events, events/s, CPU s/1M, peak RSS > 0",
      long.get("events") == 100000
      and all(pos(long, k) for k in ("events_per_s", "cpu_s_per_M", "peak_rss_mb", "wall_s")))
check("run.long: rss_ratio_to_run is its peak RSS over run's",
      num(long.get("rss_ratio_to_run")) and pos(run, "peak_rss_mb")
      and abs(long["rss_ratio_to_run"] - long.get("peak_rss_mb", 0) / run["peak_rss_mb"]) < 1e-3)
check("run, run.long: open correlations when drained, more after the longer stream",
      pos(run, "open_correlations") and pos(long, "open_correlations")
      and long["open_correlations"] > run["open_correlations"])
check("run.long: rss_growth_per_added_open_b is the peak RSS added per added open",
      num(long.get("rss_growth_per_added_open_b"))
      and abs(long["rss_growth_per_added_open_b"]
              - (long.get("peak_rss_mb", 0) - run.get("peak_rss_mb", 0)) * 1048576
              / max(1, long.get("open_correlations", 0) - run.get("open_correlations", 0)))
          <= 1)
for name in want[4:]:
    r = rows.get(name, {})
    check(f"{name}: ns/event, events/s, ratio > 0, callgrind instructions/event > 0",
          all(pos(r, k) for k in ("ns_per_event", "events_per_s", "ratio_to_raw",
                                   "instr_per_event")))
p, q, a = (rows.get(f"micro.{k}", {}).get("ns_per_event") for k in ("parse", "process", "aggregate"))
check("micro.aggregate is process - parse",
      num(p) and num(q) and num(a) and abs(q - p - a) < 0.01 * q)

for name, ok in results:
    print(("ok - " if ok else "FAIL - ") + name)
PY
}

if [ -s "$out/latest.json" ] && command -v python3 >/dev/null 2>&1; then
    while IFS= read -r line; do
        echo "$line"
        case $line in
        ok\ -*) passed=$((passed + 1)) ;;
        *) failed=$((failed + 1)) ;;
        esac
    done < <(json_checks "$out/latest.json" \
        "$(git rev-parse HEAD >/dev/null 2>&1 && echo 1 || echo 0)")
else
    check "latest.json written and python3 at hand to read it" false
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
