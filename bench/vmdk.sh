#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vmdk.sh — kiln's streamOptimized VMDK and OVA writers (src/image/vmdk.c,
# ova.c) against what a script would do without kiln:
#
#     bench/vmdk.sh [RAW-IMAGE]
#
#   vmdk  kiln vmdk (all cores)  vs  qemu-img convert -O vmdk
#                                    -o subformat=streamOptimized
#   ova   kiln ova               vs  qemu-img (as above) + sha256sum + a
#                                    generated .ovf + .mf + tar
#
# Each pair runs interleaved (bench/lib.sh: kiln, other, kiln, other, ...
# PAIRS rounds, default 3, after WARMUP untimed rounds, default 1) with the
# input in the page cache and `sync` before every run (untimed); per side
# the median and spread of the wall time, CPU time, peak RSS and output
# size, the ratios of medians to kiln's side, and the load beside each run.
# Every kiln VMDK is also checked with qemu-img check + compare (untimed).
#
# RAW-IMAGE defaults to an image made here: SIZE_MIB (default 2048) with
# ~250 MiB of /usr per GiB at random 4 MiB slots. Goal (issue 13): vmdk
# >= 5x faster than qemu-img on 2 cores, size within 5%. Work space: a temp
# dir under BENCH_DIR (default /var/tmp), removed at the end. Compiles
# bench/qcow2-driver.c with the writer sources directly (no Makefile).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PAIRS=${PAIRS:-3}
SIZE_MIB=${SIZE_MIB:-2048}

for t in qemu-img gcc sha256sum tar /usr/bin/time; do command -v "$t" >/dev/null || bench_die "missing $t"; done
bench_init vmdk
WORK=$BENCH_TMP

if [ $# -ge 1 ]; then
        RAW=$1
        [ -f "$RAW" ] || bench_die "$RAW: no such file"
else
        RAW=$WORK/test.raw
        bench_make_raw "$RAW" "$SIZE_MIB" $((SIZE_MIB * 250 / 1024))
fi
bench_image_driver "$WORK/driver"

# the script's OVA: what people do without kiln
cat >"$WORK/script-ova.sh" <<'OVA'
#!/bin/sh
# script-ova.sh RAW OUT.ova — qemu-img, sha256sum, a one-disk .ovf, tar
set -eu
d=$(mktemp -d "$(dirname "$2")/s.XXXXXX")
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$1" "$d/disk-disk1.vmdk"
size=$(stat -c %s "$d/disk-disk1.vmdk")
cap=$(stat -c %s "$1")
cat >"$d/disk.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="disk-disk1.vmdk" ovf:id="file1" ovf:size="$size"/></References>
  <DiskSection><Info>disk</Info><Disk ovf:capacity="$cap" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
  <VirtualSystem ovf:id="disk"><Info>vm</Info></VirtualSystem>
</Envelope>
OVF
(cd "$d" && for f in disk.ovf disk-disk1.vmdk; do echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"; done >disk.mf)
tar -C "$d" -cf "$2" disk.ovf disk.mf disk-disk1.vmdk
rm -rf "$d"
OVA
chmod +x "$WORK/script-ova.sh"

# every side writes one file, removed and synced before its run (untimed)
prepare() { rm -f "$1" && sync; }
prepare_kiln-vmdk() { prepare "$WORK/k.vmdk"; }
prepare_qemu-vmdk() { prepare "$WORK/q.vmdk"; }
prepare_kiln-ova() { prepare "$WORK/k.ova"; }
prepare_script-ova() { prepare "$WORK/s.ova"; }
run_kiln-vmdk() { bench_measure "$WORK/k.vmdk" "$WORK/driver" "$RAW" "$WORK/k.vmdk" vmdk none none 0 sha256; }
run_qemu-vmdk() {
        bench_measure "$WORK/q.vmdk" qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$RAW" "$WORK/q.vmdk"
}
run_kiln-ova() { bench_measure "$WORK/k.ova" "$WORK/driver" "$RAW" "$WORK/k.ova" ova none none 0 sha256; }
run_script-ova() { bench_measure "$WORK/s.ova" "$WORK/script-ova.sh" "$RAW" "$WORK/s.ova"; }

cat "$RAW" >/dev/null
echo "input: $RAW ($(($(stat -c %s "$RAW") >> 20)) MiB, $(($(du -k "$RAW" | cut -f1) >> 10)) MiB allocated); $(nproc) CPUs" >&2
bench_rounds "$PAIRS" kiln-vmdk qemu-vmdk
if ! qemu-img check -q "$WORK/k.vmdk" || ! qemu-img compare -q -f raw -F vmdk "$RAW" "$WORK/k.vmdk"; then
        bench_die "kiln's vmdk does not check or compare"
fi
bench_rounds "$PAIRS" kiln-ova script-ova

bench_table kiln-vmdk kiln-vmdk qemu-vmdk
bench_table kiln-ova kiln-ova script-ova
m() { bench_median "$@"; }
echo
echo "ratios of medians (goal, issue 13: vmdk >= 5x faster than qemu-img, size within 5 %):"
echo "  vmdk: qemu-img / kiln wall = $(bench_ratio "$(m qemu-vmdk wall)" "$(m kiln-vmdk wall)") (goal >= 5)," \
        "cpu = $(bench_ratio "$(m qemu-vmdk cpu)" "$(m kiln-vmdk cpu)");" \
        "size kiln / qemu-img = $(bench_ratio "$(m kiln-vmdk size_b)" "$(m qemu-vmdk size_b)") (goal <= 1.05)"
echo "  ova: script / kiln wall = $(bench_ratio "$(m script-ova wall)" "$(m kiln-ova wall)")," \
        "cpu = $(bench_ratio "$(m script-ova cpu)" "$(m kiln-ova cpu)");" \
        "size kiln / script = $(bench_ratio "$(m kiln-ova size_b)" "$(m script-ova size_b)")"
bench_caveat "kiln computes the SHA-256 of what it writes (as a build does); qemu-img does not (the"
bench_caveat "  OVA script runs sha256sum on the .ovf and .vmdk, for its manifest)"
bench_caveat "kiln's driver uses every CPU; qemu-img convert runs with its defaults (no -W)"
bench_footer kiln-vmdk qemu-vmdk kiln-ova script-ova
