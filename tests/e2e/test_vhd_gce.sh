#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of the vhd and gce outputs: `kiln build` of the minimal
# example with outputs [raw, vhd, dynamic vhd, gce] gives VHDs that
# qemu-img reads as vpc (`qemu-img check` does not support vpc) and
# compares identical to the raw, and a GCE .tar.gz that gzip -t accepts and
# GNU tar lists and extracts to the raw with zeros up to the GiB. All are
# listed in SHA256SUMS and both manifests, bit-identical in two runs, and a
# killed write leaves nothing under the final names; peak RSS is reported.
# The fixed VHD (as vpc) and the archive's disk.raw boot under QEMU (TCG)
# to a login prompt. Needs root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_vhd_gce: needs root"
        echo "0 passed, 1 failed"
        exit 1
fi
for t in qemu-img tar gzip zcat sha256sum; do
        command -v $t >/dev/null || { echo "test_vhd_gce: needs $t"; echo "0 passed, 1 failed"; exit 1; }
done

# The tree is the run's shared build of the minimal example; the images
# are assembled here from a copy of its spec with other outputs.
e2e_minimal_build || { echo "FAIL minimal-build"; echo "0 passed, 1 failed"; exit 1; }
export KILN_CACHE_DIR=$E2E_MIN_CACHE
WORK=$E2E_MIN_WORK
OUT=$(mktemp -d /var/tmp/kiln-e2e-vhd-gce.XXXXXX)
e2e_cleanup_add "$OUT"
SPEC=$OUT/kiln.yaml
DYN_SPEC=$OUT/dynamic/kiln.yaml
BOOT=tests/e2e/boot-check.sh
mkdir -p "$OUT/dynamic"
# write_spec OUTPUTS DEST — the minimal example with these outputs
write_spec() {
        python3 - examples/minimal/kiln.yaml "$2" "$1" <<'EOF'
import sys
text = open(sys.argv[1]).read()
old = "    outputs: [raw, qcow2]\n"
assert old in text
open(sys.argv[2], "w").write(text.replace(old, "    outputs: %s\n" % sys.argv[3]))
EOF
}
write_spec "[raw, vhd, gce]" "$SPEC"
write_spec "[{format: vhd, vhd: {subformat: dynamic}}]" "$DYN_SPEC"
D=$OUT/minimal

kb() { "$KILN" build --work-dir "$WORK" "$@"; }

t_build_vhd_and_gce() {
        assert_exit 0 /usr/bin/time -f "peak-rss-kib %M" "$KILN" build --work-dir "$WORK" --output-dir "$OUT" "$SPEC" || return 1
        local rss
        rss=$(sed -n 's/^peak-rss-kib //p' "$T_ERR")
        echo "kiln build (assembly, raw, vhd and gce of the 2 GiB image): peak RSS $((rss / 1024)) MiB"
        [ "$rss" -lt $((128 * 1024)) ] || { echo "peak RSS $rss KiB is over 128 MiB"; return 1; }
        for f in minimal.raw minimal.vhd minimal.tar.gz; do
                [ -f "$D/$f" ] || { ls -la "$D"; return 1; }
        done
        # the VHD, as qemu-img sees it: vpc, the raw's size, the raw's bytes
        assert_exit 0 qemu-img info -f vpc --output=json "$D/minimal.vhd" || return 1
        assert_eq "vpc $(stat -c %s "$D/minimal.raw")" "$(python3 -c '
import json,sys; j=json.load(open(sys.argv[1])); print(j["format"], j["virtual-size"])' "$T_OUT")" || return 1
        assert_exit 0 qemu-img compare -f raw -F vpc "$D/minimal.raw" "$D/minimal.vhd" || return 1
        assert_contains "$(cat "$T_OUT")" "Images are identical" || return 1
        # the footer: the last 512 bytes of the file start with conectix
        assert_eq "conectix" "$(tail -c 512 "$D/minimal.vhd" | head -c 8)" || return 1
        # checksums and manifests list every artifact
        (cd "$D" && sha256sum -c SHA256SUMS) >"$T_TMP/sums" 2>&1 || { cat "$T_TMP/sums"; return 1; }
        assert_eq "minimal.raw: OK minimal.vhd: OK minimal.tar.gz: OK" "$(tr '\n' ' ' <"$T_TMP/sums" | sed 's/ $//')" || return 1
        assert_eq "raw vhd gce" "$(python3 -c '
import json,sys; m=json.load(open(sys.argv[1]))
print(" ".join(a["format"] for a in m["artifacts"]))' "$D/kiln-manifest.json")" || return 1
        assert_eq "minimal.raw minimal.vhd minimal.tar.gz" "$(python3 -c '
import json,os,sys; m=json.load(open(sys.argv[1])); b=m["builds"][-1]
print(" ".join(os.path.basename(f["name"]) for f in b["files"]))' "$OUT/packer-manifest.json")" || return 1
}
run_test build-vhd-and-gce t_build_vhd_and_gce

