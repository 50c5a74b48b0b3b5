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
# Rows, each the median of PAIRS runs (default 3; REPS is the old name)
# with the input in the page cache and `sync` before every run (untimed);
# peak RSS from /usr/bin/time. The rows are interleaved: each round runs
# every row once, in table order (bench/lib.sh), so load from other work
# hits them alike; WARMUP (default 1) untimed rounds come first:
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
# RACE_ONLY=1 runs only the two rows that decide the compressed target
# (kiln's default zstd qcow2 and qemu-img -c zstd -W -m 16), ROUNDS
# (default 5) rounds of them.
#
# "x time" and "x size" compare each row with the fastest qemu-img setting of
# its kind (medians). Targets: compressed >= 2x faster than the fastest
# compressed qemu-img at <= 1.05x its size; uncompressed at least as fast as
# qemu-img; peak RSS < 64 MiB. Every kiln qcow2 is also checked (`qemu-img
# check`, `qemu-img compare`) once, after the first round, outside the
# timings.
#
# Needs qemu-img, gcc and kiln's build dependencies; compiles
# bench/qcow2-driver.c with the writer sources (not the Makefile, so a
# half-written module elsewhere cannot stop it). Work space: a temp dir
# under BENCH_DIR (default /var/tmp), removed at the end; SIZE_MIB (default
# 1024) sizes the test image made here.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
PAIRS=${PAIRS:-${REPS:-3}}
[ "${RACE_ONLY:-0}" != 1 ] || PAIRS=${ROUNDS:-5}
SIZE_MIB=${SIZE_MIB:-1024}

for t in qemu-img gcc sha256sum openssl /usr/bin/time tar; do
        command -v "$t" >/dev/null || bench_die "missing $t"
done
bench_init qcow2
WORK=$BENCH_TMP

# ---- the input ----
if [ $# -ge 1 ]; then
        RAW=$1
elif [ "${MAKE_IMAGE:-0}" != 1 ] && [ -f /var/tmp/kt/disk.raw ]; then
        # A copy: the image builder may rewrite its file while we measure.
        RAW=$WORK/disk.raw
        cp --sparse=always /var/tmp/kt/disk.raw "$RAW"
else
        RAW=$WORK/test.raw
        bench_make_raw "$RAW" "$SIZE_MIB" $((SIZE_MIB * 300 / 1024))
fi
[ -f "$RAW" ] || bench_die "$RAW: no such file"

# ---- the driver ----
bench_image_driver "$WORK/driver"
DRIVER=$WORK/driver
THREADS=$(nproc)

cat "$RAW" >/dev/null # into the page cache, for every contender alike
RAW_SIZE=$(stat -c %s "$RAW")
RAW_ALLOC=$(($(stat -c %b "$RAW") * 512))
echo "input: $RAW ($((RAW_SIZE >> 20)) MiB, $((RAW_ALLOC >> 20)) MiB allocated), $THREADS CPUs, $PAIRS rounds" >&2

# ---- the rows: side name, kind, label, output (- for none), command ----
ROWS=()
row() { # SIDE KIND LABEL OUTPUT CMD...
        local side=$1 kind=$2 label=$3 out=$4
        shift 4
        ROWS+=("$side")
        KIND[$side]=$kind LABEL[$side]=$label OUT[$side]=$out
        CMD[$side]=$(printf '%q ' "$@")
        eval "prepare_$side() { [ \"\${OUT[$side]}\" = - ] || rm -f \"\${OUT[$side]}\"; sync; }"
        eval "run_$side() { measure $side; }"
}
declare -A KIND LABEL OUT CMD
# measure SIDE — runs the row's command under /usr/bin/time for its peak RSS
measure() {
        eval "bench_measure $(printf %q "${OUT[$1]}") ${CMD[$1]}"
}
o() { echo "$WORK/out-$1"; }
ZQ=$WORK/zstd.qcow2 # kiln's default zstd qcow2, the input of the hashing rows
row q_zstd compressed "qemu-img -c zstd -W -m 16" "$(o q_zstd)" \
        qemu-img convert -c -o compression_type=zstd -W -m 16 -O qcow2 "$RAW" "$(o q_zstd)"
row k_zstd compressed "kiln qcow2 zstd (default)" "$(o k_zstd)" \
        "$DRIVER" "$RAW" "$(o k_zstd)" qcow2 zstd none "$THREADS" none
if [ "${RACE_ONLY:-0}" != 1 ]; then
        row q_unc uncompressed "qemu-img convert -O qcow2" "$(o q_unc)" qemu-img convert -O qcow2 "$RAW" "$(o q_unc)"
        row k_unc uncompressed "kiln qcow2" "$(o k_unc)" "$DRIVER" "$RAW" "$(o k_unc)" qcow2 none none "$THREADS" none
        row k_unc_sha uncompressed "kiln qcow2 + sha256" "$(o k_unc_sha)" \
                "$DRIVER" "$RAW" "$(o k_unc_sha)" qcow2 none none "$THREADS" sha256
        row q_zlib compressed "qemu-img convert -c (zlib)" "$(o q_zlib)" qemu-img convert -c -O qcow2 "$RAW" "$(o q_zlib)"
        row k_zlib compressed "kiln qcow2 zlib" "$(o k_zlib)" "$DRIVER" "$RAW" "$(o k_zlib)" qcow2 zlib none "$THREADS" none
        row k_zstd3 compressed "kiln qcow2 zstd level 3" "$(o k_zstd3)" \
                "$DRIVER" "$RAW" "$(o k_zstd3)" qcow2 zstd none "$THREADS" none 3
        row k_zstd3_sha compressed "kiln qcow2 zstd level 3 + sha256" "$(o k_zstd3_sha)" \
                "$DRIVER" "$RAW" "$(o k_zstd3_sha)" qcow2 zstd none "$THREADS" sha256 3
        row k_zstd_sha compressed "kiln qcow2 zstd (default) + sha256" "$(o k_zstd_sha)" \
                "$DRIVER" "$RAW" "$(o k_zstd_sha)" qcow2 zstd none "$THREADS" sha256
        row sha_q "hash qcow2" "sha256sum (zstd qcow2)" - sha256sum "$ZQ"
        row ossl_q "hash qcow2" "openssl dgst -sha256 (zstd qcow2)" - openssl dgst -sha256 "$ZQ"
        row sha_r "hash raw" "sha256sum (raw)" - sha256sum "$RAW"
        row ossl_r "hash raw" "openssl dgst -sha256 (raw)" - openssl dgst -sha256 "$RAW"
        row k_raw "hash raw" "kiln raw (sparse copy)" "$(o k_raw)" "$DRIVER" "$RAW" "$(o k_raw)" raw none none "$THREADS" none
        row k_raw_sha "hash raw" "kiln raw + sha256" "$(o k_raw_sha)" \
                "$DRIVER" "$RAW" "$(o k_raw_sha)" raw none none "$THREADS" sha256
        row k_raw_both "hash raw" "kiln raw + sha256 + sha512" "$(o k_raw_both)" \
                "$DRIVER" "$RAW" "$(o k_raw_both)" raw none none "$THREADS" both
        "$DRIVER" "$RAW" "$ZQ" qcow2 zstd none "$THREADS" none >/dev/null || bench_die "kiln failed"
fi

# every kiln qcow2 is checked once, after the first round (untimed)
VERIFIED=""
bench_round_end() {
        [ -z "$VERIFIED" ] || return 0
        local s
        for s in "${ROWS[@]}"; do
                case "${LABEL[$s]}" in kiln\ qcow2*) ;; *) continue ;; esac
                qemu-img check -q "${OUT[$s]}" || bench_die "qemu-img check ${OUT[$s]} failed"
                qemu-img compare -q -f raw -F qcow2 "$RAW" "${OUT[$s]}" || bench_die "${OUT[$s]} differs from $RAW"
        done
        VERIFIED=1
}

