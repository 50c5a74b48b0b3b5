# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# lib.sh — helpers for kiln's end-to-end tests. An e2e script looks like
#
#     #!/usr/bin/env bash
#     . "$(dirname "$0")/lib.sh"
#
#     t_version() {
#             assert_exit 0 "$KILN" --version || return 1
#             assert_contains "$(<"$T_OUT")" "kiln" || return 1
#     }
#     run_test version t_version
#
#     e2e_summary
#
# run_test NAME FN [ARGS...] runs FN in a subshell (with `set -e` off) inside
# a fresh temp dir $T_TMP (removed afterwards), prints "ok   NAME" or
# "FAIL NAME" followed by everything FN printed. A test fails when FN returns
# non-zero, so call assertions as `assert_x ... || return 1`.
# e2e_summary prints "N passed, M failed" and exits 1 if anything failed.
#
# Environment: KILN (optimised binary) and KILN_SAN (ASan+UBSan build), set by
# tests/run-all.sh; default to build/kiln and build-san/kiln. Scripts run from
# the repository root ($E2E_ROOT), with NO_COLOR=1 exported.

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$E2E_ROOT" || exit 1
KILN=${KILN:-${KILN_BIN:-$E2E_ROOT/build/kiln}}
KILN_SAN=${KILN_SAN:-$E2E_ROOT/build-san/kiln}
export KILN KILN_SAN NO_COLOR=1
T_PASSED=0
T_FAILED=0

# t_fail MSG... — report a failure from inside a test; returns 1.
t_fail() {
        echo "$*" >&2
        return 1
}

run_test() {
        local name=$1 fn=$2 log rc=0
        shift 2
        T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-e2e.XXXXXX") || exit 1
        log=$(mktemp "${TMPDIR:-/tmp}/kiln-e2e-log.XXXXXX") || exit 1
        (
                set +e
                # shellcheck disable=SC2030 # per-test, meant to stay in here
                T_OUT=$T_TMP/.stdout T_ERR=$T_TMP/.stderr
                "$fn" "$@"
        ) >"$log" 2>&1 </dev/null || rc=$?
        if [ "$rc" -eq 0 ]; then
                echo "ok   $name"
                T_PASSED=$((T_PASSED + 1))
        else
                echo "FAIL $name"
                sed 's/^/    /' "$log"
                T_FAILED=$((T_FAILED + 1))
        fi
        rm -rf "$T_TMP" "$log"
        unset T_TMP
}

assert_eq() {
        [ "$1" = "$2" ] && return 0
        t_fail "assert_eq failed${3:+: $3}"$'\n'"  expected: '$1'"$'\n'"  actual:   '$2'"
}

assert_contains() {
        case "$1" in *"$2"*) return 0 ;; esac
        t_fail "assert_contains failed: '$2' not found in:"$'\n'"$1"
}

assert_not_contains() {
        case "$1" in *"$2"*) t_fail "assert_not_contains failed: '$2' found in:"$'\n'"$1" ;; esac
}

# assert_exit CODE CMD [ARGS...] — run CMD with stdout to the file $T_OUT and
# stderr to the file $T_ERR; fail (showing both) unless it exits with CODE.
assert_exit() {
        local want=$1 rc=0
        shift
        # shellcheck disable=SC2031 # set by run_test; mktemp outside one
        : "${T_OUT:=$(mktemp)}" "${T_ERR:=$(mktemp)}"
        "$@" >"$T_OUT" 2>"$T_ERR" || rc=$?
        [ "$rc" -eq "$want" ] && return 0
        t_fail "assert_exit: expected exit $want, got $rc from: $*"
        echo "--- stdout:" >&2
        awk '{ print } NR >= 40 { print "[...]"; exit }' "$T_OUT" >&2
        echo "--- stderr:" >&2
        awk '{ print } NR >= 40 { print "[...]"; exit }' "$T_ERR" >&2
        return 1
}

