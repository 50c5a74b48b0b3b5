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
# Each figure is the median of REPS runs (default 3).
#
# TREE defaults to a fresh `mmdebstrap --variant=apt bookworm` (about a
# minute, needs the network). The tree is never modified: every method works
# on its own copy. Runs as root (mount). Work space: a directory under
# BENCH_DIR (default /var/tmp), which must be the tree's filesystem type for
# the numbers to mean anything; it is removed at the end.
set -euo pipefail

REPS=${REPS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}

die() { echo "cache-storage: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root (overlay mounts)"
for t in tar zstd du cp mount umount; do
        command -v "$t" >/dev/null || die "missing $t"
done

WORK=$(mktemp -d "$BENCH_DIR/kiln-bench.XXXXXX")
MOUNTS=()
cleanup() {
        local m
        for m in "${MOUNTS[@]}"; do
                mountpoint -q "$m" && umount "$m"
        done
        rm -rf "$WORK"
}
trap cleanup EXIT

if [ $# -ge 1 ]; then
        TREE=$(cd "$1" && pwd)
        [ -e "$TREE/etc/debian_version" ] || die "$TREE does not look like a root tree"
else
        command -v mmdebstrap >/dev/null || die "no TREE given and mmdebstrap missing"
        TREE=$WORK/tree
        echo "bootstrapping bookworm into $TREE (mmdebstrap --variant=apt) ..."
        mmdebstrap --quiet --variant=apt bookworm "$TREE"
fi

# now_ns — monotonic-enough wall clock in nanoseconds.
now_ns() { date +%s%N; }
# kib DIR... — disk usage in KiB, hard links counted once across the DIRs.
kib() { du -sk --total "$@" | tail -n 1 | cut -f1; }

# step ROOT — the build step: modify a few files of the tree at ROOT.
step() {
        echo "built by kiln bench" >>"$1/etc/motd"
        mkdir -p "$1/opt/bench"
        head -c 1048576 /dev/urandom >"$1/opt/bench/blob"
        rm -f "$1/etc/issue.net"
}

# median N... — the middle value.
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
# fmt_s NS — nanoseconds as seconds with 3 decimals.
fmt_s() { printf '%d.%03d' $(($1 / 1000000000)) $(($1 / 1000000 % 1000)); }

tree_kib=$(kib "$TREE")
nfiles=$(find "$TREE" -xdev | wc -l)
echo "tree: $TREE, $((tree_kib / 1024)) MiB on disk, $nfiles files; $(nproc) CPUs;" \
        "$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK") at $WORK; median of $REPS"
# Warm the page cache so the first method does not pay for cold reads alone.
tar -C "$TREE" -cf - . >/dev/null

declare -A STORE RESTORE BYTES

# ---- (a) overlay ---------------------------------------------------------
s=() r=() b=()
for i in $(seq "$REPS"); do
        d=$WORK/ovl$i
        mkdir -p "$d/upper" "$d/work" "$d/mnt" "$d/upper2" "$d/work2" "$d/mnt2"
        MOUNTS+=("$d/mnt" "$d/mnt2")
        t0=$(now_ns)
        mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$d/upper,workdir=$d/work" "$d/mnt"
        step "$d/mnt"
        umount "$d/mnt"
        sync -f "$d"
        t1=$(now_ns)
        # next step: the stored upper becomes a read-only lower layer
        mount -t overlay overlay \
                -o "lowerdir=$d/upper:$TREE,upperdir=$d/upper2,workdir=$d/work2" "$d/mnt2"
        grep -q "kiln bench" "$d/mnt2/etc/motd" || die "overlay: change not visible"
        [ ! -e "$d/mnt2/etc/issue.net" ] || die "overlay: whiteout not honoured"
        t2=$(now_ns)
        umount "$d/mnt2"
        s+=($((t1 - t0))) r+=($((t2 - t1))) b+=($(kib "$d/upper"))
        rm -rf "$d"
done
STORE[overlay]=$(median "${s[@]}") RESTORE[overlay]=$(median "${r[@]}") BYTES[overlay]=$(median "${b[@]}")

# ---- (b) full copy -------------------------------------------------------
s=() r=() b=()
for i in $(seq "$REPS"); do
        d=$WORK/copy$i
        mkdir -p "$d"
        t0=$(now_ns)
        cp -a "$TREE" "$d/entry"
        step "$d/entry"
        sync -f "$d"
        t1=$(now_ns)
        cp -a "$d/entry" "$d/next" # a writable tree that leaves the entry intact
        t2=$(now_ns)
        s+=($((t1 - t0))) r+=($((t2 - t1))) b+=($(kib "$d/entry"))
        # keep copy1's entry as the parent for (d)
        if [ "$i" -eq 1 ]; then rm -rf "$d/next"; else rm -rf "$d"; fi
done
STORE[copy]=$(median "${s[@]}") RESTORE[copy]=$(median "${r[@]}") BYTES[copy]=$(median "${b[@]}")
PARENT=$WORK/copy1/entry # a private copy of the tree (after one step)

# ---- (c) tar + zstd snapshot ---------------------------------------------
s=() r=() b=()
for i in $(seq "$REPS"); do
        d=$WORK/tar$i
        mkdir -p "$d/next"
        cp -a "$TREE" "$d/work" # the tree the step runs in (not timed)
        sync -f "$d"
        t0=$(now_ns)
        step "$d/work"
        tar -C "$d/work" --xattrs --acls -cf - . | zstd -q -T0 -3 -o "$d/snap.tar.zst"
        sync -f "$d"
        t1=$(now_ns)
        zstd -q -dc "$d/snap.tar.zst" | tar -C "$d/next" --xattrs --acls -xf -
        t2=$(now_ns)
        s+=($((t1 - t0))) r+=($((t2 - t1))) b+=($(($(stat -c %b "$d/snap.tar.zst") / 2)))
        rm -rf "$d"
done
STORE[tar]=$(median "${s[@]}") RESTORE[tar]=$(median "${r[@]}") BYTES[tar]=$(median "${b[@]}")

# ---- (d) hard-link farm --------------------------------------------------
s=() r=() b=()
sum_before=$(md5sum "$PARENT/etc/motd" | cut -d' ' -f1)
for i in $(seq "$REPS"); do
        d=$WORK/hl$i
        mkdir -p "$d"
        sync -f "$d"
        base=$(kib "$PARENT")
        t0=$(now_ns)
        cp -al "$PARENT" "$d/entry"
        step "$d/entry"
        sync -f "$d"
        t1=$(now_ns)
        cp -al "$d/entry" "$d/next"
        t2=$(now_ns)
        s+=($((t1 - t0))) r+=($((t2 - t1))) b+=($(($(kib "$PARENT" "$d/entry") - base)))
        rm -rf "$d"
done
STORE[hardlink]=$(median "${s[@]}") RESTORE[hardlink]=$(median "${r[@]}") BYTES[hardlink]=$(median "${b[@]}")
sum_after=$(md5sum "$PARENT/etc/motd" | cut -d' ' -f1)

# ---- report --------------------------------------------------------------
ratio() { # ratio A B — A/B with one decimal ("-" when B is 0)
        if [ "$2" -eq 0 ]; then echo "-"; else
                printf '%d.%d' $(($1 / $2)) $(($1 * 10 / $2 % 10)); fi
}
echo
printf '%-10s %10s %10s %12s   %s\n' method "store s" "restore s" "KiB/step" "vs overlay (store / restore / bytes)"
for m in overlay copy tar hardlink; do
        printf '%-10s %10s %10s %12s   %s / %s / %s\n' "$m" "$(fmt_s "${STORE[$m]}")" \
                "$(fmt_s "${RESTORE[$m]}")" "${BYTES[$m]}" \
                "$(ratio "${STORE[$m]}" "${STORE[overlay]}")" \
                "$(ratio "${RESTORE[$m]}" "${RESTORE[overlay]}")" \
                "$(ratio "${BYTES[$m]}" "${BYTES[overlay]}")"
done
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
