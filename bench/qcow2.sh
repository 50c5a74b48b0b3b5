#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# qcow2.sh — kiln's format writers (src/image/format.c, qcow2.c) against
# qemu-img, and kiln's in-stream checksums against sha256sum / openssl:
#
#     bench/qcow2.sh [RAW-IMAGE]
#
# RAW-IMAGE defaults to /var/tmp/kt/disk.raw (a bootable 2 GiB minimal
# Debian image, when one was built there), else a 1 GiB image made here with
# ~300 MB of real file content (a tar of /usr written at random 4 MiB slots;
# MAKE_IMAGE=1 makes that one even when disk.raw exists).
#
# Rows, each the median of REPS runs (default 3) with the input in the page
# cache and `sync` before every run; peak RSS from /usr/bin/time:
#
#   uncompressed  qemu-img convert -O qcow2; kiln qcow2 without and with sha256
#   compressed    qemu-img convert -c (zlib: what Packer's disk_compression
#                 runs), qemu-img -c -o compression_type=zstd -W -m 16;
#                 kiln zlib, zstd at its default (level 1, minMatch 5: see
#                 qcow2.c) and at level 3 (qemu's), without and with sha256
#   hashing       sha256sum and openssl dgst -sha256 of kiln's zstd qcow2 and
#                 of the raw image, against kiln's raw writer with and
#                 without sha256 (the checksum computed in the stream)
#
# First, the race that decides the compressed target, interleaved so that
# other load hits both alike: ROUNDS (default 5) rounds of kiln's default
# zstd qcow2 then qemu-img -c zstd -W -m 16, each round's ratios (wall and
# user+sys CPU time, qemu-img / kiln) and their medians. RACE_ONLY=1 stops
# after it.
#
# "x time" and "x size" compare each row with the fastest qemu-img setting of
# its kind. Targets: compressed ≥ 2x faster than the fastest compressed
# qemu-img at ≤ 1.05x its size; uncompressed at least as fast as qemu-img;
# peak RSS < 64 MiB. Every kiln qcow2 is also checked (`qemu-img check`,
# `qemu-img compare`) outside the timings.
#
# Needs qemu-img, gcc and kiln's build dependencies; compiles
# bench/qcow2-driver.c with the writer sources (not the Makefile, so a
# half-written module elsewhere cannot stop it). Work space: a directory
# under BENCH_DIR (default /var/tmp), removed at the end.
set -euo pipefail

REPS=${REPS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "qcow2-bench: $*" >&2; exit 1; }
for t in qemu-img gcc sha256sum openssl /usr/bin/time tar; do
        command -v "$t" >/dev/null || die "missing $t"
done

