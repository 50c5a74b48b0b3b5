#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The include-layer rule (scripts/check-layers.sh): src/ passes it, and the
# checker itself catches an include that points up a layer or into a folder
# that has no layer.
. "$(dirname "$0")/lib.sh"

t_tree_passes() {
        assert_exit 0 scripts/check-layers.sh src || return 1
        assert_contains "$(<"$T_OUT")" "layers ok" || return 1
}
run_test source-tree-includes-point-down t_tree_passes

t_upward_include_fails() {
        mkdir -p "$T_TMP/src/base" "$T_TMP/src/spec" "$T_TMP/src/cli"
        echo '#include "base/util.h"' >"$T_TMP/src/spec/ok.c"
        echo '#include "spec/spec.h"' >"$T_TMP/src/cli/ok.c"
        assert_exit 0 scripts/check-layers.sh "$T_TMP/src" || return 1
        printf '/* x */\n#include "spec/spec.h"\n' >"$T_TMP/src/base/up.c"
        assert_exit 1 scripts/check-layers.sh "$T_TMP/src" || return 1
        assert_contains "$(<"$T_OUT")" "src/base/up.c:2: base (layer 0) includes spec/" || return 1
}
run_test upward-include-is-refused t_upward_include_fails

t_unknown_folder_fails() {
        mkdir -p "$T_TMP/src/gadgets"
        echo '#include "base/util.h"' >"$T_TMP/src/gadgets/g.c"
        assert_exit 1 scripts/check-layers.sh "$T_TMP/src" || return 1
        assert_contains "$(<"$T_OUT")" "folder 'gadgets' has no layer" || return 1
}
run_test folder-without-layer-is-refused t_unknown_folder_fails

e2e_summary
