#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/boot.sh — boot-to-ready time of kiln's minimal image against mkosi
# 14's closest equivalent, both under QEMU TCG with OVMF (mkosi 14 builds
# UEFI-only images), 1 GiB, 2 CPUs, on the same machine in the same run.
#
#   kiln:  `kiln boot --firmware uefi --accel tcg` until ready: cloud-init
#          applied kiln's seed (hostname, root's SSH key), printed kiln's
#          readiness marker, and an SSH login worked
#   mkosi: ../shared/anchors/mkosi/run.sh builds image.raw (no cloud-init,
#          no SSH key: it cannot do more); booted with the same QEMU options
#          until the serial console shows "login:"
#
# mkosi's figure is a lower bound of what "ready" costs it (a login prompt
# says nothing about SSH or first-boot setup). Afterwards kiln's guest is
# asked where its boot time went (systemd-analyze, blame, critical chain).
#
#   bench/boot.sh [--kiln-image FILE] [--mkosi-image FILE] [--runs N]
#
# Without --kiln-image the minimal example is built into a temp dir; without
# --mkosi-image mkosi builds one (about a minute). Needs root. Not a test:
# nothing is asserted. Target: kiln <= 0.5 x mkosi.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-./build/kiln}
[ -x "$KILN" ] || make -s all
ANCHOR=${MKOSI_ANCHOR:-../shared/anchors/mkosi/run.sh}
KILN_IMAGE="" MKOSI_IMAGE="" RUNS=1
while [ $# -gt 0 ]; do
        case "$1" in
        --kiln-image) KILN_IMAGE=$2; shift ;;
        --mkosi-image) MKOSI_IMAGE=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        -h | --help) sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/boot.sh: unknown argument '$1'" >&2; exit 2 ;;
        esac
        shift
done
T=$(mktemp -d /var/tmp/kiln-bench-boot.XXXXXX)
QPID=""
cleanup() {
        [ -z "$QPID" ] || kill "$QPID" 2>/dev/null || true
        rm -rf "$T"
}
trap cleanup EXIT

if [ -z "$KILN_IMAGE" ]; then
        echo "building the minimal example..." >&2
        "$KILN" build --cache-dir "${KILN_CACHE_DIR:-$T/kiln-cache}" --work-dir "$T/kiln-work" \
                --output-dir "$T/kiln-out" examples/minimal/kiln.yaml >"$T/kiln-build.log" 2>&1 ||
                { tail -30 "$T/kiln-build.log"; exit 1; }
        KILN_IMAGE=$T/kiln-out/minimal/minimal.qcow2
fi
if [ -z "$MKOSI_IMAGE" ]; then
        echo "building mkosi's image..." >&2
        bash "$ANCHOR" "$T/mkosi" cold >"$T/mkosi.log" 2>&1 || { tail -30 "$T/mkosi.log"; exit 1; }
        MKOSI_IMAGE=$T/mkosi/image.raw
fi

# mkosi: the same machine as kiln boot's (q35, TCG, 1 GiB, 2 CPUs, OVMF,
# virtio disk in snapshot mode, virtio-rng, user network), until "login:".
mkosi_boot() {
        local log=$T/mkosi-console.log start
        : >"$log"
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$T/vars.fd"
        start=$EPOCHREALTIME
        qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 1024 -smp 2 -nodefaults -display none \
                -no-reboot -serial "file:$log" \
                -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
                -drive "if=pflash,format=raw,unit=1,file=$T/vars.fd" \
                -drive "file=$MKOSI_IMAGE,format=raw,if=virtio,snapshot=on,cache=unsafe" \
                -netdev user,id=net0 -device virtio-net-pci,netdev=net0 -device virtio-rng-pci \
                </dev/null >"$T/mkosi-qemu.log" 2>&1 &
        QPID=$!
        local deadline=$((SECONDS + 600))
        until grep -qa 'login:' "$log"; do
                kill -0 "$QPID" 2>/dev/null || { echo "mkosi's QEMU exited" >&2; tail -20 "$log" >&2; return 1; }
                [ $SECONDS -lt $deadline ] || { echo "mkosi image: no login prompt in 600 s" >&2; return 1; }
                sleep 0.1 # polling the log; the deadline bounds the wait
        done
        python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$EPOCHREALTIME"
        kill "$QPID"
        wait "$QPID" 2>/dev/null || true
        QPID=""
}

ANALYZE='systemd-analyze; echo; systemd-analyze blame | head -15; echo; systemd-analyze critical-chain | sed -n 3,40p;
echo; echo "cloud-init, slowest modules:"; cloud-init analyze blame 2>/dev/null | sed -n 1,15p'
kiln_times=() mkosi_times=()
for i in $(seq "$RUNS"); do
        echo "run $i/$RUNS: kiln boot..." >&2
        "$KILN" boot --firmware uefi --accel tcg --json "$KILN_IMAGE" --run "$ANALYZE" \
                >"$T/kiln-boot.out" 2>"$T/kiln-boot.err" || { cat "$T/kiln-boot.err" >&2; exit 1; }
        # stdout: the analysis, then the JSON summary (from the line "{" on)
        kiln_times+=("$(sed -n '/^{$/,$p' "$T/kiln-boot.out" | python3 -c 'import json, sys; print("%.1f" % json.load(sys.stdin)["ready_seconds"])')")
        echo "run $i/$RUNS: mkosi image..." >&2
        mkosi_times+=("$(mkosi_boot)")
done

echo
echo "Where kiln's guest spent its boot (last run):"
sed '/^{$/,$d' "$T/kiln-boot.out" | sed 's/^/  /'
echo
python3 - "${kiln_times[*]}" "${mkosi_times[*]}" <<'PY'
import statistics, sys
k = [float(x) for x in sys.argv[1].split()]
m = [float(x) for x in sys.argv[2].split()]
km, mm = statistics.median(k), statistics.median(m)
print(f"{'':52s} seconds (median of {len(k)})")
print(f"{'kiln boot, UEFI, TCG: ready (cloud-init + SSH login)':52s} {km:8.1f}   {' '.join(map(str, k))}")
print(f"{'mkosi 14 image, UEFI, TCG: login prompt':52s} {mm:8.1f}   {' '.join(map(str, m))}")
print(f"\nratio kiln / mkosi = {km / mm:.2f} (target <= 0.5)")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
