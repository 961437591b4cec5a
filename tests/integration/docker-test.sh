#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Proves the container image (docker/Dockerfile) against the harness's real
# redis-server and Kafka broker:
#   - dockerd: uses a running one, or starts Debian's with the flags this
#     kind of machine needs (no iptables, no bridge, vfs) and stops it after;
#   - base image: there is no registry here, so local/debian:bookworm is
#     bootstrapped (debootstrap --variant=minbase, slimmed like
#     debian:bookworm-slim) and cached as .cache/docker-base.tar, so a re-run
#     only imports it (or finds it already in dockerd);
#   - the image builds (BuildKit, --network host for apt), runs as uid 10001,
#     has exec-form ENTRYPOINT/CMD, a HEALTHCHECK, no compiler, every shared
#     library resolved; tpgen in it produces a keyed stream;
#   - the container (host networking, config mounted) consumes the whole
#     4-partition topic: tp:offsets:GROUP sums to the topic count, the KPI
#     hashes count every event; /metrics is reachable from outside
#     (http.address 0.0.0.0); docker reports it healthy, and the health probe
#     fails against a closed port;
#   - touchpointd is PID 1 and `docker stop -t 15` (SIGTERM) makes it drain
#     and exit 0 well within the timeout;
#   - docker/compose.yaml and docker/prometheus.yml are valid (docker-compose
#     config -q, promtool check config).
# Prints the image size and the time taken; removes its container and image.
# TP_KEEP=1 keeps them (and the temp dirs). Needs root (dockerd, debootstrap)
# unless a usable dockerd and the base image are already there.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/harness/lib.sh