bench_rounds "$PAIRS" "${ROWS[@]}"

# ---- the table ----
# The reference of a kind: its fastest qemu-img (or, for hashing, openssl) row.
ref() {
        local kind=$1 best="" bt="" s t
        for s in "${ROWS[@]}"; do
                [ "${KIND[$s]}" = "$kind" ] || continue
                case "${LABEL[$s]}" in qemu-img* | openssl*) ;; *) continue ;; esac
                t=$(bench_median "$s" wall)
                if [ -z "$best" ] || awk -v a="$t" -v b="$bt" 'BEGIN { exit !(a < b) }'; then
                        best=$s bt=$t
                fi
        done
        echo "$best"
}
echo
printf '%-13s %-35s %7s %7s %7s %7s %9s %7s %8s\n' kind command "time s" spread "x time" "cpu s" \
        "size MB" "x size" "RSS MiB"
for s in $(for k in uncompressed compressed "hash qcow2" "hash raw"; do
        for x in "${ROWS[@]}"; do [ "${KIND[$x]}" != "$k" ] || echo "$x"; done
done); do
        r=$(ref "${KIND[$s]}")
        read -r t lo hi < <(bench_field "$s" wall | bench_stats)
        rss=$(bench_field "$s" rss_kib | sort -g | tail -n 1)
        awk -v k="${KIND[$s]}" -v n="${LABEL[$s]}" -v t="$t" -v lo="$lo" -v hi="$hi" \
                -v rt="$(bench_median "$r" wall)" -v cpu="$(bench_median "$s" cpu)" \
                -v sz="$(bench_median "$s" size_b)" -v rs="$(bench_median "$r" size_b)" -v rss="$rss" 'BEGIN {
                xs = (sz != "-" && rs != "-" && rs > 0) ? sprintf("%.3f", sz / rs) : "-"
                ss = sz != "-" ? sprintf("%.1f", sz / 1e6) : "-"
                printf "%-13s %-35s %7.2f %6.0f%% %7.2f %7.2f %9s %7s %8.1f\n", k, n, t, (hi - lo) / t * 100,
                        t / rt, cpu, ss, xs, rss / 1024
        }'
done
echo
echo "time s: median wall time; spread: (max - min) / median; x time: median / the kind's fastest"
echo "qemu-img (hashing: openssl) row's median; x size likewise; cpu s: median user + system"
echo "seconds (less sensitive to other load than the wall time); RSS: the peak over the runs."
echo "kiln rows use $THREADS threads; sizes are file sizes (apparent)."
echo "race (compressed target): qemu-img -c zstd / kiln zstd, medians: wall" \
        "$(bench_ratio "$(bench_median q_zstd wall)" "$(bench_median k_zstd wall)"), cpu" \
        "$(bench_ratio "$(bench_median q_zstd cpu)" "$(bench_median k_zstd cpu)"); size kiln / qemu-img" \
        "$(bench_ratio "$(bench_median k_zstd size_b)" "$(bench_median q_zstd size_b)")"
bench_caveat "every row reads the same input from the page cache; qemu-img and kiln's driver both write"
bench_caveat "  to the same file system; kiln's rows use every CPU, as qemu-img -W does"
bench_footer "${ROWS[@]}"
