#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The main job, run by `make demo` after dependencies are installed and kiln
# is built: validate and inspect the default example, build its tree and
# disk images (twice: the second time everything comes from the cache),
# check the images with qemu-img and sha256sum, and boot the qcow2 image with
# `kiln boot` (QEMU, cloud-init seed, SSH) to run a command in it. Ends with a
# summary: images, sizes, checksums and the time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

KILN=${KILN:-./build/kiln}
SPEC=${1:-examples/minimal/kiln.yaml}

PHASES=()
LAST=$EPOCHREALTIME
step() {
        phase_done
        PHASE=$1
        printf '\n==> %s\n' "$*"
}
# records the time of the phase that just ended
phase_done() {
        local now=$EPOCHREALTIME
        [ -z "${PHASE:-}" ] ||
                PHASES+=("$(awk -v a="$now" -v b="$LAST" -v p="${PHASE:0:90}" 'BEGIN { printf "%7.1f s  %s", a - b, p }')")
        LAST=$now
}

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

step "Building $SPEC: root tree, then disk images"
"$KILN" build "$SPEC"

step "Building it again: every step is a cache hit, the image is up to date"
"$KILN" build --explain "$SPEC"

step "Checking the images"
qemu-img check output/minimal/minimal.qcow2
qemu-img compare -f raw -F qcow2 output/minimal/minimal.raw output/minimal/minimal.qcow2
(cd output/minimal && sha256sum -c SHA256SUMS)

step "Booting output/minimal/minimal.qcow2: kiln boot, then a command over SSH"
# shellcheck disable=SC2016 # the command runs in the guest
"$KILN" boot output/minimal/minimal.qcow2 \
        --run 'systemctl is-system-running --wait; echo "hostname: $(hostname)"; uname -sr; df -h / | tail -1'
phase_done

echo
echo "Done: the default example was validated, built (tree and images), checked and booted."
echo
echo "Images (output/minimal/):"
for f in output/minimal/minimal.raw output/minimal/minimal.qcow2; do
        printf '  %-30s %9s apparent, %9s on disk  sha256 %s\n' "$f" \
                "$(du -h --apparent-size "$f" | cut -f1)" "$(du -h "$f" | cut -f1)" \
                "$(grep " ${f##*/}\$" output/minimal/SHA256SUMS | cut -c1-16)"
done
echo "  (record: .kiln/build/minimal/record.json, manifest: output/minimal/kiln-manifest.json)"
echo
echo "Time per phase:"
printf '  %s\n' "${PHASES[@]}"
