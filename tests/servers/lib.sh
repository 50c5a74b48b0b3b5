# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# lib.sh — shell functions shared by the test server scripts (glance.sh,
# keystone.sh, swift.sh), sourced by them:
#
#     . "$(dirname "$0")/lib.sh"
#
# The sourcing script sets `dir` (its server directory) before it calls
# wait_ready or stop_server.
# shellcheck disable=SC2154 # dir is the sourcing script's

# die MESSAGE... — the message, prefixed with the script's name, then exit 1.
die() {
        echo "$(basename "$0"): $*" >&2
        exit 1
}

# A free TCP port on 127.0.0.1 (the kernel picks it; the tiny window until
# the server binds it is covered by start failing loudly).
free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready NAME PID PORT PATH LOG — polls GET http://127.0.0.1:PORT/PATH
# until it answers 2xx. Fails, showing $dir/stdout.log and LOG, when process
# PID exits first (removing $dir/pid), or showing LOG when 60 s pass.
wait_ready() {
        local name=$1 pid=$2 port=$3 path=$4 log=$5 deadline=$((SECONDS + 60))
        until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/$path"; do
                if ! kill -0 "$pid" 2>/dev/null; then
                        tail -n 30 "$dir/stdout.log" "$log" >&2 || true
                        rm -f "$dir/pid"
                        die "$name exited before it was ready"
                fi
                if [ "$SECONDS" -ge "$deadline" ]; then
                        tail -n 30 "$log" >&2 || true
                        die "$name not ready on port $port after 60 s"
                fi
                sleep 0.1 # poll interval
        done
}

# stop_server — ends the server whose pid $dir/pid holds, then removes $dir.
# The server was started with setsid, so it leads a process group: the group
# (the server and its workers) gets SIGTERM, and SIGKILL if it has not gone
# after 20 s.
stop_server() {
        [ -d "$dir" ] || return 0
        if [ -f "$dir/pid" ]; then
                local pid deadline
                pid=$(cat "$dir/pid")
                kill -TERM -- "-$pid" 2>/dev/null || true
                deadline=$((SECONDS + 20))
                while kill -0 -- "-$pid" 2>/dev/null; do
                        if [ "$SECONDS" -ge "$deadline" ]; then
                                kill -KILL -- "-$pid" 2>/dev/null || true
                                break
                        fi
                        sleep 0.1 # poll interval
                done
        fi
        rm -rf "$dir"
}