t_begin=$(date +%s%3N)
BASE_IMAGE=local/debian:bookworm
BASE_TAR=.cache/docker-base.tar
MIRROR=${TP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE=touchpointd:docker-test-$$
CNAME=touchpointd-docker-test-$$
GROUP=dockertest

# Debian's client (docker.io) matches Debian's daemon and has BuildKit built
# in; another `docker` earlier on PATH (e.g. a newer static CLI without the
# buildx plugin) would refuse DOCKER_BUILDKIT=1.
if [ -x /usr/bin/docker ]; then
    DOCKER=/usr/bin/docker
else
    DOCKER=docker
fi
dk() { "$DOCKER" "$@"; }

passed=0
failed=0
summary_done=0
finished=0
summary() {
    [ "$summary_done" = 1 ] && return 0
    summary_done=1
    echo "$passed passed, $failed failed"
}
# fatal MESSAGE: a step the rest depends on failed; count it and stop.
fatal() {
    echo "FAIL - $*"
    failed=$((failed + 1))
    exit 1
}
now_ms() { date +%s%3N; }
secs_since() { # MS_TIMESTAMP -> seconds with one decimal
    local d=$(($(now_ms) - $1))
    printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}

container_made=0
image_made=0
tp_cleanup_hook() {
    if [ "$failed" -gt 0 ] && [ "$container_made" = 1 ]; then
        echo "--- docker logs $CNAME (tail)"
        dk logs --tail 30 "$CNAME" 2>&1 || true
    fi
    if [ "${TP_KEEP:-0}" = 1 ]; then
        echo "# kept container $CNAME and image $IMAGE (TP_KEEP=1)"
    else
        if [ "$container_made" = 1 ]; then
            dk rm -f "$CNAME" >/dev/null 2>&1 || true
        fi
        if [ "$image_made" = 1 ]; then
            dk rmi "$IMAGE" >/dev/null 2>&1 || true
        fi
    fi
    if [ "$finished" = 0 ] && [ "$failed" -eq 0 ]; then
        echo "FAIL - stopped early (errors above)"
        failed=1
    fi
    # A dockerd this test started is in the harness's pid list: tp_cleanup
    # stops it after this hook (so after the container is gone).
    summary
}

tp_init
dir=$(tp_workdir)

# ---- tools ----------------------------------------------------------------
for tool in "$DOCKER" redis-server kcat; do
    command -v "$tool" >/dev/null 2>&1 || fatal "no $tool on PATH: run make deps"
done

# ---- dockerd ----------------------------------------------------------------
docker_up() { dk info >/dev/null 2>&1; }
dockerd_note="already running"
if ! docker_up; then
    if pgrep -x dockerd >/dev/null 2>&1; then
        # Starting (or stuck): wait for it rather than start a second one.
        tp_wait_for "the running dockerd to answer" 60 docker_up \
            || fatal "a dockerd runs but does not answer (docker info)"
    else
        [ "$(id -u)" -eq 0 ] || fatal "no dockerd running, and starting one needs root"
        command -v dockerd >/dev/null 2>&1 || fatal "no dockerd: run make deps"
        t=$(now_ms)
        # No iptables, no bridge and vfs storage: what works on CI machines
        # without netfilter or overlayfs; the test only uses host
        # networking. tp__spawn registers it with the harness, so tp_cleanup
        # (or the harness watchdog, should this shell be killed) stops it.
        tp__spawn "$dir/dockerd.log" dockerd --iptables=false \
            --ip6tables=false --bridge=none --storage-driver=vfs >/dev/null \
            || fatal "could not start dockerd"
        if ! tp_wait_for "dockerd to answer docker info" 60 docker_up; then
            tail -n 20 "$dir/dockerd.log" >&2 || true
            fatal "dockerd did not come up (log above)"
        fi
        dockerd_note="started in $(secs_since "$t") s, stopped at the end"
    fi
fi
echo "# dockerd: $dockerd_note ($(dk version --format '{{.Server.Version}}' 2>/dev/null))"

# Leftovers of an earlier run that was killed before its cleanup (the name
# ends in that run's pid): remove them if that pid is gone.
for c in $(dk ps -a --format '{{.Names}}' --filter name=touchpointd-docker-test-); do
    p=${c##*-}
    if [[ $p =~ ^[0-9]+$ ]] && ! tp__alive "$p"; then
        dk rm -f "$c" >/dev/null 2>&1 || true
    fi
done
for i in $(dk images --format '{{.Repository}}:{{.Tag}}' touchpointd); do
    p=${i##*:docker-test-}
    if [[ $i == *:docker-test-* && $p =~ ^[0-9]+$ ]] && ! tp__alive "$p"; then
        dk rmi "$i" >/dev/null 2>&1 || true
    fi
done

# ---- base image ---------------------------------------------------------------
# make_base_tar: debootstrap a minimal bookworm and slim it the way the
# official debian:bookworm-slim is made (dpkg path excludes for docs, man
# pages and locales; no apt lists or caches), then write $BASE_TAR.
make_base_tar() {
    command -v debootstrap >/dev/null 2>&1 || { echo "no debootstrap: run make deps" >&2; return 1; }
    [ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root" >&2; return 1; }
    local root=$dir/rootfs tmp
    if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" \
        >"$dir/debootstrap.log" 2>&1; then
        tail -n 20 "$dir/debootstrap.log" >&2
        return 1
    fi
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# As in debian:bookworm-slim: no docs (but copyrights), man pages or locales.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
// As in the official Debian images: no package cache left in image layers.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    find "$root/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* \
        "$root"/usr/share/lintian/overrides/* \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
    # docker supplies these at run time; the build host's must not leak in.
    : >"$root/etc/resolv.conf"
    : >"$root/etc/hostname"
    mkdir -p "$(dirname "$BASE_TAR")"
    tmp=$BASE_TAR.tmp.$$
    tar --numeric-owner -C "$root" -cf "$tmp" . || { rm -f "$tmp"; return 1; }
    mv "$tmp" "$BASE_TAR"
    rm -rf "$root"
}
t=$(now_ms)
if dk image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    base_note="$BASE_IMAGE already in dockerd"
else
    if [ -s "$BASE_TAR" ]; then
        base_note="imported from $BASE_TAR"
    else
        make_base_tar || fatal "could not bootstrap the base image"
        base_note="bootstrapped into $BASE_TAR and imported"
    fi
    if ! dk import "$BASE_TAR" "$BASE_IMAGE" >/dev/null 2>&1; then
        # A damaged cache: make it again, once.
        rm -f "$BASE_TAR"
        make_base_tar || fatal "could not bootstrap the base image"
        dk import "$BASE_TAR" "$BASE_IMAGE" >/dev/null \
            || fatal "docker import of $BASE_TAR failed"
        base_note="bootstrapped again (cache was unusable) and imported"
    fi
fi
echo "# base image: $base_note in $(secs_since "$t") s"

# ---- build ----------------------------------------------------------------------
t=$(now_ms)
if ! DOCKER_BUILDKIT=1 dk build --progress=plain --network host \
    --build-arg "BASE=$BASE_IMAGE" -f docker/Dockerfile -t "$IMAGE" . \
    >"$dir/build.log" 2>&1; then
    tail -n 40 "$dir/build.log"
    fatal "docker build (log tail above)"
fi
image_made=1
build_s=$(secs_since "$t")
echo "# image $IMAGE built in $build_s s"

# BuildKit's cache makes the next build fast, and stays. Under the vfs
# storage driver every cached layer is a full copy of its filesystem (about
# 400 MB for the build stage), so each change to processor/ leaves another
# few hundred MB behind: past TP_DOCKER_CACHE_MB (default 4096) of vfs
# layers, drop the whole build cache (the next build starts from apt again).
root_dir=$(dk info --format '{{.DockerRootDir}}' 2>/dev/null || true)
if [ "$(dk info --format '{{.Driver}}' 2>/dev/null || true)" = vfs ] \
    && [ -d "$root_dir/vfs" ]; then
    vfs_mb=$(du -sm "$root_dir/vfs" 2>/dev/null | cut -f 1)
    if [ "${vfs_mb:-0}" -gt "${TP_DOCKER_CACHE_MB:-4096}" ]; then
        dk builder prune -af >/dev/null 2>&1 || true
        echo "# vfs layers took $vfs_mb MB (> ${TP_DOCKER_CACHE_MB:-4096}): build cache pruned"
    fi
fi
check "docker build --build-arg BASE=$BASE_IMAGE succeeds" true

inspect() { dk image inspect --format "$1" "$IMAGE"; }
check "runs as the fixed non-root uid 10001:10001" \
    test "$(inspect '{{.Config.User}}')" = 10001:10001
check "ENTRYPOINT is exec form [/usr/local/bin/touchpointd]" \
    test "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/touchpointd"]'
check "CMD is exec form [run -c /etc/touchpointd/touchpointd.yaml]" \
    test "$(inspect '{{json .Config.Cmd}}')" = '["run","-c","/etc/touchpointd/touchpointd.yaml"]'
check "the image has a HEALTHCHECK" \
    test "$(inspect '{{if .Config.Healthcheck}}{{index .Config.Healthcheck.Test 0}}{{end}}')" = CMD
# One throwaway container for the static checks (each container is a full
# copy of the image under the vfs storage driver): every probe prints a tag
# when it passes.
t=$(now_ms)
# shellcheck disable=SC2016 # expanded by the shell in the container
static=$(dk run --rm --network none --entrypoint bash "$IMAGE" -c '
    command -v cc || command -v gcc || command -v make || command -v pkg-config \
        || [ -e /usr/include/librdkafka ] || echo no-toolchain
    ldd /usr/local/bin/touchpointd /usr/local/bin/tpgen >/tmp/ldd 2>&1 \
        && ! grep -q "not found" /tmp/ldd && echo libs-resolved
    touchpointd check -c /etc/touchpointd/touchpointd.yaml >/dev/null && echo config-ok
    tpgen --help >/dev/null && echo tpgen-runs
    [ "$(id -u):$(id -g)" = 10001:10001 ] && echo uid-10001
' 2>&1) || true
has() { grep -qx -- "$1" <<<"$static"; }
check "runtime stage has no compiler, make or headers" has no-toolchain
check "every shared library of touchpointd and tpgen resolves in the image" has libs-resolved
check "the baked-in config passes touchpointd check" has config-ok
check "tpgen runs in the image" has tpgen-runs
check "a shell in the image runs as 10001:10001" has uid-10001
echo "# static checks in $(secs_since "$t") s"

# ---- compose and Prometheus files (syntax only: no registry to pull from) ----------
t=$(now_ms)
if command -v docker-compose >/dev/null 2>&1; then
    check "docker/compose.yaml is valid (docker-compose config -q)" \
        docker-compose -f docker/compose.yaml config -q
elif dk compose version >/dev/null 2>&1; then
    check "docker/compose.yaml is valid (docker compose config -q)" \
        dk compose -f docker/compose.yaml config -q
else
    echo "# skip: no docker-compose nor docker compose plugin to validate docker/compose.yaml"
fi
# Laid out as compose mounts them: the config, and the rules beside it.
promtool_ok() {
    mkdir -p "$dir/prometheus/rules"
    cp docker/prometheus.yml "$dir/prometheus/prometheus.yml"
    cp deploy/prometheus/touchpointd-rules.yaml "$dir/prometheus/rules/"
    local out
    out=$(promtool check config "$dir/prometheus/prometheus.yml" 2>&1) \
        && grep -q 'SUCCESS: [0-9]* rules found' <<<"$out"
}
if command -v promtool >/dev/null 2>&1; then
    check "docker/prometheus.yml with the compose-mounted rules is valid (promtool)" promtool_ok
fi
echo "# compose and prometheus files checked in $(secs_since "$t") s"

# ---- Redis, Kafka and a keyed stream, produced by the image's tpgen -----------------
t=$(now_ms)
tp_start_redis "$dir/redis"
tp_start_kafka "$dir/kafka"
tp_create_topic touchpoints 4
tp_create_topic touchpoints.dlq 1
echo "# redis and kafka up, topics made in $(secs_since "$t") s"
r() { redis-cli -p "$REDIS_PORT" "$@"; }

count=20000
t=$(now_ms)
if ! dk run --rm --network host --entrypoint /usr/local/bin/tpgen "$IMAGE" \
    --seed 11 --count "$count" --span 1m --brokers "$KAFKA_BOOTSTRAP" \
    --topic touchpoints >"$dir/tpgen.out" 2>&1; then
    cat "$dir/tpgen.out"
    fatal "tpgen in the image could not produce to $KAFKA_BOOTSTRAP"
fi
total=$(tp_topic_count touchpoints)
check "tpgen (in the image, host network) produced $count keyed events" \
    test "$total" -eq "$count"
echo "# stream produced in $(secs_since "$t") s"

# ---- the container --------------------------------------------------------------------
hport=$(tp_free_port)
cat >"$dir/touchpointd.yaml" <<YAML
kafka:
  bootstrap.servers: $KAFKA_BOOTSTRAP
  group.id: $GROUP
input:
  topics: [touchpoints]
  dead_letter_topic: touchpoints.dlq
redis:
  url: $REDIS_URL
http:
  address: 0.0.0.0
  port: $hport
log:
  stats_interval: 2s
YAML
chmod 0644 "$dir/touchpointd.yaml" # read by uid 10001 through the bind mount

# The image's ENTRYPOINT and CMD; only the health interval is shortened (the
# image says 10 s) so the test need not wait for it. Locked down the way
# deploy/kubernetes runs it: read-only root filesystem, no capabilities, no
# privilege escalation.
t=$(now_ms)
dk run -d --name "$CNAME" --network host \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -v "$dir/touchpointd.yaml:/etc/touchpointd/touchpointd.yaml:ro" \
    -e "HEALTHCHECK_PORT=$hport" --health-interval 1s \
    "$IMAGE" >/dev/null || fatal "docker run $IMAGE"
container_made=1

recorded() {
    r HVALS "tp:offsets:$GROUP" | awk '{ s += $1 } END { print s + 0 }'
}
drained() { [ "$(recorded)" -eq "$total" ]; }
running() { [ "$(dk inspect -f '{{.State.Running}}' "$CNAME")" = true ]; }
if ! tp_wait_for "the container to record all $total offsets in Redis" 90 drained; then
    running || echo "# the container is not running (exit $(dk inspect -f '{{.State.ExitCode}}' "$CNAME"))"
fi
check "tp:offsets:$GROUP sums to the topic count ($(recorded) of $total)" drained
echo "# consumed $total events $(secs_since "$t") s after docker run"

kpi_events() { # sum of events in the 5m all-channel, all-queue KPI hashes
    local tn n sum=0
    for tn in $(r SMEMBERS tp:tenants); do
        n=$(r HGET "tp:{$tn}:kpi:5m:_all:_all" events)
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}
check "KPI hash tp:{acme}:kpi:5m:_all:_all exists and has events" \
    test -n "$(r HGET 'tp:{acme}:kpi:5m:_all:_all' events)"
check "the 5m KPI hashes count every event ($(kpi_events))" \
    test "$(kpi_events)" -eq "$total"

# PID 1 in the container's namespace is touchpointd itself (no shell, no
# init in between), running as uid 10001.
hostpid=$(dk inspect -f '{{.State.Pid}}' "$CNAME")
check "touchpointd is PID 1 of the container" \
    test "$(awk '$1 == "NSpid:" { print $NF }' "/proc/$hostpid/status")" = 1
check "PID 1 is touchpointd, not a shell" \
    test "$(cat "/proc/$hostpid/comm")" = touchpointd
check "it runs as uid 10001" \
    test "$(awk '$1 == "Uid:" { print $2 }' "/proc/$hostpid/status")" = 10001

logs_have() {
    local l
    l=$(dk logs "$CNAME" 2>&1) && grep -q -- "$1" <<<"$l"
}
metrics_ok() {
    local m
    m=$(curl -sf "http://127.0.0.1:$hport/metrics") && grep -q '^touchpointd_build_info' <<<"$m"
}
check "/metrics answers from the host (http.address 0.0.0.0 in the container)" metrics_ok
check "touchpointd logs that it serves on 0.0.0.0:$hport" logs_have "on 0.0.0.0:$hport"

healthy() { [ "$(dk inspect -f '{{.State.Health.Status}}' "$CNAME")" = healthy ]; }
tp_wait_for "docker to report the container healthy" 30 healthy || true
check "docker reports the container healthy (HEALTHCHECK on /healthz)" healthy
# The probe itself, run as docker runs it: 0 against the live port, non-zero
# against a closed one (so it is not trivially true).
probe=$(inspect '{{index .Config.Healthcheck.Test 3}}')
closed=$(tp_free_port)
probe_at() { dk exec -e "HEALTHCHECK_PORT=$1" "$CNAME" bash -c "$probe" 2>/dev/null; }
probe_fails_at() { ! probe_at "$1"; }
check "the health probe succeeds against /healthz" probe_at "$hport"
check "the health probe fails against a closed port" probe_fails_at "$closed"

# ---- docker stop: SIGTERM reaches PID 1, which drains and exits 0 -------------------
t=$(now_ms)
dk stop -t 15 "$CNAME" >/dev/null
stop_ms=$(($(now_ms) - t))
code=$(dk inspect -f '{{.State.ExitCode}}' "$CNAME")
check "docker stop: exit code 0 (not 137: no SIGKILL after the timeout)" \
    test "$code" = 0
check "docker stop: stopped in ${stop_ms} ms, well under the 15 s timeout (< 10 s)" \
    test "$stop_ms" -lt 10000
check "docker stop: touchpointd drained and wrote its run summary" \
    logs_have "run summary"
check "offsets still sum to the topic count after the drain" drained

# ---- size and time ------------------------------------------------------------------
size=$(inspect '{{.Size}}')
echo "# image size: $size bytes ($((size / 1000000)) MB; base $BASE_IMAGE $(($(dk image inspect --format '{{.Size}}' "$BASE_IMAGE") / 1000000)) MB)"
echo "# docker-test took $(secs_since "$t_begin") s (base image: $base_note; build $build_s s)"
finished=1
summary
[ "$failed" -eq 0 ]