WORK=$(mktemp -d "$BENCH_DIR/kiln-bench-qcow2.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---- the input ----
if [ $# -ge 1 ]; then
        RAW=$1
elif [ "${MAKE_IMAGE:-0}" != 1 ] && [ -f /var/tmp/kt/disk.raw ]; then
        # A copy: the image builder may rewrite its file while we measure.
        RAW=$WORK/disk.raw
        cp --sparse=always /var/tmp/kt/disk.raw "$RAW"
else
        RAW=$WORK/test.raw
        echo "making a 1 GiB test image with ~300 MB of /usr ..."
        tar -C / -cf - usr 2>/dev/null | head -c 300M >"$WORK/content" || true
        truncate -s 1G "$RAW"
        i=0
        for slot in $(shuf -i 0-255 -n 75 --random-source=<(yes)); do
                dd if="$WORK/content" of="$RAW" bs=4M skip=$i seek="$slot" count=1 \
                        conv=notrunc status=none
                i=$((i + 1))
        done
        rm -f "$WORK/content"
fi
[ -f "$RAW" ] || die "$RAW: no such file"

# ---- the driver ----
CFLAGS_PKG=$(pkg-config --cflags libzstd zlib liblzma libcrypto 2>/dev/null || true)
LIBS_PKG=$(pkg-config --libs libzstd zlib liblzma libcrypto 2>/dev/null || echo -lzstd -lz -llzma -lcrypto)
gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" $CFLAGS_PKG -o "$WORK/driver" \
        "$ROOT/bench/qcow2-driver.c" "$ROOT"/src/base/*.c "$ROOT/src/os/fs.c" "$ROOT/src/image/format.c" \
        "$ROOT/src/image/qcow2.c" "$ROOT/src/image/zpipe.c" $LIBS_PKG -lyaml -lpthread -lm ||
        die "cannot compile the driver"
DRIVER=$WORK/driver
THREADS=$(nproc)

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
[ "${LOAD0%%.*}" -ge 1 ] && echo "warning: load average $LOAD0: other work will skew the times" >&2
cat "$RAW" >/dev/null # into the page cache, for every contender alike
RAW_SIZE=$(stat -c %s "$RAW")
RAW_ALLOC=$(($(stat -c %b "$RAW") * 512))
echo "input: $RAW ($((RAW_SIZE >> 20)) MiB, $((RAW_ALLOC >> 20)) MiB allocated), $THREADS CPUs, median of $REPS runs"
echo

# measure NAME OUTPUT CMD... — runs CMD REPS times; sets T (median wall
# seconds), CPU (median user+sys seconds), RSS (peak KiB, max over runs) and
# SIZE (OUTPUT's size, 0 if OUTPUT is -).
measure() {
        local name=$1 out=$2 times=() cpus=() rss=0 i e u s m
        shift 2
        for ((i = 0; i < REPS; i++)); do
                [ "$out" != - ] && rm -f "$out"
                sync
                /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" ||
                        { cat "$WORK/err" >&2; die "$name failed"; }
                read -r e u s m <"$WORK/time"
                times+=("$e")
                cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')")
                [ "$m" -gt "$rss" ] && rss=$m
        done
        T=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((REPS + 1) / 2))p")
        CPU=$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "$(((REPS + 1) / 2))p")
        RSS=$rss
        SIZE=0
        [ "$out" != - ] && SIZE=$(stat -c %s "$out")
        return 0
}

ROWS=()
# row KIND NAME — records the last measurement under KIND.
row() { ROWS+=("$1|$2|$T|$SIZE|$RSS|$CPU"); }

verify() {
        qemu-img check -q "$1" || die "qemu-img check $1 failed"
        qemu-img compare -q -f raw -F qcow2 "$RAW" "$1" || die "$1 differs from $RAW"
}

Q=$WORK/out.qcow2

# ---- the interleaved race ----
race() {
        local rounds=${ROUNDS:-5} i e u s m tk ck tq cq walls=() cpus=() KQ=$WORK/race-kiln.qcow2
        echo "race: kiln zstd (default) vs qemu-img -c zstd -W -m 16, $rounds rounds interleaved"
        for ((i = 1; i <= rounds; i++)); do
                rm -f "$KQ" "$Q"
                sync
                /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$DRIVER" "$RAW" "$KQ" qcow2 zstd none \
                        "$THREADS" none >/dev/null || die "kiln failed"
                read -r tk u s m <"$WORK/time"
                ck=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
                sync
                /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" qemu-img convert -c -o compression_type=zstd \
                        -W -m 16 -O qcow2 "$RAW" "$Q" || die "qemu-img failed"
                read -r tq u s m <"$WORK/time"
                cq=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
                walls+=("$(awk -v a="$tq" -v b="$tk" 'BEGIN { printf "%.3f", a / b }')")
                cpus+=("$(awk -v a="$cq" -v b="$ck" 'BEGIN { printf "%.3f", a / b }')")
                printf '  round %d: kiln %.2f s (cpu %.2f)  qemu-img %.2f s (cpu %.2f)  x wall %s  x cpu %s  load %s\n' \
                        "$i" "$tk" "$ck" "$tq" "$cq" "${walls[-1]}" "${cpus[-1]}" "$(cut -d' ' -f1 /proc/loadavg)"
        done
        verify "$KQ"
        local mw mc
        mw=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((rounds + 1) / 2))p")
        mc=$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "$(((rounds + 1) / 2))p")
        echo "race: median qemu-img/kiln wall $mw, cpu $mc; size kiln/qemu-img" \
                "$(awk -v a="$(stat -c %s "$KQ")" -v b="$(stat -c %s "$Q")" 'BEGIN { printf "%.4f", a / b }')"
        echo
}
race
[ "${RACE_ONLY:-0}" = 1 ] && exit 0

