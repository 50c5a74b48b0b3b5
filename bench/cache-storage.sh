#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# cache-storage.sh — how should the step cache (src/provision/cache.c) store the
# result of a build step? Measures four ways on a real Debian root tree:
#
#     bench/cache-storage.sh [TREE]
#
#   (a) overlay   mount an overlay (lower = tree, upper = empty), run the step,
#                 umount: the entry is the upper dir as it is (a rename)
#   (b) copy      cp -a the parent tree, run the step on the copy
#   (c) tar+zstd  run the step, snapshot the whole tree
#                 (tar | zstd -T0 -3); the next step extracts it
#   (d) hardlink  cp -al the parent tree, run the step on it (UNSAFE: shown
#                 below why)
#
# The "step" appends a line to /etc/motd, adds a 1 MiB file and deletes one
# file — a small change, like most build steps after the bootstrap.
#
# Columns: store = time to produce the step's result and make it durable
# (everything up to and including `sync`); restore = time to get a writable
# tree for the next step without altering the stored result; bytes/step =
# disk space the stored result adds (du, hard links counted once).
# The methods run interleaved (bench/lib.sh: PAIRS rounds, default 3, REPS
# is the old name; WARMUP untimed rounds first), each round running every
# method once; each figure is the median of the rounds, with its spread,
# and the load beside every run. The "wall" figure of a method is its whole
# run (store, restore, measuring the bytes, removing its files).
#
# TREE defaults to a fresh `mmdebstrap --variant=apt bookworm` (about a
# minute, needs the network). The tree is never modified: every method works
# on its own copy. Runs as root (mount). Work space: a temp dir under
# BENCH_DIR (default /var/tmp), which must be the tree's filesystem type for
# the numbers to mean anything; it is removed at the end, mounts first.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PAIRS=${PAIRS:-${REPS:-3}}

[ "$(id -u)" -eq 0 ] || bench_die "must run as root (overlay mounts)"
for t in tar zstd du cp mount umount; do
        command -v "$t" >/dev/null || bench_die "missing $t"
done
bench_init cache-storage
WORK=$BENCH_TMP
MOUNTS=()
bench_on_exit 'for m in "${MOUNTS[@]}"; do ! mountpoint -q "$m" || umount "$m"; done'

if [ $# -ge 1 ]; then
        TREE=$(cd "$1" && pwd)
        [ -e "$TREE/etc/debian_version" ] || bench_die "$TREE does not look like a root tree"
else
        command -v mmdebstrap >/dev/null || bench_die "no TREE given and mmdebstrap missing"
        TREE=$WORK/tree
        echo "bootstrapping bookworm into $TREE (mmdebstrap --variant=apt) ..."
        mmdebstrap --quiet --variant=apt bookworm "$TREE"
fi

# now_ns — monotonic-enough wall clock in nanoseconds.
now_ns() { date +%s%N; }
# kib DIR... — disk usage in KiB, hard links counted once across the DIRs.
kib() { du -sk --total "$@" | tail -n 1 | cut -f1; }
# secs NS — nanoseconds as seconds
secs() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e9 }'; }
# record T0 T1 T2 KIB — the store and restore times and the bytes of a run
record() {
        bench_metric store_s "$(secs $(($2 - $1)))"
        bench_metric restore_s "$(secs $(($3 - $2)))"
        bench_metric kib "$4"
}

# step ROOT — the build step: modify a few files of the tree at ROOT.
step() {
        echo "built by kiln bench" >>"$1/etc/motd"
        mkdir -p "$1/opt/bench"
        head -c 1048576 /dev/urandom >"$1/opt/bench/blob"
        rm -f "$1/etc/issue.net"
}

tree_kib=$(kib "$TREE")
nfiles=$(find "$TREE" -xdev | wc -l)
echo "tree: $TREE, $((tree_kib / 1024)) MiB on disk, $nfiles files; $(nproc) CPUs;" \
        "$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK") at $WORK; $PAIRS rounds"
# Warm the page cache so the first method does not pay for cold reads alone.
tar -C "$TREE" -cf - . >/dev/null
# (d)'s parent: a private copy of the tree after one step (not timed)
PARENT=$WORK/parent
cp -a "$TREE" "$PARENT"
step "$PARENT"
sum_before=$(md5sum "$PARENT/etc/motd" | cut -d' ' -f1)

