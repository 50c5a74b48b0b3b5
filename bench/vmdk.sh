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
# Each pair runs interleaved (kiln, other, kiln, other, ...) PAIRS times
# (default 3) with the input in the page cache, so that other load hits both
# sides alike; per side the median wall time and the spread (min-max), user+
# sys CPU, peak RSS and the output size; then the ratios other/kiln of the
# medians. Load: /proc/loadavg and /proc/pressure/cpu before and after.
# Every kiln VMDK is also checked with qemu-img check + compare (untimed).
#
# RAW-IMAGE defaults to a 2 GiB image made here with ~500 MB of /usr at
# random 4 MiB slots. Goal (issue 13): vmdk >= 5x faster than qemu-img on 2
# cores, size within 5%. Work space: a directory under BENCH_DIR (default
# /var/tmp), removed at the end. Compiles bench/qcow2-driver.c with the
# writer sources directly (no Makefile).
set -euo pipefail

PAIRS=${PAIRS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "vmdk-bench: $*" >&2; exit 1; }
for t in qemu-img gcc sha256sum tar /usr/bin/time; do command -v "$t" >/dev/null || die "missing $t"; done

WORK=$(mktemp -d "$BENCH_DIR/kiln-bench-vmdk.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ $# -ge 1 ]; then
        RAW=$1
        [ -f "$RAW" ] || die "$RAW: no such file"
else
        RAW=$WORK/test.raw
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
LB=$(pkg-config --libs libzstd zlib liblzma libcrypto yaml-0.1 2>/dev/null || echo -lzstd -lz -llzma -lcrypto -lyaml)
gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" $CF -o "$WORK/driver" "$ROOT/bench/qcow2-driver.c" \
        "$ROOT"/src/base/*.c "$ROOT/src/os/fs.c" "$ROOT/src/spec/value.c" "$ROOT/src/spec/schema.c" \
        "$ROOT"/src/image/{format,qcow2,vmdk,ova,zpipe}.c $LB -lpthread -lm || die "cannot compile the driver"

# the script's OVA: what people do without kiln
cat >"$WORK/script-ova.sh" <<'EOF'
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
EOF
chmod +x "$WORK/script-ova.sh"

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
        printf "  %-44s %6.2f s (%5.2f-%5.2f)  cpu %6.2f s  rss %4d MiB  %7.1f MB\n" "$2" "$w" "$lo" "$hi" "$c" $((r / 1024)) "$(echo "$s / 1000000" | bc -l)"
}

ratio() { # ratio A B — B/A of median wall and of size
        read -r wa _ _ ca _ sa < <(stats "$1")
        read -r wb _ _ cb _ sb < <(stats "$2")
        printf "  %s: %.2fx faster (wall), %.2fx less CPU, size %.3fx of %s's\n" "$3" \
                "$(echo "$wb / $wa" | bc -l)" "$(echo "$cb / $ca" | bc -l)" "$(echo "$sa / $sb" | bc -l)" "$4"
}

cat "$RAW" >/dev/null
echo "input: $RAW ($(($(stat -c %s "$RAW") >> 20)) MiB, $(($(du -k "$RAW" | cut -f1) >> 10)) MiB allocated); $(nproc) CPUs"
echo "before: $(load)"
for i in $(seq "$PAIRS"); do
        one kiln-vmdk "$WORK/k.vmdk" "$WORK/driver" "$RAW" "$WORK/k.vmdk" vmdk none none 0 sha256
        one qemu-vmdk "$WORK/q.vmdk" qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$RAW" "$WORK/q.vmdk"
done
qemu-img check -q "$WORK/k.vmdk" && qemu-img compare -q -f raw -F vmdk "$RAW" "$WORK/k.vmdk" ||
        die "kiln's vmdk does not check or compare"
for i in $(seq "$PAIRS"); do
        one kiln-ova "$WORK/k.ova" "$WORK/driver" "$RAW" "$WORK/k.ova" ova none none 0 sha256
        one script-ova "$WORK/s.ova" "$WORK/script-ova.sh" "$RAW" "$WORK/s.ova"
done
echo "after:  $(load)"
echo "medians of $PAIRS interleaved pairs (spread min-max):"
report kiln-vmdk "kiln vmdk (level 3, sha256)"
report qemu-vmdk "qemu-img convert -O vmdk streamOptimized"
report kiln-ova "kiln ova (sha256 of the .ova)"
report script-ova "script: qemu-img + sha256sum + tar"
ratio kiln-vmdk qemu-vmdk "vmdk" "qemu-img"
ratio kiln-ova script-ova "ova" "the script"
