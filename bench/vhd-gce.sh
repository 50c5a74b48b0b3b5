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
# Each comparison runs interleaved (kiln, other, kiln, other, ...) PAIRS
# times (default 3) with the input in the page cache, so that other load
# hits both sides alike; per side the median wall time and the spread
# (min-max), user+sys CPU, peak RSS and the output size; then the ratios
# of the medians. kiln computes the SHA-256 of what it writes (as a build
# does; for the VHD that is 2 GiB, the holes' zeros included), the others
# do not: the VHD is also timed without it. BENCH_ONLY=vhd or gce runs one
# half. Load: /proc/loadavg and /proc/pressure/cpu
# before and after. The kiln outputs are checked (untimed): qemu-img
# compare for the VHD, gzip -t and tar -t for the archive.
#
# RAW-IMAGE defaults to a 2 GiB image made here with ~500 MB of /usr at
# random 4 MiB slots. Goal (issue 13): gce faster than tar | pigz at a
# size within 5 %. Work space: a directory under BENCH_DIR (default
# /var/tmp), removed at the end. Links bench/qcow2-driver.c (a one-writer
# driver) against build/libkiln.a: run `make` first. Needs pigz
# (scripts/install-deps.sh lists it).
set -euo pipefail

PAIRS=${PAIRS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "vhd-gce-bench: $*" >&2; exit 1; }
for t in qemu-img gcc tar gzip pigz bc /usr/bin/time; do command -v "$t" >/dev/null || die "missing $t"; done
[ -f "$ROOT/build/libkiln.a" ] || die "build/libkiln.a is missing: run make"

