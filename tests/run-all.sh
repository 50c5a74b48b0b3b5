#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run-all.sh — run every kiln test and print one total. Run by `make check`
# after building both trees; run it directly for a quicker loop:
#
#     tests/run-all.sh [-v] [FILTER]
#
#   1. unit tests: build/tests/unit/test_* (optimised), then
#      build-san/tests/unit/test_* (ASan + UBSan), one per tests/unit/test_*.c
#   2. end-to-end tests: tests/e2e/test_*.sh, each run as
#      `bash tests/e2e/test_X.sh` with KILN and KILN_SAN set
#
# Every binary/script prints "ok   NAME" / "FAIL NAME" lines and ends with
# "N passed, M failed"; those are added up. A binary that crashes, times out
# or ends without that line counts as one failed test. One line per binary is
# printed; its full output only on failure (always with -v or VERBOSE=1).
# The last line is the total "N passed, M failed"; exit 1 if anything failed
# or nothing ran.
#
#   FILTER              run only binaries/scripts whose name contains it
#   -v, VERBOSE=1       show every binary's output
#   KILN_BIN            kiln binary for e2e tests (default build/kiln)
#   KILN_TEST_TIMEOUT   seconds per binary/script (default 3600, 0 = none)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

VERBOSE=${VERBOSE:-0}
FILTER=""
while [ $# -gt 0 ]; do
        case "$1" in
        -v | --verbose) VERBOSE=1 ;;
        -h | --help)
                awk 'NR > 2 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0"
                exit 0
                ;;
        -*)
                echo "run-all: unknown option '$1' (try --help)" >&2
                exit 2
                ;;
        *) FILTER=$1 ;;
        esac
        shift
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export KILN=${KILN_BIN:-$ROOT/build/kiln}
export KILN_SAN=$ROOT/build-san/kiln
export KILN_TEST_DATA=$ROOT/tests
TIMEOUT=${KILN_TEST_TIMEOUT:-3600}

PASSED=0
FAILED=0
RAN=0 # binaries/scripts run
# One build of examples/minimal shared by every e2e script that needs an
# image (lib.sh: e2e_minimal_build); removed at the end of the run.
export KILN_E2E_SHARED=${KILN_E2E_SHARED:-$(mktemp -d /var/tmp/kiln-e2e-shared.XXXXXX)}
export KILN_STORE_DIR=${KILN_STORE_DIR:-$KILN_E2E_SHARED/store}
START=$(date +%s%N)
OUT=$(mktemp "${TMPDIR:-/tmp}/kiln-run-all.XXXXXX") || exit 1
CHILD=""

on_signal() {
        [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
        rm -f "$OUT"
        rm -rf "$KILN_E2E_SHARED"
        echo "run-all: interrupted" >&2
        exit 130
}
trap on_signal INT TERM
trap 'rm -f "$OUT"; rm -rf "$KILN_E2E_SHARED"' EXIT

# run KIND LABEL CMD... — run one test binary/script, add up its counts.
run() {
        local kind=$1 label=$2 rc=0 last p f note=""
        shift 2
        RAN=$((RAN + 1))
        # In the background so a signal to us can stop it (see on_signal);
        # under timeout(1) so a hang can't stall the run forever.
        if [ "$TIMEOUT" -gt 0 ]; then
                timeout -k 10 "$TIMEOUT" "$@" >"$OUT" 2>&1 </dev/null &
        else
                "$@" >"$OUT" 2>&1 </dev/null &
        fi
        CHILD=$!
        wait "$CHILD" 2>/dev/null || rc=$? # quiet: no "Segmentation fault" notice
        CHILD=""
        last=$(tail -n 1 "$OUT")
        if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
                p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
                if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
                        f=1 note="  (exit status $rc)"
                fi
        else
                p=0 f=1
                if [ "$TIMEOUT" -gt 0 ] && [ "$rc" -eq 124 ]; then
                        note="  (timed out after ${TIMEOUT}s)"
                elif [ "$rc" -gt 128 ]; then
                        note="  (killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))), no summary line)"
                else
                        note="  (exit status $rc, no summary line)"
                fi
        fi
        PASSED=$((PASSED + p))
        FAILED=$((FAILED + f))
        printf '%-5s %s  %s passed, %s failed%s\n' "$kind" "$label" "$p" "$f" "$note"
        if [ "$f" -ne 0 ] || [ "$VERBOSE" = 1 ]; then
                sed 's/^/    /' "$OUT"
        fi
}

# missing KIND LABEL PATH — a test binary that should exist but doesn't.
missing() {
        printf '%-5s %s  0 passed, 1 failed  (missing: %s; run make unit unit-san)\n' "$1" "$2" "$3"
        FAILED=$((FAILED + 1))
}

# 1. Unit tests, one binary per tests/unit/test_*.c, optimised then sanitized.
for tree in build build-san; do
        for src in tests/unit/test_*.c; do
                [ -e "$src" ] || continue
                name=$(basename "$src" .c)
                [[ $name == *"$FILTER"* ]] || continue
                label=$name
                [ "$tree" = build-san ] && label="$name (san)"
                bin=$tree/tests/unit/$name
                if [ -x "$bin" ]; then
                        run unit "$label" "$bin"
                else
                        missing unit "$label" "$bin"
                fi
        done
done

# 2. End-to-end scripts.
for script in tests/e2e/test_*.sh; do
        [ -e "$script" ] || continue
        name=$(basename "$script" .sh)
        [[ $name == *"$FILTER"* ]] || continue
        run e2e "$name" bash "$script"
done

END=$(date +%s%N)
ms=$(((END - START) / 1000000))
printf 'time: %d.%03ds\n' $((ms / 1000)) $((ms % 1000))
if [ $((PASSED + FAILED)) -eq 0 ]; then
        if [ "$RAN" -gt 0 ]; then
                echo "run-all: no tests ran ($RAN binaries/scripts ran but reported no tests)"
        elif [ -n "$FILTER" ]; then
                echo "run-all: no tests ran (nothing matches '$FILTER')"
        else
                echo "run-all: no tests ran (no unit tests or e2e scripts found)"
        fi
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ $((PASSED + FAILED)) -gt 0 ]
