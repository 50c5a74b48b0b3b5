#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# swift.sh — a real OpenStack Swift (Debian's swift-proxy, swift-object,
# swift-container, swift-account) with its S3 API middleware (s3api) on
# 127.0.0.1, for kiln's S3 publisher tests and benchmark.
#
#     tests/servers/swift.sh start DIR   # configure DIR, start, wait until ready
#     tests/servers/swift.sh env DIR     # shell assignments for the tests (eval them)
#     tests/servers/swift.sh stop DIR    # stop the servers and remove DIR
#
# DIR (default $KILN_SWIFT_DIR) is created by start and holds everything:
# swift.conf and the rings (etc/), the one storage device (node/d1 — a plain
# directory; mount_check is off, and the object server needs user xattrs,
# which ext4 and tmpfs have), each server's config, console log and pid, and
# the ports. DIR should be on a filesystem with user xattrs (/var/tmp here).
#
# Authentication: tempauth with one user, account "test", user "tester", key
# "testing". s3api passes S3 requests' signatures (V2 and V4) to tempauth,
# which checks them with that key: the S3 access key is "test:tester", the
# secret "testing", the region "us-east-1". Multipart uploads work through
# s3api's use of SLO (the pipeline has slo). No memcached: the cache
# middleware is configured with a port nothing listens on, which Swift treats
# as a cache miss (tempauth does not need it for S3 requests).
#
# Readiness is a condition, not a delay: start polls every server's
# /healthcheck, then the proxy's, then an authenticated S3 request (s3cmd ls),
# or fails (showing the logs) when a server exits or 60 s pass. DIR/s3cfg is
# an s3cmd configuration for the server (path-style addressing).
set -euo pipefail

# shellcheck source=tests/servers/lib.sh
. "$(dirname "$0")/lib.sh"

cmd=${1:-}
dir=${2:-${KILN_SWIFT_DIR:-}}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: swift.sh start|env|stop DIR"

SERVERS=(account container object proxy)

write_backend_conf() { # NAME PORT
        local name=$1 port=$2
        cat >"$dir/etc/$name-server.conf" <<EOF
[DEFAULT]
devices = $dir/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = $port
workers = ${SWIFT_BACKEND_WORKERS:-1}
user = root
swift_dir = $dir/etc
log_name = kiln-$name
log_level = WARNING

[pipeline:main]
pipeline = healthcheck $name-server

[filter:healthcheck]
use = egg:swift#healthcheck

[app:$name-server]
use = egg:swift#$name

[${name}-replicator]
[${name}-auditor]
[${name}-updater]
EOF
}

write_config() {
        mkdir -p "$dir/etc" "$dir/node/d1" "$dir/run"
        # xattrs are what the object server stores metadata in: check early.
        python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.kiln", b"1")' "$dir/node/d1" ||
                die "$dir does not support user xattrs; pick a DIR on ext4/xfs/tmpfs"
        cat >"$dir/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = kiln-test-prefix
swift_hash_path_suffix = kiln-test-suffix

[storage-policy:0]
name = Policy-0
default = yes
EOF
        local p
        for s in account container object; do
                p=$(free_port)
                echo "$p" >"$dir/run/$s.port"
                write_backend_conf "$s" "$p"
                swift-ring-builder "$dir/etc/$s.builder" create 4 1 1 >/dev/null
                swift-ring-builder "$dir/etc/$s.builder" add "r1z1-127.0.0.1:$p/d1" 100 >/dev/null
                swift-ring-builder "$dir/etc/$s.builder" rebalance >/dev/null
        done
        p=$(free_port)
        echo "$p" >"$dir/run/proxy.port"
        local cache_port
        cache_port=$(free_port) # nothing listens there: every cache lookup misses
        cat >"$dir/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $p
workers = ${SWIFT_PROXY_WORKERS:-2}
user = root
swift_dir = $dir/etc
log_name = kiln-proxy
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$cache_port
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# 5 MiB, S3's own minimum part size
min_segment_size = 5242880

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
EOF
}

