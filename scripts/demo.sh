#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The main job, run by `make demo` after dependencies are installed and kiln
# is built: validate and inspect the default example, then show what kiln
# found. Later issues extend this to build and boot-check the image.
set -euo pipefail
cd "$(dirname "$0")/.."

KILN=${KILN:-./build/kiln}
SPEC=${1:-examples/minimal/kiln.yaml}

step() { printf '\n==> %s\n' "$*"; }

step "kiln $("$KILN" --version | cut -d' ' -f2): validating $SPEC"
"$KILN" validate "$SPEC"

step "Expanded builds of $SPEC"
"$KILN" inspect "$SPEC"

step "Every example"
for spec in examples/*/kiln.yaml; do
        args=()
        [ -f "$spec.args" ] && mapfile -t args <"$spec.args"
        "$KILN" validate "${args[@]}" "$spec"
done

cat <<MSG

Done. The default example is valid and expanded above.
Building, assembling and boot-checking images land with the build engine,
image assembly and validation issues; this demo grows with them.
MSG
