#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# keystone.sh — a real OpenStack Keystone (Debian's python3-keystone, its
# WSGI application under Python's reference WSGI server) on 127.0.0.1, for
# the Glance publisher's Keystone v3 tests.
#
#     tests/servers/keystone.sh start DIR   # configure DIR, start, bootstrap, wait until ready
#     tests/servers/keystone.sh env DIR     # shell assignments (an OpenStack RC file's OS_*)
#     tests/servers/keystone.sh stop DIR    # stop the server and remove DIR
#
# DIR (default $KILN_KEYSTONE_DIR) holds keystone.conf, an SQLite database,
# the fernet and credential key repositories, the log (keystone.log) and the
# server's pid and port. Start runs `keystone-manage db_sync`,
# `fernet_setup`, `credential_setup` and `bootstrap`, which creates the
# Default domain, project "admin", user "admin" (password below) with the
# admin role, region RegionOne and the identity service's public endpoint.
# Other services (tests/servers/glance.sh with a Keystone) add their own
# catalog entries with the admin credentials.
#
# The packaged `keystone` service (uwsgi, dbconfig) is not used: the
# keystone-wsgi-public script serves the same application in the
# foreground, which is all a test needs.
#
# Readiness is a condition: start polls GET /v3 until it answers 200, or
# fails (showing the log) when the server exits or 60 s pass.
set -euo pipefail

# shellcheck source=tests/servers/lib.sh
. "$(dirname "$0")/lib.sh"

cmd=${1:-}
dir=${2:-${KILN_KEYSTONE_DIR:-}}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: keystone.sh start|env|stop DIR"

ADMIN_PASSWORD=kiln-test-admin-password

# manage ARGS... — keystone-manage with this DIR's config; output to the
# setup log, shown on failure.
manage() {
        keystone-manage --config-file "$dir/keystone.conf" "$@" >>"$dir/setup.log" 2>&1 ||
                { tail -n 30 "$dir/setup.log" >&2; die "keystone-manage $1 failed"; }
}

start() {
        command -v keystone-manage >/dev/null ||
                die "keystone-manage is not installed (run scripts/install-deps.sh)"
        [ ! -e "$dir/pid" ] || die "$dir: a server seems to run already (stop it first)"
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        local port pid
        port=$(free_port)
        mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
        cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone.log
use_stderr = false
[database]
connection = sqlite:///$dir/keystone.sqlite
[token]
provider = fernet
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
EOF
        manage db_sync
        # oslo.db opens a transaction for every read on SQLite; in the default
        # rollback-journal mode a pooled connection's open read blocks the next
        # write ("database is locked"). WAL lets readers and a writer coexist.
        python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' \
                "$dir/keystone.sqlite"
        manage fernet_setup --keystone-user root --keystone-group root
        manage credential_setup --keystone-user root --keystone-group root
        manage bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
                --bootstrap-username admin --bootstrap-project-name admin \
                --bootstrap-role-name admin --bootstrap-service-name keystone \
                --bootstrap-region-id RegionOne \
                --bootstrap-public-url "http://127.0.0.1:$port/v3"
        # Own session, so that stop can end it by its process group.
        setsid keystone-wsgi-public --host 127.0.0.1 --port "$port" -- \
                --config-file "$dir/keystone.conf" >"$dir/stdout.log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$dir/pid"
        echo "$port" >"$dir/port"
        wait_ready keystone "$pid" "$port" v3 "$dir/keystone.log"
}

print_env() {
        [ -f "$dir/port" ] || die "$dir: no server was started there"
        local d
        d=$(cd "$dir" && pwd)
        printf 'KEYSTONE_DIR=%q\n' "$d"
        printf 'KEYSTONE_LOG=%q\n' "$d/keystone.log"
        printf 'OS_AUTH_URL=%q\n' "http://127.0.0.1:$(cat "$dir/port")/v3"
        printf 'OS_USERNAME=admin\n'
        printf 'OS_PASSWORD=%q\n' "$ADMIN_PASSWORD"
        printf 'OS_PROJECT_NAME=admin\n'
        printf 'OS_USER_DOMAIN_NAME=Default\n'
        printf 'OS_PROJECT_DOMAIN_NAME=Default\n'
        printf 'OS_REGION_NAME=RegionOne\n'
        printf 'OS_IDENTITY_API_VERSION=3\n'
}

case "$cmd" in
start) start ;;
env) print_env ;;
stop) stop_server ;;
*) die "unknown command '$cmd' (start|env|stop)" ;;
esac