t_dynamic_vhd() {
        assert_exit 0 kb --output-dir "$OUT/dynamic" "$DYN_SPEC" || return 1
        local v=$OUT/dynamic/minimal/minimal.vhd
        assert_exit 0 qemu-img info -f vpc "$v" || return 1
        assert_exit 0 qemu-img compare -f raw -F vpc "$D/minimal.raw" "$v" || return 1
        assert_contains "$(cat "$T_OUT")" "Images are identical" || return 1
        # dynamic: the footer's copy first, and far smaller than the disk
        assert_eq "conectix" "$(head -c 8 "$v")" || return 1
        [ "$(stat -c %s "$v")" -lt $(($(stat -c %s "$D/minimal.raw") / 2)) ] || { ls -la "$v"; return 1; }
}
run_test dynamic-vhd t_dynamic_vhd

t_gce_archive() {
        local x=$T_TMP/x
        mkdir "$x"
        assert_exit 0 gzip -t "$D/minimal.tar.gz" || return 1
        assert_eq "disk.raw" "$(zcat "$D/minimal.tar.gz" | tar -t)" || return 1
        assert_exit 0 tar -tvzf "$D/minimal.tar.gz" || return 1
        assert_contains "$(cat "$T_OUT")" "root/root" || return 1
        assert_exit 0 tar -C "$x" -xzSf "$D/minimal.tar.gz" || return 1
        local size gib
        size=$(stat -c %s "$D/minimal.raw")
        gib=$(((size + (1 << 30) - 1) / (1 << 30) * (1 << 30)))
        assert_eq "$gib" "$(stat -c %s "$x/disk.raw")" "disk.raw's size: a whole GiB" || return 1
        cmp -n "$size" "$D/minimal.raw" "$x/disk.raw" || return 1
        # past the raw's end (nothing when it is a whole GiB): zeros
        cmp -i "$size" -n $((gib - size)) "$x/disk.raw" /dev/zero || return 1
        # compressed like gzip does (within 5 % of gzip -6 on the same tar)
        local ours theirs
        ours=$(stat -c %s "$D/minimal.tar.gz")
        theirs=$(zcat "$D/minimal.tar.gz" | gzip -6 | wc -c)
        echo "gce: $ours bytes, gzip -6 of the same tar: $theirs bytes"
        [ "$ours" -lt $((theirs + theirs / 20)) ] || { echo "over 5 % larger than gzip -6"; return 1; }
}
run_test gce-archive t_gce_archive

t_bit_identical_in_two_runs() {
        local out2=$T_TMP/out2
        # The same cached tree assembled again into a new directory (--force
        # would rebuild the tree: a new cache entry, a new image epoch; full
        # reproducibility from scratch is issue 19).
        assert_exit 0 kb --output-dir "$out2" "$SPEC" || return 1
        for f in minimal.vhd minimal.tar.gz; do
                cmp "$D/$f" "$out2/minimal/$f" || return 1
        done
}
run_test bit-identical-in-two-runs t_bit_identical_in_two_runs

t_killed_write_leaves_no_final_files() {
        local out3=$T_TMP/out3
        "$KILN" build --work-dir "$WORK" --output-dir "$out3" "$SPEC" >"$T_TMP/log" 2>&1 &
        local pid=$! deadline=$((SECONDS + 300))
        # wait until the archive is being written in the temporary folder
        until ls "$out3"/.minimal.tmp-*/minimal.tar.gz >/dev/null 2>&1; do
                kill -0 $pid 2>/dev/null || { echo "build ended before the archive was written"; cat "$T_TMP/log"; return 1; }
                [ $SECONDS -lt $deadline ] || { kill -9 $pid; echo "the archive never started"; return 1; }
                sleep 0.02
        done
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        for f in minimal.raw minimal.vhd minimal.tar.gz SHA256SUMS kiln-manifest.json; do
                [ ! -e "$out3/minimal/$f" ] || { echo "final name $f exists after kill"; ls -la "$out3/minimal"; return 1; }
        done
        local gone=$((SECONDS + 20))
        while grep -qh "$WORK" /proc/[0-9]*/mountinfo 2>/dev/null && [ $SECONDS -lt $gone ]; do
                sleep 0.1
        done
        assert_exit 0 kb --output-dir "$out3" "$SPEC" || return 1
        [ -z "$(ls -d "$out3"/.minimal.tmp-* 2>/dev/null)" ] || { echo "stale temporary folder"; return 1; }
        (cd "$out3/minimal" && sha256sum -c --quiet SHA256SUMS) || return 1
}
run_test killed-write-leaves-no-final-files t_killed_write_leaves_no_final_files

# One boot each (TCG: minutes): the fixed VHD through QEMU's vpc driver
# with SeaBIOS, the archive's disk.raw with OVMF.
t_boot_vhd_bios() {
        assert_exit 0 bash "$BOOT" --format vpc "$D/minimal.vhd" bios || { cat "$T_OUT" "$T_ERR"; return 1; }
}
run_test boot-vhd-seabios t_boot_vhd_bios

t_boot_gce_disk_uefi() {
        assert_exit 0 tar -C "$T_TMP" -xzSf "$D/minimal.tar.gz" disk.raw || return 1
        assert_exit 0 bash "$BOOT" "$T_TMP/disk.raw" uefi || { cat "$T_OUT" "$T_ERR"; return 1; }
}
run_test boot-gce-disk-ovmf t_boot_gce_disk_uefi

e2e_summary
