#!/usr/bin/env bash
# shellcheck disable=SC2317 # test functions are called indirectly, via run_test
# SPDX-License-Identifier: Apache-2.0
#
# test_golden.sh — golden tests for `kiln validate`.
#
#   golden/NAME   tests/specs/bad/NAME.yaml (or .json) must fail validation:
#                 `$KILN validate [ARGS...] tests/specs/bad/NAME.yaml` with
#                 NO_COLOR=1 must write exactly NAME.err to stderr (byte for
#                 byte) and exit with the code in NAME.exit (default 2).
#                 ARGS come from NAME.args, one per line (optional; blank
#                 lines are skipped).
#   good/NAME     tests/specs/good/NAME.yaml (or .json) must validate (exit 0),
#                 with extra arguments from NAME.args if present.
#   example/DIR/FILE
#                 every examples/DIR/FILE (.yaml/.json) that is a spec (has a
#                 top-level `builds` key) must validate (exit 0), with extra
#                 arguments from DIR/NAME.args or DIR/FILE.args if present.
#
# Regenerating goldens after an intended message change:
#
#     KILN_UPDATE_GOLDEN=1 bash tests/e2e/test_golden.sh
#
# writes the actual stderr to each NAME.err (exit codes are still checked);
# review the result with `git diff tests/specs/bad`.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UPDATE=${KILN_UPDATE_GOLDEN:-0}
[ "$UPDATE" = 1 ] && echo "note: KILN_UPDATE_GOLDEN=1: rewriting tests/specs/bad/*.err from actual output"

# sorted_files PATTERN... — existing files matching the globs, byte-sorted.
sorted_files() {
        local f
        for f in "$@"; do [ -f "$f" ] && printf '%s\n' "$f"; done | LC_ALL=C sort
}

# read_args FILE — fill the array ARGS from FILE (one argument per line).
read_args() {
        ARGS=()
        [ -f "$1" ] || return 0
        local line
        while IFS= read -r line || [ -n "$line" ]; do
                [ -n "$line" ] && ARGS+=("$line")
        done <"$1"
}

t_bad() {
        local spec=$1 stem=${1%.*} want=2 rc=0
        [ -f "$stem.exit" ] && want=$(tr -d '[:space:]' <"$stem.exit")
        read_args "$stem.args"
        NO_COLOR=1 "$KILN" validate "${ARGS[@]}" "$spec" >"$T_TMP/stdout" 2>"$T_TMP/stderr" || rc=$?
        if [ "$UPDATE" = 1 ]; then
                cp "$T_TMP/stderr" "$stem.err"
        elif [ ! -f "$stem.err" ]; then
                t_fail "missing $stem.err (create it with KILN_UPDATE_GOLDEN=1)"
                cat "$T_TMP/stderr"
                return 1
        else
                assert_file_eq "$stem.err" "$T_TMP/stderr" || return 1
        fi
        assert_eq "$want" "$rc" "exit code of kiln validate $spec" || return 1
}

t_valid() {
        local spec=$1 argfile=$2 rc=0
        read_args "$argfile"
        [ "${#ARGS[@]}" -eq 0 ] && [ -n "${3:-}" ] && read_args "$3"
        NO_COLOR=1 "$KILN" validate "${ARGS[@]}" "$spec" >"$T_TMP/stdout" 2>"$T_TMP/stderr" || rc=$?
        [ "$rc" -eq 0 ] && return 0
        t_fail "kiln validate ${ARGS[*]}${ARGS[*]:+ }$spec: exit $rc, expected 0; stderr:"
        cat "$T_TMP/stderr"
        return 1
}

is_spec() {
        case "$1" in
        *.json) grep -q '"builds"[[:space:]]*:' "$1" ;;
        *) grep -q '^builds:' "$1" ;;
        esac
}

if [ ! -x "$KILN" ]; then
        run_test "golden/kiln-binary" t_fail "kiln binary not found: $KILN (run make first)"
        e2e_summary
fi

while IFS= read -r f; do
        n=${f##*/}
        run_test "golden/${n%.*}" t_bad "$f"
done < <(sorted_files tests/specs/bad/*.yaml tests/specs/bad/*.json)

while IFS= read -r f; do
        n=${f##*/}
        run_test "good/${n%.*}" t_valid "$f" "${f%.*}.args"
done < <(sorted_files tests/specs/good/*.yaml tests/specs/good/*.json)

while IFS= read -r f; do
        is_spec "$f" || continue
        run_test "example/${f#examples/}" t_valid "$f" "${f%.*}.args" "$f.args"
done < <(sorted_files examples/*/*.yaml examples/*/*.json)

e2e_summary
