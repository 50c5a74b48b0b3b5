#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The main job, run by `make demo` after dependencies are installed and kiln
# is built: validate and inspect the default example, build its tree and
# disk images (twice: the second time everything comes from the cache),
# check the images with qemu-img and sha256sum, and boot the raw image under
# QEMU until the login prompt. (`kiln boot` replaces the boot script later.)
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

step "Building $SPEC: root tree, then disk images (cached: a second run is instant)"
"$KILN" build "$SPEC"

step "Building it again: every step is a cache hit, the image is up to date"
"$KILN" build --explain "$SPEC"

step "Checking the images"
qemu-img check output/minimal/minimal.qcow2
qemu-img compare -f raw -F qcow2 output/minimal/minimal.raw output/minimal/minimal.qcow2
(cd output/minimal && sha256sum -c SHA256SUMS)

step "Booting output/minimal/minimal.raw under QEMU (TCG, SeaBIOS) until the login prompt"
bash tests/e2e/boot-check.sh output/minimal/minimal.raw bios

cat <<MSG

Done: the default example was validated, built (tree and images), checked
and booted:
$(ls -l output/minimal/)
(record: .kiln/build/minimal/record.json, manifest: output/minimal/kiln-manifest.json)
MSG
