#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# cidata.sh — `kiln cidata` (kiln's own ISO 9660 writer) against the tools
# people use to make NoCloud seeds:
#
#     bench/cidata.sh [KILN]
#
#   genisoimage -quiet -J -R -V cidata     (cloud-localds, most guides)
#   xorriso -as mkisofs -quiet -J -R -V cidata
#   kiln cidata --user-data --meta-data --network-config
#
# on the same three files (a 2 KiB #cloud-config, meta-data, a netplan v2
# network-config), and a "cd_files" case: 200 files of 4 KiB-64 KiB in 10
# subdirectories (kiln via --file). Each row is the mean wall time of RUNS
# runs (default 200 for the seed, 50 for cd_files) in milliseconds, the
# tools interleaved round by round so that load from other processes hits
# them alike, and the ratio to kiln; plus the image size. kiln's time
# includes an fsync of the ISO before it is renamed into place (a crash
# never leaves a torn seed; a few ms on most disks) and its start-up
# (it links libcurl, SQLite, OpenSSL, ...); the others do neither, so each
# also gets a "+ fsync" row (the tool, then `sync FILE`). Every image is
# checked (isoinfo -J -x of user-data equals the input) outside the
# timings. KILN defaults to build/kiln. Work space under BENCH_DIR (default
# /var/tmp), removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KILN=${1:-$ROOT/build/kiln}
RUNS=${RUNS:-200}
CD_RUNS=${CD_RUNS:-50}
BENCH_DIR=${BENCH_DIR:-/var/tmp}

die() { echo "cidata-bench: $*" >&2; exit 1; }
for t in genisoimage xorriso isoinfo bc; do
        command -v "$t" >/dev/null || die "missing $t"
done
[ -x "$KILN" ] || die "no kiln binary at $KILN (make first)"

WORK=$(mktemp -d "$BENCH_DIR/kiln-bench-cidata.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1700000000

# ---- inputs ----
mkdir -p "$WORK/seed"
{
        echo "#cloud-config"
        echo "package_update: true"
        echo "packages: [munge, slurm-wlm, nfs-common]"
        echo "runcmd:"
        for i in $(seq 1 40); do echo "  - [sh, -c, \"echo step $i >> /var/log/seed.log\"]"; done
} >"$WORK/seed/user-data"
printf 'instance-id: iid-bench\nlocal-hostname: bench\n' >"$WORK/seed/meta-data"
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' >"$WORK/seed/network-config"

mkdir -p "$WORK/cd"
cd_args=()
for i in $(seq 0 199); do
        d="dir$((i % 10))"
        mkdir -p "$WORK/cd/$d"
        head -c $((4096 + (i * 307) % 61440)) /dev/urandom >"$WORK/cd/$d/file-number-$i.dat"
        cd_args+=(--file "$d/file-number-$i.dat=$WORK/cd/$d/file-number-$i.dat")
done

seed_genisoimage() { genisoimage -quiet -J -R -V cidata -o "$WORK/g.iso" "$WORK/seed"; }
seed_xorriso() { xorriso -as mkisofs -quiet -J -R -V cidata -o "$WORK/x.iso" "$WORK/seed"; }
seed_kiln() {
        "$KILN" cidata -o "$WORK/k.iso" --user-data "$WORK/seed/user-data" \
                --meta-data "$WORK/seed/meta-data" --network-config "$WORK/seed/network-config"
}
seed_genisoimage_sync() { seed_genisoimage && sync "$WORK/g.iso"; }
seed_xorriso_sync() { seed_xorriso && sync "$WORK/x.iso"; }
cd_genisoimage_sync() { cd_genisoimage && sync "$WORK/g.iso"; }
cd_xorriso_sync() { cd_xorriso && sync "$WORK/x.iso"; }
cd_genisoimage() { genisoimage -quiet -J -R -V CDFILES -o "$WORK/g.iso" "$WORK/cd"; }
cd_xorriso() { xorriso -as mkisofs -quiet -J -R -V CDFILES -o "$WORK/x.iso" "$WORK/cd"; }
cd_kiln() {
        "$KILN" cidata -o "$WORK/k.iso" --user-data "$WORK/seed/user-data" \
                --meta-data "$WORK/seed/meta-data" "${cd_args[@]}"
}

# check: every tool's image has the same user-data (seed) / file 0 (cd)
check() {
        local what=$1 iso
        for iso in g x k; do
                if [ "$what" = seed ]; then
                        isoinfo -J -x /user-data -i "$WORK/$iso.iso" | cmp -s - "$WORK/seed/user-data" ||
                                die "$iso.iso: user-data differs"
                else
                        isoinfo -J -x /dir3/file-number-13.dat -i "$WORK/$iso.iso" |
                                cmp -s - "$WORK/cd/dir3/file-number-13.dat" || die "$iso.iso: cd file differs"
                fi
        done
}

row() { # NAME MICROSECONDS RUNS KILN_MICROSECONDS SIZE
        printf "  %-34s %8.2f ms/run  %6.2fx kiln  %8s KiB\n" "$1" "$(echo "$2 / 1000 / $3" | bc -l)" \
                "$(echo "$2 / $4" | bc -l)" "$(($5 / 1024))"
}

# now_us — microseconds since the epoch (bash's EPOCHREALTIME)
now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }

bench() { # seed|cd RUNS
        local what=$1 n=$2 i t0 t1 tool
        local -A total=()
        local tools=(kiln genisoimage xorriso genisoimage_sync xorriso_sync)
        "${what}_genisoimage" && "${what}_xorriso" && "${what}_kiln" >/dev/null || die "a $what run failed"
        check "$what"
        for tool in "${tools[@]}"; do total[$tool]=0; done
        for ((i = 0; i < n; i++)); do
                for tool in "${tools[@]}"; do
                        t0=$(now_us)
                        "${what}_$tool" >/dev/null 2>&1 || die "$what $tool failed"
                        t1=$(now_us)
                        total[$tool]=$((total[$tool] + t1 - t0))
                done
        done
        local tk=${total[kiln]}
        echo "$what: $n runs each"
        row "kiln cidata" "${total[kiln]}" "$n" "$tk" "$(stat -c %s "$WORK/k.iso")"
        row "genisoimage -J -R" "${total[genisoimage]}" "$n" "$tk" "$(stat -c %s "$WORK/g.iso")"
        row "xorriso -as mkisofs -J -R" "${total[xorriso]}" "$n" "$tk" "$(stat -c %s "$WORK/x.iso")"
        row "genisoimage -J -R + fsync" "${total[genisoimage_sync]}" "$n" "$tk" "$(stat -c %s "$WORK/g.iso")"
        row "xorriso -as mkisofs -J -R + fsync" "${total[xorriso_sync]}" "$n" "$tk" "$(stat -c %s "$WORK/x.iso")"
}

bench seed "$RUNS"
bench cd "$CD_RUNS"
