#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what building and testing touchpointd needs on Debian 12: the
# Debian packages, then the pinned Apache Kafka broker jars from Maven Central
# into .cache/kafka-VERSION/libs. Idempotent; quiet on success (one line),
# loud and non-zero on failure. Needs root or passwordless sudo; no stdin.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pom="$root/tests/harness/kafka/pom.xml"
export DEBIAN_FRONTEND=noninteractive

log=$(mktemp -t touchpointd-deps.XXXXXX)
trap 'rm -f "$log"' EXIT

die() {
    echo "deps.sh: error: $*" >&2
    if [ -s "$log" ]; then
        echo "---- last output ($log) ----" >&2
        tail -n 60 "$log" | sed 's/\x1b\[[0-9;]*m//g' >&2
    fi
    trap - EXIT # keep the log for inspection
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
    else
        die "not root and no sudo: cannot run $*"
    fi
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ---- Debian packages -------------------------------------------------------
pkgs=(build-essential clang pkg-config librdkafka-dev libjansson-dev
      libhiredis-dev libyaml-dev libcmocka-dev libmicrohttpd-dev libcurl4-openssl-dev redis-server kcat maven
      valgrind curl prometheus prometheus-alertmanager docker.io debootstrap docker-compose libclang-rt-14-dev)
# Maven pulls in a Java runtime anyway; ask for one explicitly only if none.
if ! command -v java >/dev/null 2>&1; then
    pkgs+=(default-jre-headless)
fi

missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done

apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 -q -y)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get "${apt_opts[@]}" update >>"$log" 2>&1 \
        || die "apt-get update failed"
    as_root apt-get "${apt_opts[@]}" install --no-install-recommends \
        "${missing[@]}" >>"$log" 2>&1 \
        || die "apt-get install ${missing[*]} failed"
    for p in "${missing[@]}"; do
        installed "$p" || die "package $p still not installed"
    done
    apt_note="installed ${#missing[@]} (${missing[*]})"
else
    apt_note="all ${#pkgs[@]} present"
fi
command -v java >/dev/null 2>&1 || die "no java on PATH after install"

# ---- Kafka broker jars -----------------------------------------------------
ver=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
[ -n "$ver" ] || die "no <kafka.version> in $pom"
dest="$root/.cache/kafka-$ver/libs"

# drop DIR: remove a half-fetched DIR and its parent if that is now empty.
drop() {
    rm -rf "$1"
    rmdir "$(dirname "$1")" 2>/dev/null || true
}

if [ -f "$dest/kafka_2.13-$ver.jar" ] && [ -f "$dest/.complete" ]; then
    jar_note="kafka $ver jars cached"
else
    start=$(date +%s)
    tmp="$root/.cache/kafka-$ver/libs.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime \
        -Dmdep.useRepositoryLayout=false </dev/null >>"$log" 2>&1 \
        || { drop "$tmp"; die "mvn could not fetch the Kafka $ver jars"; }
    [ -f "$tmp/kafka_2.13-$ver.jar" ] \
        || { drop "$tmp"; die "kafka_2.13-$ver.jar missing after mvn"; }
    n=$(find "$tmp" -name '*.jar' | wc -l)
    touch "$tmp/.complete"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    jar_note="kafka $ver: fetched $n jars in $(( $(date +%s) - start )) s"
fi

echo "deps: apt packages $apt_note; $jar_note -> .cache/kafka-$ver/libs"
