#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vhd-gce.sh — kiln's vhd and gce writers (src/image/vhd.c, gce.c) against
# the commands people use without kiln:
#
#     bench/vhd-gce.sh [RAW-IMAGE]
#
#   vhd  kiln vhd (fixed)             vs  qemu-img convert -O vpc
#                                         -o subformat=fixed,force_size
#   gce  kiln gce (all cores)         vs  tar --format=oldgnu -Sczf
#                                     vs  tar --format=oldgnu -Scf - | pigz
#
# Each comparison runs interleaved (bench/lib.sh: kiln, other, kiln, other,
# ... PAIRS rounds, default 3, after WARMUP untimed rounds, default 1) with
# the input in the page cache and `sync` before every run (untimed); per
# side the median and spread of the wall time, CPU time, peak RSS and
# output size, the ratios of medians to kiln's side, and the load beside
# each run. kiln computes the SHA-256 of what it writes (as a build does;
# for the VHD that is the whole disk, the holes' zeros included), the
# others do not: the VHD is also timed without it. BENCH_ONLY=vhd or gce
# runs one half. The kiln outputs are checked (untimed): qemu-img compare
# for the VHD, gzip -t and tar -t for the archive.
#
# RAW-IMAGE defaults to an image made here: SIZE_MIB (default 2048) with
# ~250 MiB of /usr per GiB at random 4 MiB slots. Goal (issue 13): gce
# faster than tar | pigz at a size within 5 %. Work space: a temp dir under
# BENCH_DIR (default /var/tmp), removed at the end. Compiles
# bench/qcow2-driver.c with the writer sources directly (no Makefile).
# Needs pigz (scripts/install-deps.sh lists it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PAIRS=${PAIRS:-3}
SIZE_MIB=${SIZE_MIB:-2048}
ONLY=${BENCH_ONLY:-}

for t in qemu-img gcc tar gzip pigz /usr/bin/time; do command -v "$t" >/dev/null || bench_die "missing $t"; done
bench_init vhd-gce
WORK=$BENCH_TMP

# tar stores the file under its own name: the input is WORK/disk.raw
RAW=$WORK/disk.raw
if [ $# -ge 1 ]; then
        [ -f "$1" ] || bench_die "$1: no such file"
        ln "$1" "$RAW" 2>/dev/null || cp --sparse=always "$1" "$RAW"
else
        bench_make_raw "$RAW" "$SIZE_MIB" $((SIZE_MIB * 250 / 1024))
fi
bench_image_driver "$WORK/driver"

# the GNU tar + pigz pipeline, as a script would run it
cat >"$WORK/tar-pigz.sh" <<'PIGZ'
#!/bin/sh
set -eu
cd "$(dirname "$1")" && tar --format=oldgnu -Scf - "$(basename "$1")" | pigz >"$2"
PIGZ
chmod +x "$WORK/tar-pigz.sh"

# every side writes one file, removed and synced before its run (untimed)
prepare() { rm -f "$1" && sync; }
prepare_kiln-vhd() { prepare "$WORK/k.vhd"; }
prepare_qemu-vhd() { prepare "$WORK/q.vhd"; }
prepare_kiln-vhd-nosum() { prepare "$WORK/n.vhd"; }
prepare_kiln-gce() { prepare "$WORK/k.tar.gz"; }
prepare_tar-pigz() { prepare "$WORK/p.tar.gz"; }
prepare_tar-gzip() { prepare "$WORK/t.tar.gz"; }
run_kiln-vhd() { bench_measure "$WORK/k.vhd" "$WORK/driver" "$RAW" "$WORK/k.vhd" vhd none none 0 sha256; }
run_qemu-vhd() {
        bench_measure "$WORK/q.vhd" qemu-img convert -f raw -O vpc -o subformat=fixed,force_size "$RAW" "$WORK/q.vhd"
}
run_kiln-vhd-nosum() { bench_measure "$WORK/n.vhd" "$WORK/driver" "$RAW" "$WORK/n.vhd" vhd none none 0 none; }
run_kiln-gce() { bench_measure "$WORK/k.tar.gz" "$WORK/driver" "$RAW" "$WORK/k.tar.gz" gce none none 0 sha256; }
run_tar-pigz() { bench_measure "$WORK/p.tar.gz" "$WORK/tar-pigz.sh" "$RAW" "$WORK/p.tar.gz"; }
run_tar-gzip() { bench_measure "$WORK/t.tar.gz" tar -C "$WORK" --format=oldgnu -Sczf "$WORK/t.tar.gz" disk.raw; }

cat "$RAW" >/dev/null
echo "input: $(($(stat -c %s "$RAW") >> 20)) MiB, $(($(du -k "$RAW" | cut -f1) >> 10)) MiB allocated; $(nproc) CPUs" >&2
SIDES=()
if [ "$ONLY" != gce ]; then
        bench_rounds "$PAIRS" kiln-vhd qemu-vhd kiln-vhd-nosum
        qemu-img compare -q -f raw -F vpc "$RAW" "$WORK/k.vhd" || bench_die "kiln's vhd does not compare"
        SIDES+=(kiln-vhd qemu-vhd kiln-vhd-nosum)
fi
if [ "$ONLY" != vhd ]; then
        bench_rounds "$PAIRS" kiln-gce tar-pigz tar-gzip
        if ! gzip -t "$WORK/k.tar.gz" || [ "$(tar -tzf "$WORK/k.tar.gz")" != disk.raw ]; then
                bench_die "kiln's archive does not read back"
        fi
        SIDES+=(kiln-gce tar-pigz tar-gzip)
fi

m() { bench_median "$@"; }
[ "$ONLY" = gce ] || bench_table kiln-vhd kiln-vhd kiln-vhd-nosum qemu-vhd
[ "$ONLY" = vhd ] || bench_table kiln-gce kiln-gce tar-pigz tar-gzip
echo
echo "ratios of medians (goal, issue 13: gce faster than tar | pigz at a size within 5 %):"
[ "$ONLY" = gce ] || for k in kiln-vhd kiln-vhd-nosum; do
        echo "  $k: qemu-img / kiln wall = $(bench_ratio "$(m qemu-vhd wall)" "$(m "$k" wall)")," \
                "cpu = $(bench_ratio "$(m qemu-vhd cpu)" "$(m "$k" cpu)");" \
                "size kiln / qemu-img = $(bench_ratio "$(m "$k" size_b)" "$(m qemu-vhd size_b)")"
done
[ "$ONLY" = vhd ] || for o in tar-pigz tar-gzip; do
        echo "  kiln-gce vs $o: $o / kiln wall = $(bench_ratio "$(m "$o" wall)" "$(m kiln-gce wall)")$(
                [ "$o" = tar-gzip ] || echo " (goal > 1)")," \
                "cpu = $(bench_ratio "$(m "$o" cpu)" "$(m kiln-gce cpu)");" \
                "size kiln / $o = $(bench_ratio "$(m kiln-gce size_b)" "$(m "$o" size_b)")$(
                [ "$o" = tar-gzip ] || echo " (goal <= 1.05)")"
done
bench_caveat "kiln computes the SHA-256 of what it writes (kiln-vhd-nosum: the VHD without it); the others"
bench_caveat "  do not; kiln's driver and pigz use every CPU, tar -z and qemu-img one"
bench_footer "${SIDES[@]}"
