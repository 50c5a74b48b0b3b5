#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# boot-check.sh — boot a raw disk image in QEMU and wait for a login prompt.
#
#     tests/e2e/boot-check.sh [options] IMAGE [bios|uefi]
#
# Boots IMAGE (raw) with -snapshot, so the image is never modified, under
# TCG (no KVM needed), with the serial console in a log file; polls the log
# until the Debian getty on ttyS0 prints "login:" (and every --expect
# pattern has appeared), then stops QEMU and exits 0. On timeout, or when
# QEMU exits first, prints the tail of the log and exits 1. Exit 2: usage or
# a missing tool/firmware.
#
#   bios (default)        SeaBIOS, QEMU's default firmware
#   uefi                  OVMF (package ovmf): OVMF_CODE_4M.fd read-only and
#                         a throwaway copy of OVMF_VARS_4M.fd
#   --timeout SECONDS     deadline for the whole boot (default 300: TCG is slow)
#   --expect REGEX        also wait for a line matching REGEX (grep -E); repeatable
#   --log FILE            keep the serial log in FILE (default: a temporary file,
#                         removed on success)
#   --mem MIB             guest memory (default 1024)
#   --format FMT          QEMU's format of IMAGE (default: what qemu-img info
#                         says; a fixed VHD reads as raw there, so: vpc)
#
# Prints one line: "boot-check: IMAGE (MODE): login prompt after N s".
set -euo pipefail

usage() {
        awk 'NR > 2 && !/^#/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "$0"
}

TIMEOUT=300
MEM=1024
FORMAT=""
LOG=""
EXPECT=()
ARGS=()
while [ $# -gt 0 ]; do
        case "$1" in
        --timeout) TIMEOUT=$2; shift ;;
        --expect) EXPECT+=("$2"); shift ;;
        --log) LOG=$2; shift ;;
        --mem) MEM=$2; shift ;;
        --format) FORMAT=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "boot-check: unknown option '$1' (try --help)" >&2; exit 2 ;;
        *) ARGS+=("$1") ;;
        esac
        shift
done
if [ ${#ARGS[@]} -lt 1 ] || [ ${#ARGS[@]} -gt 2 ]; then
        usage >&2
        exit 2
fi
IMAGE=${ARGS[0]}
MODE=${ARGS[1]:-bios}
[ -f "$IMAGE" ] || { echo "boot-check: no such image: $IMAGE" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null ||
        { echo "boot-check: qemu-system-x86_64 not found (package qemu-system-x86)" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/boot-check.XXXXXX")
KEEP_LOG=1
if [ -z "$LOG" ]; then
        LOG=$TMP/serial.log
        KEEP_LOG=0
fi
: >"$LOG"
QEMU_PID=""
cleanup() {
        if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
                kill "$QEMU_PID" 2>/dev/null || true
                wait "$QEMU_PID" 2>/dev/null || true
        fi
        rm -rf "$TMP"
}
trap cleanup EXIT
# the image's format, as qemu-img sees it (raw, qcow2, ...)
[ -n "$FORMAT" ] || FORMAT=$(qemu-img info --output=json "$IMAGE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')

FIRMWARE=()
case "$MODE" in
bios) ;;
uefi)
        CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
        VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
        [ -f "$CODE" ] && [ -f "$VARS" ] ||
                { echo "boot-check: $CODE or $VARS missing (package ovmf)" >&2; exit 2; }
        cp "$VARS" "$TMP/vars.fd"
        FIRMWARE=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$CODE"
                -drive "if=pflash,format=raw,unit=1,file=$TMP/vars.fd")
        ;;
*) echo "boot-check: mode must be bios or uefi, not '$MODE'" >&2; exit 2 ;;
esac

START=$(date +%s)
# -nographic would tie the serial port to stdio; write it to the log instead
qemu-system-x86_64 -accel tcg -machine q35 -m "$MEM" -smp 2 -snapshot \
        -display none -monitor none -serial "file:$LOG" -no-reboot \
        "${FIRMWARE[@]}" \
        -drive "file=$IMAGE,format=$FORMAT,if=virtio" \
        -nic none </dev/null >"$TMP/qemu.out" 2>&1 &
QEMU_PID=$!

all_seen() {
        # serial output has \r\n line ends; grep is fine with that
        grep -qa 'login:' "$LOG" || return 1
        local re
        for re in "${EXPECT[@]+"${EXPECT[@]}"}"; do
                grep -qaE "$re" "$LOG" || return 1
        done
}

DEADLINE=$((START + TIMEOUT))
RESULT=timeout
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
        if all_seen; then
                RESULT=ok
                break
        fi
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
                RESULT=exited
                break
        fi
        # poll the log; the deadline, not this interval, bounds the wait
        sleep 1
done
ELAPSED=$(($(date +%s) - START))

if [ "$RESULT" = ok ]; then
        echo "boot-check: $IMAGE ($MODE): login prompt after ${ELAPSED} s"
        for re in "${EXPECT[@]+"${EXPECT[@]}"}"; do
                echo "boot-check:   $(grep -aE "$re" "$LOG" | head -1 | tr -d '\r')"
        done
        [ "$KEEP_LOG" = 1 ] || rm -f "$LOG"
        exit 0
fi
case "$RESULT" in
timeout) echo "boot-check: $IMAGE ($MODE): no login prompt within ${TIMEOUT} s" >&2 ;;
exited) echo "boot-check: $IMAGE ($MODE): QEMU exited after ${ELAPSED} s" >&2 ;;
esac
for re in "${EXPECT[@]+"${EXPECT[@]}"}"; do
        grep -qaE "$re" "$LOG" || echo "boot-check:   never saw /$re/" >&2
done
echo "---- qemu ----" >&2
tail -n 20 "$TMP/qemu.out" >&2 || true
echo "---- last 40 lines of the serial log ----" >&2
tail -n 40 "$LOG" | tr -d '\r' >&2 || true
exit 1
