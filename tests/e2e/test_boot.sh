#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of `kiln boot`: the minimal example's qcow2 image boots
# under QEMU (TCG) with SeaBIOS and with OVMF; cloud-init applies kiln's
# seed (the hostname kiln chose is the guest's, root's SSH key works);
# commands run over SSH with their exit status passed through; parallel
# boots get their own ports; a killed kiln leaves no QEMU and no temp dir.
# Needs root (the image build).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        echo "test_boot: needs root"
        echo "0 passed, 1 failed"
        exit 1
fi

e2e_minimal_build || { echo "0 passed, 1 failed"; exit 1; }
IMAGE=$E2E_MIN_OUT/minimal/minimal.qcow2
READY_CMD='systemctl is-system-running --wait; hostname'

# The hostname kiln announced on stderr ("... as HOSTNAME; ssh on ...").
announced_hostname() { sed -n 's/.* as \([a-z0-9-]*\); ssh on .*/\1/p' "$1" | head -1; }
announced_port() { sed -n 's/.*; ssh on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" | head -1; }

# boot_ready FIRMWARE: `kiln boot --run` prints "running" and the hostname
# kiln put in the seed (a random kiln-XXXXXXXX): cloud-init read the seed,
# root's key from it logged in, and no unit failed.
boot_ready() {
        assert_exit 0 "$KILN" boot --firmware "$1" --accel tcg "$IMAGE" --run "$READY_CMD" || return 1
        local host
        host=$(announced_hostname "$T_ERR")
        case "$host" in
        kiln-????????) ;;
        *) t_fail "no kiln-XXXXXXXX hostname announced:"$'\n'"$(cat "$T_ERR")"; return 1 ;;
        esac
        assert_eq "running"$'\n'"$host" "$(cat "$T_OUT")" "systemctl is-system-running; hostname" || return 1
        assert_contains "$(cat "$T_ERR")" "ready after" || return 1
}

t_boot_bios() { boot_ready bios; }
run_test boot-bios-run t_boot_bios

t_boot_uefi() { boot_ready uefi; }
run_test boot-uefi-run t_boot_uefi

# Two boots at once: both ready on different ports; one passes exit 7 through,
# the other a chosen --hostname and a JSON summary.
t_parallel_and_exit_status() {
        "$KILN" boot --accel tcg "$IMAGE" --run 'exit 7' >"$T_TMP/a.out" 2>"$T_TMP/a.err" &
        local a=$!
        "$KILN" boot --accel tcg --hostname e2e-second --json "$IMAGE" --run 'hostname' \
                >"$T_TMP/b.out" 2>"$T_TMP/b.err" &
        local b=$! ra=0 rb=0
        wait "$a" || ra=$?
        wait "$b" || rb=$?
        assert_eq 7 "$ra" "exit status of --run 'exit 7'"$'\n'"$(cat "$T_TMP/a.err")" || return 1
        assert_eq 0 "$rb" "exit status of the second boot"$'\n'"$(cat "$T_TMP/b.err")" || return 1
        local pa pb
        pa=$(announced_port "$T_TMP/a.err")
        pb=$(announced_port "$T_TMP/b.err")
        [ -n "$pa" ] && [ -n "$pb" ] && [ "$pa" != "$pb" ] ||
                t_fail "ports not distinct: '$pa' '$pb'" || return 1
        assert_eq e2e-second "$(head -1 "$T_TMP/b.out")" || return 1
        assert_eq "e2e-second $pb ran 0" "$(sed 1d "$T_TMP/b.out" | python3 -c '
import json, sys; j = json.load(sys.stdin)
print(j["hostname"], j["ssh_port"], j["result"], j["exit_status"])')" || return 1
}
run_test parallel-boots-and-exit-status t_parallel_and_exit_status

t_bad_usage() {
        assert_exit 2 "$KILN" boot "$T_TMP/no-such.qcow2" --run true || return 1
        assert_contains "$(cat "$T_ERR")" "cannot read image $T_TMP/no-such.qcow2: No such file or directory" || return 1
        assert_exit 2 "$KILN" boot --firmware coreboot "$IMAGE" || return 1
        assert_contains "$(cat "$T_ERR")" "--firmware: expected bios or uefi, not 'coreboot'" || return 1
        assert_exit 2 "$KILN" boot --accel hvf "$IMAGE" || return 1
        assert_contains "$(cat "$T_ERR")" "--accel: expected auto, kvm or tcg" || return 1
        assert_exit 2 "$KILN" boot --hostname 'bad_name!' "$IMAGE" || return 1
        assert_contains "$(cat "$T_ERR")" "'bad_name!' is not a valid hostname" || return 1
        assert_exit 2 "$KILN" boot || return 1
        assert_contains "$(cat "$T_ERR")" "missing IMAGE" || return 1
        assert_exit 2 "$KILN" boot --run true --ssh "$IMAGE" || return 1
        assert_exit 0 "$KILN" boot --help || return 1
        assert_contains "$(cat "$T_OUT")" "--firmware bios|uefi" || return 1
}
run_test bad-usage t_bad_usage

# kill_leaves_nothing SIGNAL: kiln is killed while the guest boots; QEMU
# (found by the unique console log path on its command line) must be gone.
# After SIGTERM kiln also removes its temp dir (TMPDIR points into T_TMP).
kill_leaves_nothing() {
        local sig=$1 log=$T_TMP/console-$RANDOM$RANDOM.log
        mkdir -p "$T_TMP/tmp"
        TMPDIR=$T_TMP/tmp "$KILN" boot --accel tcg --console-log "$log" "$IMAGE" >"$T_TMP/out" 2>"$T_TMP/err" &
        local pid=$! deadline=$((SECONDS + 60))
        # wait until QEMU runs and the guest has printed something
        until pgrep -f -- "file:$log" >/dev/null && [ -s "$log" ]; do
                [ $SECONDS -lt $deadline ] || { kill -9 "$pid"; t_fail "QEMU never started"; cat "$T_TMP/err"; return 1; }
                sleep 0.1
        done
        local qpid
        qpid=$(pgrep -f -- "file:$log")
        kill "-$sig" "$pid"
        wait "$pid"
        local rc=$? deadline2=$((SECONDS + 20))
        while pgrep -f -- "file:$log" >/dev/null; do
                [ $SECONDS -lt $deadline2 ] || { kill -9 "$qpid"; t_fail "QEMU $qpid survived kiln's $sig"; return 1; }
                sleep 0.1
        done
        if [ "$sig" = TERM ]; then
                assert_eq 143 "$rc" "kiln's exit status after SIGTERM"$'\n'"$(cat "$T_TMP/err")" || return 1
                assert_eq "" "$(ls -A "$T_TMP/tmp")" "temp dir left behind" || return 1
                [ -s "$log" ] || t_fail "--console-log file was not kept" || return 1
        fi
}
t_sigterm() { kill_leaves_nothing TERM; }
run_test sigterm-leaves-no-qemu-no-tmp t_sigterm

t_sigkill() { kill_leaves_nothing KILL; }
run_test sigkill-leaves-no-qemu t_sigkill

e2e_summary
