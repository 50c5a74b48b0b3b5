#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of image assembly: `kiln build` of the minimal example
# gives raw and qcow2 images that qemu-img accepts and that boot under QEMU
# (TCG) with SeaBIOS and with OVMF to a login prompt. Needs root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_image: needs root"
        echo "0 passed, 1 failed"
        exit 1
fi

# The tree comes from the run's shared build of the minimal example (its
# step cache and work dir); the images are assembled here into a private
# output folder, so assembly itself is tested from scratch.
e2e_minimal_build || { echo "FAIL minimal-build"; echo "0 passed, 1 failed"; exit 1; }
export KILN_CACHE_DIR=$E2E_MIN_CACHE
WORK=$E2E_MIN_WORK
OUT=$(mktemp -d /var/tmp/kiln-e2e-image.XXXXXX)
e2e_cleanup_add "$OUT"
SPEC=examples/minimal/kiln.yaml
BOOT=tests/e2e/boot-check.sh

kb() { "$KILN" build --work-dir "$WORK" --output-dir "$OUT" "$@"; }

t_build_raw_and_qcow2() {
        assert_exit 0 kb "$SPEC" || return 1
        assert_contains "$(cat "$T_OUT")" "disk assembled" || return 1
        [ -f "$OUT/minimal/minimal.raw" ] && [ -f "$OUT/minimal/minimal.qcow2" ] || { ls -la "$OUT/minimal"; return 1; }
        # the raw image is sparse: far less on disk than its size
        local alloc size
        alloc=$(du -k "$OUT/minimal/minimal.raw" | cut -f1)
        size=$(($(stat -c %s "$OUT/minimal/minimal.raw") / 1024))
        [ "$alloc" -lt $((size / 2)) ] || { echo "raw not sparse: $alloc KiB of $size KiB"; return 1; }
        assert_exit 0 qemu-img check "$OUT/minimal/minimal.qcow2" || return 1
        assert_exit 0 qemu-img compare -f raw -F qcow2 "$OUT/minimal/minimal.raw" "$OUT/minimal/minimal.qcow2" || return 1
        assert_contains "$(cat "$T_OUT")" "Images are identical" || return 1
        (cd "$OUT/minimal" && sha256sum -c SHA256SUMS) >"$T_TMP/sums" 2>&1 || { cat "$T_TMP/sums"; return 1; }
        # the GPT: three partitions with the documented types
        assert_exit 0 sfdisk --json "$OUT/minimal/minimal.raw" || return 1
        assert_eq "21686148-6449-6E6F-744E-656564454649 C12A7328-F81F-11D2-BA4B-00A0C93EC93B 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" \
                "$(python3 -c 'import json,sys; print(" ".join(p["type"] for p in json.load(open(sys.argv[1]))["partitiontable"]["partitions"]))' "$T_OUT")" || return 1
        # manifests: Packer's and kiln's
        assert_eq "minimal kiln 2" "$(python3 -c '
import json,sys; m=json.load(open(sys.argv[1])); b=m["builds"][-1]
assert m["last_run_uuid"] == b["packer_run_uuid"]
print(b["name"], b["builder_type"], len(b["files"]))' "$OUT/packer-manifest.json")" || return 1
        assert_eq "True True True" "$(python3 -c '
import json,sys; m=json.load(open(sys.argv[1]))
print(len(m["packages"]) > 100, len(m["disk"]["partitions"]) == 3, all(len(a["sha256"]) == 64 for a in m["artifacts"]))' "$OUT/minimal/kiln-manifest.json")" || return 1
}
run_test build-raw-and-qcow2 t_build_raw_and_qcow2

t_boot_raw_bios() { assert_exit 0 bash "$BOOT" "$OUT/minimal/minimal.raw" bios || return 1; }
run_test boot-raw-seabios t_boot_raw_bios

t_boot_raw_uefi() { assert_exit 0 bash "$BOOT" "$OUT/minimal/minimal.raw" uefi || return 1; }
run_test boot-raw-ovmf t_boot_raw_uefi

# The qcow2 boots with both firmwares in test_boot.sh (kiln boot).

t_nothing_changed_nothing_assembled() {
        local before
        before=$(stat -c %Y.%i "$OUT/minimal/minimal.qcow2")
        assert_exit 0 kb "$SPEC" || return 1
        assert_contains "$(cat "$T_OUT")" "up to date" || return 1
        assert_not_contains "$(cat "$T_OUT")" "disk assembled" || return 1
        assert_eq "$before" "$(stat -c %Y.%i "$OUT/minimal/minimal.qcow2")" || return 1
}
run_test nothing-changed-nothing-assembled t_nothing_changed_nothing_assembled

t_killed_assembly_leaves_no_final_files() {
        local out2=$T_TMP/out
        "$KILN" build --work-dir "$WORK" --output-dir "$out2" "$SPEC" >"$T_TMP/log" 2>&1 &
        local pid=$! deadline=$((SECONDS + 300))
        # wait for assembly to start: its temporary folder appears
        until ls -d "$out2"/.minimal.tmp-* >/dev/null 2>&1; do
                [ $SECONDS -lt $deadline ] || { kill -9 $pid; echo "assembly never started"; cat "$T_TMP/log"; return 1; }
                sleep 0.05
        done
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        [ ! -e "$out2/minimal/minimal.raw" ] && [ ! -e "$out2/minimal/minimal.qcow2" ] && [ ! -e "$out2/minimal/kiln-manifest.json" ] \
                || { echo "final names exist after kill:"; ls -la "$out2/minimal"; return 1; }
        # and nothing stays mounted: the sandbox's processes die by
        # PDEATHSIG, asynchronously after kiln — wait for that, bounded
        local gone=$((SECONDS + 20))
        while grep -qh "$WORK" /proc/[0-9]*/mountinfo 2>/dev/null && [ $SECONDS -lt $gone ]; do
                sleep 0.1
        done
        assert_eq "" "$(grep -h "$WORK" /proc/[0-9]*/mountinfo 2>/dev/null | head -3)" || return 1
        # the next run cleans up and completes
        assert_exit 0 "$KILN" build --work-dir "$WORK" --output-dir "$out2" "$SPEC" || return 1
        [ -z "$(ls -d "$out2"/.minimal.tmp-* 2>/dev/null)" ] || { echo "stale temporary folder"; return 1; }
        (cd "$out2/minimal" && sha256sum -c --quiet SHA256SUMS) || return 1
}
run_test killed-assembly-leaves-no-final-files t_killed_assembly_leaves_no_final_files

e2e_summary