WORK=$(mktemp -d "$BENCH_DIR/kiln-bench-vhd-gce.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# tar stores the file under its own name: the input is WORK/disk.raw
RAW=$WORK/disk.raw
if [ $# -ge 1 ]; then
        [ -f "$1" ] || die "$1: no such file"
        ln "$1" "$RAW" 2>/dev/null || cp --sparse=always "$1" "$RAW"
else
        echo "making a 2 GiB test image with ~500 MB of /usr ..."
        tar -C / -cf - usr 2>/dev/null | head -c 500M >"$WORK/content" || true
        truncate -s 2G "$RAW"
        i=0
        for slot in $(shuf -i 0-511 -n 125 --random-source=<(yes)); do
                dd if="$WORK/content" of="$RAW" bs=4M skip=$i seek="$slot" count=1 conv=notrunc status=none
                i=$((i + 1))
        done
        rm -f "$WORK/content"
fi

CF=$(pkg-config --cflags libzstd zlib liblzma libcrypto yaml-0.1 2>/dev/null || true)
LB=$(pkg-config --libs yaml-0.1 libcrypto libzstd zlib liblzma libcurl sqlite3 libmicrohttpd 2>/dev/null ||
        echo -lyaml -lcrypto -lzstd -lz -llzma -lcurl -lsqlite3 -lmicrohttpd)
gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" $CF -o "$WORK/driver" "$ROOT/bench/qcow2-driver.c" \
        "$ROOT/build/libkiln.a" $LB -lpthread -lm || die "cannot link the driver"

load() { echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"; }

# one NAME OUT CMD... — runs CMD once (after sync, input cached), appends
# "wall cpu rss size" to $WORK/NAME.
one() {
        local name=$1 out=$2
        shift 2
        rm -f "$out"
        sync
        /usr/bin/time -f "%e %U %S %M" -o "$WORK/t" "$@" >/dev/null
        read -r wall usr sys rss <"$WORK/t"
        echo "$wall $(echo "$usr + $sys" | bc) $rss $(stat -c %s "$out")" >>"$WORK/$name"
}

# stats NAME — "median-wall min max median-cpu rss size"
stats() {
        local c
        c=$(cut -d' ' -f2 "$WORK/$1" | sort -n | awk '{c[NR]=$1} END {print c[int((NR+1)/2)]}')
        sort -n "$WORK/$1" | awk -v c="$c" '{w[NR]=$1; r=$3>r?$3:r; s=$4} END {
                m=int((NR+1)/2); printf "%.2f %.2f %.2f %.2f %d %d\n", w[m], w[1], w[NR], c, r, s }'
}

report() { # report NAME LABEL
        read -r w lo hi c r s < <(stats "$1")
        printf "  %-44s %6.2f s (%5.2f-%5.2f)  cpu %6.2f s  rss %4d MiB  %8.1f MB\n" "$2" "$w" "$lo" "$hi" "$c" $((r / 1024)) "$(echo "$s / 1000000" | bc -l)"
}

ratio() { # ratio A B WHAT OTHER — B/A of median wall and CPU, A/B of size
        read -r wa _ _ ca _ sa < <(stats "$1")
        read -r wb _ _ cb _ sb < <(stats "$2")
        printf "  %s: %.2fx faster (wall), %.2fx less CPU, size %.3fx of %s's\n" "$3" \
                "$(echo "$wb / $wa" | bc -l)" "$(echo "$cb / $ca" | bc -l)" "$(echo "$sa / $sb" | bc -l)" "$4"
}

# the GNU tar + pigz pipeline, as a script would run it
cat >"$WORK/tar-pigz.sh" <<'EOF'
#!/bin/sh
set -eu
cd "$(dirname "$1")" && tar --format=oldgnu -Scf - "$(basename "$1")" | pigz >"$2"
EOF
chmod +x "$WORK/tar-pigz.sh"

cat "$RAW" >/dev/null
echo "input: $(($(stat -c %s "$RAW") >> 20)) MiB, $(($(du -k "$RAW" | cut -f1) >> 10)) MiB allocated; $(nproc) CPUs"
echo "before: $(load)"
ONLY=${BENCH_ONLY:-}
if [ "$ONLY" != gce ]; then
        for i in $(seq "$PAIRS"); do
                one kiln-vhd "$WORK/k.vhd" "$WORK/driver" "$RAW" "$WORK/k.vhd" vhd none none 0 sha256
                one qemu-vhd "$WORK/q.vhd" qemu-img convert -f raw -O vpc -o subformat=fixed,force_size "$RAW" "$WORK/q.vhd"
                one kiln-vhd-nosum "$WORK/n.vhd" "$WORK/driver" "$RAW" "$WORK/n.vhd" vhd none none 0 none
        done
fi
if [ "$ONLY" != vhd ]; then
        for i in $(seq "$PAIRS"); do
                one kiln-gce "$WORK/k.tar.gz" "$WORK/driver" "$RAW" "$WORK/k.tar.gz" gce none none 0 sha256
                one tar-pigz "$WORK/p.tar.gz" "$WORK/tar-pigz.sh" "$RAW" "$WORK/p.tar.gz"
                one tar-gzip "$WORK/t.tar.gz" tar -C "$WORK" --format=oldgnu -Sczf "$WORK/t.tar.gz" disk.raw
        done
fi
echo "after:  $(load)"
echo "medians of $PAIRS interleaved runs each (spread min-max):"
if [ "$ONLY" != gce ]; then
        qemu-img compare -q -f raw -F vpc "$RAW" "$WORK/k.vhd" || die "kiln's vhd does not compare"
        report kiln-vhd "kiln vhd fixed (sha256)"
        report kiln-vhd-nosum "kiln vhd fixed (no checksum)"
        report qemu-vhd "qemu-img convert -O vpc fixed,force_size"
        ratio kiln-vhd qemu-vhd "vhd" "qemu-img"
        ratio kiln-vhd-nosum qemu-vhd "vhd without checksum" "qemu-img"
fi
if [ "$ONLY" != vhd ]; then
        gzip -t "$WORK/k.tar.gz" && [ "$(tar -tzf "$WORK/k.tar.gz")" = disk.raw ] || die "kiln's archive does not read back"
        report kiln-gce "kiln gce (deflate 6, all cores, sha256)"
        report tar-pigz "tar --format=oldgnu -S | pigz"
        report tar-gzip "tar --format=oldgnu -Sczf"
        ratio kiln-gce tar-pigz "gce vs pigz" "tar | pigz"
        ratio kiln-gce tar-gzip "gce vs tar -z" "tar -z"
fi
