#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/cold-vs-mkosi.sh — a whole cold build of the minimal example (root
# tree + bootable disk + raw and qcow2) by kiln, against mkosi 14 building
# its closest equivalent (Debian bookworm, cloud kernel, openssh-server,
# bootable GPT/ext4 raw image) in the same run. The mkosi side is
# ../shared/anchors/mkosi/run.sh (it installs mkosi and carries the
# workarounds this machine kind needs). A second kiln build of
# bench/specs/mkosi-equivalent.yaml (mkosi's package set, no cloud-init)
# compares like with like. Prints the times and the ratios.
# Needs root. Not a test: nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-./build/kiln}
[ -x "$KILN" ] || make -s all
ANCHOR=${MKOSI_ANCHOR:-../shared/anchors/mkosi/run.sh}
[ -x "$ANCHOR" ] || [ -f "$ANCHOR" ] || { echo "no mkosi anchor at $ANCHOR" >&2; exit 2; }
T=$(mktemp -d /var/tmp/kiln-bench-mkosi.XXXXXX)
trap 'rm -rf "$T"' EXIT

t0=$EPOCHREALTIME
"$KILN" build --cache-dir "$T/kiln-cache" --work-dir "$T/kiln-work" --output-dir "$T/kiln-out" \
        --no-store examples/minimal/kiln.yaml >"$T/kiln.log" 2>&1 || { cat "$T/kiln.log"; exit 1; }
t1=$EPOCHREALTIME
# The same, for a spec with mkosi's package set (no cloud-init): like for like.
"$KILN" build --cache-dir "$T/kiln-cache2" --work-dir "$T/kiln-work2" --output-dir "$T/kiln-out2" \
        --no-store bench/specs/mkosi-equivalent.yaml >"$T/kiln2.log" 2>&1 || { cat "$T/kiln2.log"; exit 1; }
t1b=$EPOCHREALTIME

# mkosi installs itself on first use; do that outside the timed run
bash "$ANCHOR" "$T/mkosi-warmup" cold >/dev/null 2>&1 || true
rm -rf "$T/mkosi-warmup"
t2=$EPOCHREALTIME
bash "$ANCHOR" "$T/mkosi" cold >"$T/mkosi.log" 2>&1 || { tail -30 "$T/mkosi.log"; exit 1; }
t3=$EPOCHREALTIME

python3 - "$t0" "$t1" "$t1b" "$t2" "$t3" <<'PY'
import sys
t0, t1, t1b, t2, t3 = map(float, sys.argv[1:])
kiln, kiln2, mkosi = t1 - t0, t1b - t1, t3 - t2
print(f"{'':48s} seconds")
print(f"{'kiln build examples/minimal (with cloud-init)':48s} {kiln:8.1f}")
print(f"{'kiln build, mkosi package set (no cloud-init)':48s} {kiln2:8.1f}")
print(f"{'mkosi 14 -f build (gpt_ext4), cold':48s} {mkosi:8.1f}")
print(f"\nratio kiln minimal / mkosi = {kiln / mkosi:.2f}")
print(f"ratio kiln same packages / mkosi = {kiln2 / mkosi:.2f}")
PY
du -sh "$T/kiln-out/minimal/minimal.raw" "$T/mkosi/image.raw" 2>/dev/null || true