# assert_file_eq EXPECTED_FILE ACTUAL_FILE — byte-for-byte; shows diff -u.
assert_file_eq() {
        cmp -s "$1" "$2" && return 0
        t_fail "assert_file_eq failed: $2 differs from $1"
        diff -u --label "$1" --label "$2" "$1" "$2" >&2
        return 1
}

# e2e_cleanup_add PATH... — remove PATHs (rm -rf) when the script exits (one
# EXIT trap, set here, for every helper and script).
# A script that sets its own EXIT trap must remove "${E2E_CLEANUP[@]}" in it.
E2E_CLEANUP=()
e2e_cleanup_add() {
        E2E_CLEANUP+=("$@")
}
trap 'rm -rf "${E2E_CLEANUP[@]}"' EXIT

# Images built by the tests go into a throwaway image store, never into the
# user's (kiln build adds finished images to $KILN_STORE_DIR).
if [ -z "${KILN_STORE_DIR:-}" ]; then
        KILN_STORE_DIR=$(mktemp -d /var/tmp/kiln-e2e-store.XXXXXX) || exit 1
        export KILN_STORE_DIR
        e2e_cleanup_add "$KILN_STORE_DIR"
fi

# e2e_minimal_build — build examples/minimal (tree and images) once per test
# run and share it: every e2e script that needs a real image calls this and
# gets E2E_MIN_OUT (output dir: $E2E_MIN_OUT/minimal/minimal.{raw,qcow2}),
# E2E_MIN_WORK (work dir) and E2E_MIN_CACHE (step cache). The first caller
# builds (about a minute); later callers get kiln's no-op rebuild. Shared
# through $KILN_E2E_SHARED (set by tests/run-all.sh); a script run on its own
# gets a private directory removed when it exits. Returns kiln's exit code.
e2e_minimal_build() {
        if [ -z "${KILN_E2E_SHARED:-}" ]; then
                KILN_E2E_SHARED=$(mktemp -d /var/tmp/kiln-e2e-shared.XXXXXX) || return 1
                export KILN_E2E_SHARED
                e2e_cleanup_add "$KILN_E2E_SHARED"
        fi
        E2E_MIN_OUT=$KILN_E2E_SHARED/output
        E2E_MIN_WORK=$KILN_E2E_SHARED/work
        E2E_MIN_CACHE=$KILN_E2E_SHARED/cache
        export E2E_MIN_OUT E2E_MIN_WORK E2E_MIN_CACHE
        (
                flock 9
                KILN_CACHE_DIR=$E2E_MIN_CACHE "$KILN" build --work-dir "$E2E_MIN_WORK" \
                        --output-dir "$E2E_MIN_OUT" examples/minimal/kiln.yaml \
                        >"$KILN_E2E_SHARED/build.log" 2>&1 ||
                        { tail -30 "$KILN_E2E_SHARED/build.log" >&2; exit 1; }
        ) 9>"$KILN_E2E_SHARED/.lock"
}

# e2e_busybox_tarball DIR — a tiny root tree of /bin/busybox and its applets
# (with /etc/passwd and /etc/group for root) in DIR/tree, packed as
# DIR/busybox.tar.gz: a source (type: tarball) for builds that must not wait
# for a Debian bootstrap.
e2e_busybox_tarball() {
        mkdir -p "$1/tree/bin" "$1/tree/etc" "$1/tree/root"
        cp /bin/busybox "$1/tree/bin/busybox"
        for a in $(/bin/busybox --list); do
                [ "$a" = busybox ] || ln -s busybox "$1/tree/bin/$a"
        done
        echo "root:x:0:0:root:/root:/bin/sh" >"$1/tree/etc/passwd"
        echo "root:x:0:" >"$1/tree/etc/group"
        tar -C "$1/tree" -czf "$1/busybox.tar.gz" .
}

e2e_summary() {
        echo "$T_PASSED passed, $T_FAILED failed"
        [ "$T_FAILED" -eq 0 ] || exit 1
        exit 0
}
