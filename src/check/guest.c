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

/* The check that stands for systemd's verdict in a boot's report: not a
 * kind of the checks: list (its options are boot_check:'s), so not in
 * check_kinds. */
static const struct field no_fields[] = {{NULL, 0, 0, NULL, NULL, NULL}};
static const struct check_kind kind_system = {
        .name = "system",
        .target = "state",
        .fields = no_fields,
        .boot_only = true,
};

/* Puts the "system running" result first in the report (which owns it). */
static void report_prepend(struct check_report *r, const struct check_boot_policy *p,
                           enum check_status st, char *detail) {
        struct check *c = xcalloc(1, sizeof(*c));
        *c = (struct check){
                .index = 0,
                .kind = &kind_system,
                .target = xstrdup("running"),
                .boot_only = true,
                .mark = p ? p->mark : (struct mark){0},
        };
        r->builtin = c;
        r->v = xreallocarray(r->v, r->n + 2, sizeof(*r->v));
        memmove(r->v + 1, r->v, r->n * sizeof(*r->v));
        r->v[0] = (struct check_result){.check = c, .status = st, .detail = detail};
        r->n++;
        switch (st) {
        case CHECK_PASSED: r->passed++; break;
        case CHECK_FAILED: r->failed++; break;
        default: r->skipped++; break;
        }
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
        enum check_status sys = CHECK_FAILED;
        char *sys_detail = NULL;
        if (r >= 0) {
                /* systemd's verdict first: it waits for the boot to finish,
                 * so the checks below see the settled system too. */
                struct vm_boot_state bs = {0};
                int k = vm_boot_state(vm, 0, &bs);
                if (k == -ECANCELED) {
                        r = k;
                } else if (k < 0) {
                        sys_detail = xasprintf("cannot ask systemd: %s", vm_error(vm));
                } else {
                        sys = check_boot_state_judge(&bs, o->policy, &sys_detail);
                        vm_boot_state_done(&bs);
                }
        }
        if (r >= 0) {
                stage = "run the checks in the guest";
                struct check_exec x;
                check_exec_guest(&x, vm);
                r = check_run(l, &x, build, ret);
                if (r >= 0)
                        report_prepend(ret, o->policy, sys, TAKE_PTR(sys_detail));
        }
        free(sys_detail);
        if (r < 0) {
                _cleanup_free_ char *tail = vm && r != -ECANCELED ? vm_console_tail(vm, 15) : NULL;
                const char *why = vm ? vm_error(vm) : "";
                *ret_error = xasprintf("cannot %s: %s%s%s", stage, *why ? why : strerror(-r),
                                       tail && *tail ? "\nend of the serial console:\n" : "",
                                       tail && *tail ? tail : "");
        }
        return r;
}