measure "qemu-img" "$Q" qemu-img convert -O qcow2 "$RAW" "$Q"
row uncompressed "qemu-img convert -O qcow2"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 none none "$THREADS" none
row uncompressed "kiln qcow2"
verify "$Q"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 none none "$THREADS" sha256
row uncompressed "kiln qcow2 + sha256"

measure "qemu-img" "$Q" qemu-img convert -c -O qcow2 "$RAW" "$Q"
row compressed "qemu-img convert -c (zlib)"
measure "qemu-img" "$Q" qemu-img convert -c -o compression_type=zstd -W -m 16 -O qcow2 "$RAW" "$Q"
row compressed "qemu-img -c zstd -W -m 16"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 zlib none "$THREADS" none
row compressed "kiln qcow2 zlib"
verify "$Q"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 zstd none "$THREADS" none 3
row compressed "kiln qcow2 zstd level 3"
verify "$Q"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 zstd none "$THREADS" sha256 3
row compressed "kiln qcow2 zstd level 3 + sha256"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 zstd none "$THREADS" none
row compressed "kiln qcow2 zstd (default)"
verify "$Q"
measure "kiln" "$Q" "$DRIVER" "$RAW" "$Q" qcow2 zstd none "$THREADS" sha256
row compressed "kiln qcow2 zstd (default) + sha256"
ZQ=$WORK/zstd.qcow2
cp "$Q" "$ZQ"

measure "sha256sum" - sha256sum "$ZQ"
row "hash qcow2" "sha256sum (zstd qcow2)"
measure "openssl" - openssl dgst -sha256 "$ZQ"
row "hash qcow2" "openssl dgst -sha256 (zstd qcow2)"
measure "sha256sum" - sha256sum "$RAW"
row "hash raw" "sha256sum (raw)"
measure "openssl" - openssl dgst -sha256 "$RAW"
row "hash raw" "openssl dgst -sha256 (raw)"
R=$WORK/out.raw
measure "kiln" "$R" "$DRIVER" "$RAW" "$R" raw none none "$THREADS" none
row "hash raw" "kiln raw (sparse copy)"
measure "kiln" "$R" "$DRIVER" "$RAW" "$R" raw none none "$THREADS" sha256
row "hash raw" "kiln raw + sha256"
measure "kiln" "$R" "$DRIVER" "$RAW" "$R" raw none none "$THREADS" both
row "hash raw" "kiln raw + sha256 + sha512"

# ---- the table ----
# The reference of a kind: its fastest qemu-img (or, for hashing, openssl) row.
ref() {
        local kind=$1 best="" r k n t
        for r in "${ROWS[@]}"; do
                IFS='|' read -r k n t _ _ <<<"$r"
                [ "$k" = "$kind" ] || continue
                case "$n" in qemu-img* | openssl*) ;; *) continue ;; esac
                if [ -z "$best" ] || awk -v a="$t" -v b="${best%%|*}" 'BEGIN { exit !(a < b) }'; then
                        best="$t|$r"
                fi
        done
        echo "$best"
}

printf '%-14s %-36s %7s %7s %7s %9s %7s %8s\n' kind command "time s" "x time" "cpu s" \
        "size MB" "x size" "RSS MiB"
for r in "${ROWS[@]}"; do
        IFS='|' read -r k n t s rss cpu <<<"$r"
        IFS='|' read -r _ _ _ rt rs _ <<<"$(ref "$k")"
        awk -v k="$k" -v n="$n" -v t="$t" -v s="$s" -v rss="$rss" -v rt="$rt" -v rs="$rs" \
                -v cpu="$cpu" 'BEGIN {
                xs = (s > 0 && rs > 0) ? sprintf("%.3f", s / rs) : "-"
                ss = s > 0 ? sprintf("%.1f", s / 1e6) : "-"
                printf "%-14s %-36s %7.2f %7.2f %7.2f %9s %7s %8.1f\n", k, n, t, t / rt, cpu, ss, xs,
                        rss / 1024
        }'
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (at the start: $LOAD0)"
echo
echo "x time: time / the kind's fastest qemu-img (hashing: openssl) row; x size likewise;"
echo "cpu s: user + system seconds (less sensitive to other load than the wall time)."
echo "kiln rows use $THREADS threads; sizes are file sizes (apparent)."