# Waits until URL answers with an HTTP status (any), or a server died.
wait_http() { # URL WHAT
        local url=$1 what=$2 deadline=$((SECONDS + 60)) code
        while :; do
                code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
                [ "$code" != "000" ] && [ -n "$code" ] && return 0
                for s in "${SERVERS[@]}"; do
                        [ -f "$dir/run/$s.pid" ] && ! kill -0 "$(cat "$dir/run/$s.pid")" 2>/dev/null &&
                                { tail -n 30 "$dir/run/$s.log" >&2; die "$s server exited"; }
                done
                [ $SECONDS -lt $deadline ] || { tail -n 30 "$dir"/run/*.log >&2; die "$what not ready after 60 s"; }
                # a short poll interval, not a wait for readiness
                sleep 0.2
        done
}

start() {
        [ -e "$dir/run/proxy.pid" ] && die "$dir already holds a running Swift (stop it first)"
        for c in swift-ring-builder swift-proxy-server swift-object-server swift-container-server \
                swift-account-server curl python3 s3cmd; do
                command -v "$c" >/dev/null || die "$c not found: run scripts/install-deps.sh"
        done
        mkdir -p "$dir"
        write_config
        for s in "${SERVERS[@]}"; do
                # -v: log to the console too (there is no syslog here)
                setsid "swift-$s-server" "$dir/etc/$s-server.conf" -v >"$dir/run/$s.log" 2>&1 </dev/null &
                echo $! >"$dir/run/$s.pid"
        done
        for s in account container object; do
                wait_http "http://127.0.0.1:$(cat "$dir/run/$s.port")/healthcheck" "$s server"
        done
        local proxy="http://127.0.0.1:$(cat "$dir/run/proxy.port")"
        wait_http "$proxy/healthcheck" "proxy"
        # s3cmd, for tests and the benchmark: path-style (host_bucket has no
        # %(bucket)s), plain HTTP, SigV4.
        cat >"$dir/s3cfg" <<EOF
[default]
access_key = test:tester
secret_key = testing
host_base = 127.0.0.1:$(cat "$dir/run/proxy.port")
host_bucket = 127.0.0.1:$(cat "$dir/run/proxy.port")
use_https = False
signature_v2 = False
bucket_location = us-east-1
EOF
        # Ready means an authenticated S3 request works (tempauth checks the
        # signature; the account is created on first use).
        local deadline=$((SECONDS + 60))
        until s3cmd -c "$dir/s3cfg" ls >/dev/null 2>"$dir/run/s3cmd.err"; do
                [ $SECONDS -lt $deadline ] || { tail -n 30 "$dir"/run/*.log "$dir/run/s3cmd.err" >&2; die "S3 API not usable after 60 s"; }
                sleep 0.2
        done
}

stop() {
        [ -d "$dir" ] || return 0
        local pids=()
        for s in "${SERVERS[@]}"; do
                [ -f "$dir/run/$s.pid" ] && pids+=("$(cat "$dir/run/$s.pid")")
        done
        # Each server was started with setsid: its pid is its process group,
        # holding its workers. Only those groups are signalled.
        for p in "${pids[@]}"; do
                kill -TERM -- "-$p" 2>/dev/null || true
        done
        local deadline=$((SECONDS + 20))
        for p in "${pids[@]}"; do
                while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
                        sleep 0.1
                done
                kill -KILL -- "-$p" 2>/dev/null || true
        done
        rm -rf "$dir"
}

print_env() {
        [ -f "$dir/run/proxy.port" ] || die "$dir holds no Swift (start it first)"
        cat <<EOF
KILN_S3_ENDPOINT=http://127.0.0.1:$(cat "$dir/run/proxy.port")
KILN_S3_REGION=us-east-1
KILN_S3_ACCESS_KEY=test:tester
KILN_S3_SECRET_KEY=testing
KILN_SWIFT_DIR=$dir
KILN_S3CMD_CONFIG=$dir/s3cfg
EOF
}

case "$cmd" in
start) start ;;
stop) stop ;;
env) print_env ;;
*) die "unknown command '$cmd' (start|env|stop)" ;;
esac
