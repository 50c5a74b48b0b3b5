#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# glance.sh — a real OpenStack Glance (Debian's glance-api) on 127.0.0.1 for
# kiln's publisher tests.
#
#     tests/servers/glance.sh start DIR [KEYSTONE_DIR]
#                                         # configure DIR, start, wait until ready
#     tests/servers/glance.sh env DIR     # shell assignments for the tests (eval them)
#     tests/servers/glance.sh stop DIR    # stop the server and remove DIR
#
# DIR (default $KILN_GLANCE_DIR) is created by start and holds everything:
# glance-api.conf, the paste pipeline, an SQLite database, the file store
# (images/), the glance-direct staging area (staging/), the log (glance.log)
# and the server's pid and port.
#
# Authentication: there is no Keystone. The paste pipeline below runs
# glance's ContextMiddleware without keystonemiddleware's authtoken in front
# of it, so the request context is built from the identity headers that
# authtoken would normally set: a request with `X-Identity-Status:
# Confirmed`, `X-Project-Id`, `X-User-Id` and `X-Roles` is trusted; any other
# request gets 401. (A pipeline without any context middleware gives
# anonymous admin requests, but then images and import tasks have no owner
# and the /import flow fails.) `env` prints those headers as
# KILN_GLANCE_HEADERS, "Name: value" pairs separated by ";", the form the
# glance publisher reads.
#
# With KEYSTONE_DIR (a running tests/servers/keystone.sh), Glance is set up
# as in a cloud instead: keystonemiddleware's authtoken validates the
# X-Auth-Token of every request with that Keystone (as its admin user), the
# trusted-headers shortcut is off, and start registers an "image" service
# with a public endpoint in RegionOne in Keystone's catalog.
#
# Readiness is a condition, not a delay: start polls GET /versions until it
# answers 200, or fails (showing the log) when the server exits or 60 s pass.
set -euo pipefail

# shellcheck source=tests/servers/lib.sh
. "$(dirname "$0")/lib.sh"

cmd=${1:-}
dir=${2:-${KILN_GLANCE_DIR:-}}
keystone_dir=${3:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: glance.sh start|env|stop DIR"

HEADERS="X-Identity-Status: Confirmed;X-Project-Id: kiln-test;X-User-Id: kiln;X-Roles: admin,member,reader"

write_config() {
        local port=$1 flavor=trusted-headers
        [ -z "$keystone_dir" ] || flavor=keystone-auth
        mkdir -p "$dir/images" "$dir/staging" "$dir/work" "$dir/locks" "$dir/cache"
        cat >"$dir/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 1
log_file = $dir/glance.log
use_stderr = false
# glance-direct: PUT /stage writes here, POST /import moves it into the store.
node_staging_uri = file://$dir/staging
enabled_import_methods = [glance-direct]
image_cache_dir = $dir/cache
[database]
connection = sqlite:///$dir/glance.sqlite
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $dir/images
[paste_deploy]
config_file = $dir/glance-api-paste.ini
flavor = $flavor
[task]
work_dir = $dir/work
[oslo_concurrency]
lock_path = $dir/locks
EOF
        cat >"$dir/glance-api-paste.ini" <<EOF
# ContextMiddleware without authtoken: identity comes from X-Identity-Status,
# X-Project-Id, X-User-Id and X-Roles headers (test use only).
[pipeline:glance-api-trusted-headers]
pipeline = healthcheck versionnegotiation context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:healthcheck]
paste.filter_factory = oslo_middleware:Healthcheck.factory
backends = disable_by_file
disable_by_file_path = $dir/healthcheck_disable

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

# authtoken, then the same context middleware: as in a cloud.
[pipeline:glance-api-keystone-auth]
pipeline = healthcheck versionnegotiation authtoken context rootapp

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
EOF
        if [ -n "$keystone_dir" ]; then
                cat >>"$dir/glance-api.conf" <<EOF
[keystone_authtoken]
www_authenticate_uri = $OS_AUTH_URL
auth_url = $OS_AUTH_URL
auth_type = password
username = $OS_USERNAME
password = $OS_PASSWORD
project_name = $OS_PROJECT_NAME
user_domain_name = $OS_USER_DOMAIN_NAME
project_domain_name = $OS_PROJECT_DOMAIN_NAME
# bootstrap made only a public identity endpoint (the default is internal)
interface = public
EOF
        fi
}

# register_in_keystone PORT — the image service and its public endpoint in
# Keystone's catalog, created with the admin user's token.
register_in_keystone() {
        local port=$1 token service
        token=$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' -d @- \
                "$OS_AUTH_URL/auth/tokens" <<EOF | awk -F': ' 'tolower($1) == "x-subject-token" { sub(/\r$/, "", $2); print $2 }'
{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "$OS_USERNAME",
 "domain": {"name": "$OS_USER_DOMAIN_NAME"}, "password": "$OS_PASSWORD"}}},
 "scope": {"project": {"name": "$OS_PROJECT_NAME", "domain": {"name": "$OS_PROJECT_DOMAIN_NAME"}}}}}
EOF
        ) || die "cannot get an admin token from $OS_AUTH_URL"
        [ -n "$token" ] || die "Keystone sent no X-Subject-Token"
        service=$(curl -fsS -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
                -d '{"service": {"type": "image", "name": "glance"}}' "$OS_AUTH_URL/services" |
                python3 -c 'import json, sys; print(json.load(sys.stdin)["service"]["id"])') ||
                die "cannot create the image service in Keystone"
        curl -fsS -o /dev/null -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
                -d "{\"endpoint\": {\"service_id\": \"$service\", \"interface\": \"public\",
                     \"region_id\": \"RegionOne\", \"url\": \"http://127.0.0.1:$port\"}}" \
                "$OS_AUTH_URL/endpoints" || die "cannot create the image endpoint in Keystone"
}

start() {
        command -v glance-api >/dev/null || die "glance-api is not installed (run scripts/install-deps.sh)"
        [ ! -e "$dir/pid" ] || die "$dir: a server seems to run already (stop it first)"
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        local port pid
        if [ -n "$keystone_dir" ]; then
                eval "$(bash "$(dirname "$0")/keystone.sh" env "$keystone_dir")"
                echo keystone >"$dir/auth"
        fi
        port=$(free_port)
        write_config "$port"
        glance-manage --config-file "$dir/glance-api.conf" db_sync >"$dir/db_sync.log" 2>&1 ||
                { cat "$dir/db_sync.log" >&2; die "glance-manage db_sync failed"; }
        # Own session, so that stop can end the server and its worker together.
        setsid glance-api --config-file "$dir/glance-api.conf" >"$dir/stdout.log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$dir/pid"
        echo "$port" >"$dir/port"
        wait_ready glance-api "$pid" "$port" versions "$dir/glance.log"
        [ -z "$keystone_dir" ] || register_in_keystone "$port"
}

print_env() {
        [ -f "$dir/port" ] || die "$dir: no server was started there"
        local d
        d=$(cd "$dir" && pwd)
        printf 'GLANCE_DIR=%q\n' "$d"
        printf 'GLANCE_ENDPOINT=%q\n' "http://127.0.0.1:$(cat "$dir/port")"
        printf 'GLANCE_LOG=%q\n' "$d/glance.log"
        [ -f "$dir/auth" ] || printf 'KILN_GLANCE_HEADERS=%q\n' "$HEADERS"
}

case "$cmd" in
start) start ;;
env) print_env ;;
stop) stop_server ;;
*) die "unknown command '$cmd' (start|env|stop)" ;;
esac
