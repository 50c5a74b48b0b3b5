/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The booted guest as a check target: the runner's script goes to
 * `/bin/sh -s` over the VM's SSH connection (vm.h), so the same snippets
 * that ran in the tree run in the live system, now with the boot-only
 * assertions (services running, ports, mounts, kernel parameters).
 */
#include "check/check.h"

#include "vm/vm.h"

static int guest_run(void *userdata, const char *script, uint64_t timeout_ms, size_t max,
                     char **ret_output, int *ret_status) {
        struct vm *vm = userdata;
        (void)timeout_ms; /* the VM's exec_timeout_s bounds each command */
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        int status = -1;
        int r = vm_exec(vm, "/bin/sh -s", script, strlen(script), &out, &status);
        if (r < 0 && r != -E2BIG)
                return r;
        if (out.len > max) {
                out.len = max;
                out.buf[max] = 0;
        }
        *ret_output = strbuf_detach(&out);
        *ret_status = status;
        return 0;
}

void check_exec_guest(struct check_exec *x, struct vm *vm) {
        *x = (struct check_exec){
                .where = "guest",
                .booted = true,
                .userdata = vm,
                .run = guest_run,
        };
}

int check_run_booted(const struct check_list *l, const struct check_boot_options *o,
                     const char *build, struct check_report *ret, char **ret_error) {
        struct vm_options vo = {
                .image = o->image,
                .firmware = o->uefi ? VM_FIRMWARE_UEFI : VM_FIRMWARE_BIOS,
                .accel = VM_ACCEL_AUTO,
                .console_log = o->console_log,
                .timeout_s = o->timeout_s,
                .exec_timeout_s = (unsigned)(CHECK_RUN_TIMEOUT_MS / 1000),
                .tmp_parent = o->tmp_parent,
                .tag = "kiln-check",
                .cancel = o->cancel,
        };
        if (o->accel && vm_accel_from_string(o->accel, &vo.accel) < 0) {
                *ret_error = xasprintf("unknown accelerator '%s' (auto, kvm or tcg)", o->accel);
                return -EINVAL;
        }
        _cleanup_vm_ struct vm *vm = NULL;
        const char *stage = "prepare the VM";
        int r = vm_new(&vo, &vm);
        if (r >= 0) {
                stage = "start QEMU";
                r = vm_start(vm);
        }
        if (r >= 0) {
                stage = "wait for the guest";
                r = vm_wait_ready(vm);
        }
        if (r >= 0) {
                stage = "run the checks in the guest";
                struct check_exec x;
                check_exec_guest(&x, vm);
                r = check_run(l, &x, build, ret);
        }
        if (r < 0) {
                _cleanup_free_ char *tail = vm && r != -ECANCELED ? vm_console_tail(vm, 15) : NULL;
                const char *why = vm ? vm_error(vm) : "";
                *ret_error = xasprintf("cannot %s: %s%s%s", stage, *why ? why : strerror(-r),
                                       tail && *tail ? "\nend of the serial console:\n" : "",
                                       tail && *tail ? tail : "");
        }
        return r;
}
