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
# subdirectories (kiln via --file). The tools run interleaved round by
# round (bench/lib.sh: RUNS rounds, default 200 for the seed and CD_RUNS,
# default 50, for cd_files; WARMUP untimed rounds first), each a fresh
# process; every side's median and spread (ms), the ratio of medians to
# kiln and the image size are printed, with the load. kiln's time
# includes an fsync of the ISO before it is renamed into place (a crash
# never leaves a torn seed; a few ms on most disks) and its start-up (it
# links libcurl, SQLite, OpenSSL, ...); the others do neither, so each
# also gets a "+ fsync" row (the tool, then `sync FILE`): compare kiln with
# those. Every image is checked (isoinfo -J -x of user-data equals the
# input) outside the timings. KILN defaults to build/kiln. Work space: a
# temp dir under BENCH_DIR (default /var/tmp), removed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
KILN=${1:-$ROOT/build/kiln}
RUNS=${RUNS:-200}
CD_RUNS=${CD_RUNS:-50}

for t in genisoimage xorriso isoinfo; do
        command -v "$t" >/dev/null || bench_bench_die "missing $t"
done
[ -x "$KILN" ] || bench_bench_die "no kiln binary at $KILN (make first)"
bench_init cidata
WORK=$BENCH_TMP
BENCH_QUIET=1 # hundreds of runs: no line per run
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
                                bench_die "$iso.iso: user-data differs"
                else
                        isoinfo -J -x /dir3/file-number-13.dat -i "$WORK/$iso.iso" |
                                cmp -s - "$WORK/cd/dir3/file-number-13.dat" || bench_die "$iso.iso: cd file differs"
                fi
        done
}

TOOLS=(kiln genisoimage xorriso genisoimage_sync xorriso_sync)
declare -A TITLE=([kiln]="kiln cidata" [genisoimage]="genisoimage -J -R" [xorriso]="xorriso -as mkisofs -J -R"
        [genisoimage_sync]="genisoimage -J -R + fsync" [xorriso_sync]="xorriso -as mkisofs -J -R + fsync")
declare -A ISO=([kiln]=k [genisoimage]=g [xorriso]=x [genisoimage_sync]=g [xorriso_sync]=x)
for tool in "${TOOLS[@]}"; do
        for what in seed cd; do eval "run_${what}_$tool() { ${what}_$tool >/dev/null 2>&1; }"; done
done

bench() { # seed|cd RUNS
        local what=$1 n=$2 tool sides=()
        { "${what}_genisoimage" && "${what}_xorriso" && "${what}_kiln"; } >/dev/null 2>&1 || bench_die "a $what run failed"
        check "$what"
        for tool in "${TOOLS[@]}"; do sides+=("${what}_$tool"); done
        bench_rounds "$n" "${sides[@]}"
        local km
        km=$(bench_median "${what}_kiln" wall)
        echo "$what: $n rounds"
        for tool in "${TOOLS[@]}"; do
                read -r m lo hi < <(bench_field "${what}_$tool" wall | bench_stats)
                printf "  %-34s %8.2f ms median (%.2f-%.2f)  %6.2fx kiln  %8s KiB\n" "${TITLE[$tool]}" \
                        "$(awk -v m="$m" 'BEGIN { print m * 1000 }')" "$(awk -v m="$lo" 'BEGIN { print m * 1000 }')" \
                        "$(awk -v m="$hi" 'BEGIN { print m * 1000 }')" "$(bench_ratio "$m" "$km")" \
                        "$(($(stat -c %s "$WORK/${ISO[$tool]}.iso") / 1024))"
        done
}

bench seed "$RUNS"
bench cd "$CD_RUNS"
bench_caveat "the same inputs for every tool; kiln fsyncs its ISO: compare it with the \"+ fsync\" rows"
bench_caveat "kiln's figure includes its start-up (dynamic linking of libcurl, SQLite, OpenSSL, ...)"
sides=()
for tool in "${TOOLS[@]}"; do sides+=("seed_$tool"); done
for tool in "${TOOLS[@]}"; do sides+=("cd_$tool"); done
bench_footer "${sides[@]}"