# ---- (a) overlay ---------------------------------------------------------
prepare_overlay() {
        local d=$WORK/ovl$1
        mkdir -p "$d/upper" "$d/work" "$d/mnt" "$d/upper2" "$d/work2" "$d/mnt2"
        MOUNTS+=("$d/mnt" "$d/mnt2")
}
run_overlay() {
        local d=$WORK/ovl$1 t0 t1 t2
        t0=$(now_ns)
        mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$d/upper,workdir=$d/work" "$d/mnt"
        step "$d/mnt"
        umount "$d/mnt"
        sync -f "$d"
        t1=$(now_ns)
        # next step: the stored upper becomes a read-only lower layer
        mount -t overlay overlay \
                -o "lowerdir=$d/upper:$TREE,upperdir=$d/upper2,workdir=$d/work2" "$d/mnt2"
        grep -q "kiln bench" "$d/mnt2/etc/motd" || bench_die "overlay: change not visible"
        [ ! -e "$d/mnt2/etc/issue.net" ] || bench_die "overlay: whiteout not honoured"
        t2=$(now_ns)
        umount "$d/mnt2"
        record "$t0" "$t1" "$t2" "$(kib "$d/upper")"
        rm -rf "$d"
}

# ---- (b) full copy -------------------------------------------------------
run_copy() {
        local d=$WORK/copy$1 t0 t1 t2
        mkdir -p "$d"
        t0=$(now_ns)
        cp -a "$TREE" "$d/entry"
        step "$d/entry"
        sync -f "$d"
        t1=$(now_ns)
        cp -a "$d/entry" "$d/next" # a writable tree that leaves the entry intact
        t2=$(now_ns)
        record "$t0" "$t1" "$t2" "$(kib "$d/entry")"
        rm -rf "$d"
}

# ---- (c) tar + zstd snapshot ---------------------------------------------
prepare_tar() {
        local d=$WORK/tar$1
        mkdir -p "$d/next"
        cp -a "$TREE" "$d/work" # the tree the step runs in
        sync -f "$d"
}
run_tar() {
        local d=$WORK/tar$1 t0 t1 t2
        t0=$(now_ns)
        step "$d/work"
        tar -C "$d/work" --xattrs --acls -cf - . | zstd -q -T0 -3 -o "$d/snap.tar.zst"
        sync -f "$d"
        t1=$(now_ns)
        zstd -q -dc "$d/snap.tar.zst" | tar -C "$d/next" --xattrs --acls -xf -
        t2=$(now_ns)
        record "$t0" "$t1" "$t2" "$(($(stat -c %b "$d/snap.tar.zst") / 2))"
        rm -rf "$d"
}

# ---- (d) hard-link farm --------------------------------------------------
prepare_hardlink() { mkdir -p "$WORK/hl$1"; sync -f "$WORK/hl$1"; }
run_hardlink() {
        local d=$WORK/hl$1 t0 t1 t2 base
        base=$(kib "$PARENT")
        t0=$(now_ns)
        cp -al "$PARENT" "$d/entry"
        step "$d/entry"
        sync -f "$d"
        t1=$(now_ns)
        cp -al "$d/entry" "$d/next"
        t2=$(now_ns)
        record "$t0" "$t1" "$t2" "$(($(kib "$PARENT" "$d/entry") - base))"
        rm -rf "$d"
}

bench_rounds "$PAIRS" overlay copy tar hardlink
sum_after=$(md5sum "$PARENT/etc/motd" | cut -d' ' -f1)

bench_caveat "store = producing the step's result and making it durable (up to and including sync);"
bench_caveat "  restore = a writable tree for the next step; kib = disk space the result adds"
bench_caveat "the same tree, the same step and the same file system for every method"
bench_report overlay overlay copy tar hardlink
echo
if [ "$sum_before" != "$sum_after" ]; then
        echo "caveat (hardlink): UNSAFE. The step's in-place append to /etc/motd also changed"
        echo "  the parent entry's /etc/motd (md5 ${sum_before:0:8}… -> ${sum_after:0:8}…)."
        echo "  A hard-link farm shares inodes, so every write that does not replace the file"
        echo "  (>>, O_TRUNC rewrites, chmod/chown/touch) silently corrupts each cached entry"
        echo "  linked to it; the numbers above are a lower bound for a safe variant."
else
        echo "caveat (hardlink): in-place writes through a hard link modify the cached entry"
        echo "  (this run's step happened to replace the file, so the parent stayed intact)."
fi
