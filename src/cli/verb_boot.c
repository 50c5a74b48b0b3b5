/* SPDX-License-Identifier: Apache-2.0 */
/* kiln boot: boot a built image in QEMU, wait until it is ready, then run a
 * command in it, open a shell, or hold it until Ctrl-C. */
#include "cli/cli.h"

#include "base/json.h"
#include "check/check.h"
#include "vm/vm.h"

#include <signal.h>
#include <time.h>

static int boot_run(struct cli *cli, int argc, char **argv);

const struct verb verb_boot = {
        .name = "boot",
        .summary = "Boot an image in QEMU and run a command in it over SSH",
        .usage = "kiln boot [options] IMAGE",
        .help = "Boots IMAGE (raw or qcow2) in QEMU without modifying it (-snapshot), with a\n"
                "generated cloud-init seed: a throwaway SSH key for root, a hostname and a\n"
                "random readiness marker. The guest is ready when cloud-init has printed the\n"
                "marker on the serial console and an SSH login works, and it is usable when\n"
                "systemd then calls the boot \"running\": a \"degraded\" boot (a unit failed)\n"
                "is an error naming the failed units, unless --allow-degraded. Then:\n"
                "  --run CMD          run CMD as root in the guest (stdout/stderr streamed);\n"
                "                     kiln exits with CMD's exit status\n"
                "  --ssh              an interactive SSH session\n"
                "  (neither)          print how to connect and keep the VM until Ctrl-C\n"
                "The VM is always stopped and its temporary files removed afterwards.\n"
                "\n"
                "Options:\n"
                "  --firmware bios|uefi   SeaBIOS (default) or OVMF (package ovmf)\n"
                "  --accel auto|kvm|tcg   auto (default): KVM when a probe shows it really runs\n"
                "                         guest code, else TCG (software emulation, slow)\n"
                "  --memory MIB           guest memory (default 1024)\n"
                "  --cpus N               guest CPUs (default 2)\n"
                "  --hostname NAME        the guest's hostname (default kiln-<random>)\n"
                "  --timeout SECONDS      deadline for readiness (default 600 under TCG, 180 with KVM)\n"
                "  --console-log FILE     keep the serial console log in FILE\n"
                "  --allow-degraded       go on when units failed (they are still named)\n"
                "  --json                 print a JSON summary on stdout at the end\n"
                "\n"
                "Exit status: CMD's with --run (or the shell's with --ssh); otherwise 0 when the\n"
                "guest became ready, 1 when it did not or its boot was degraded, 2 for a\n"
                "usage error.\n",
        .run = boot_run,
};

enum {
        B_HELP = 1,
        B_FIRMWARE,
        B_ACCEL,
        B_MEMORY,
        B_CPUS,
        B_HOSTNAME,
        B_TIMEOUT,
        B_CONSOLE_LOG,
        B_RUN,
        B_SSH,
        B_JSON,
        B_ALLOW_DEGRADED,
};

static const struct cli_option boot_opts[] = {
        {"help", 'h', false, B_HELP},
        {"firmware", 0, true, B_FIRMWARE},
        {"accel", 0, true, B_ACCEL},
        {"memory", 'm', true, B_MEMORY},
        {"cpus", 0, true, B_CPUS},
        {"hostname", 0, true, B_HOSTNAME},
        {"timeout", 0, true, B_TIMEOUT},
        {"console-log", 0, true, B_CONSOLE_LOG},
        {"run", 0, true, B_RUN},
        {"ssh", 0, false, B_SSH},
        {"json", 0, false, B_JSON},
        {"allow-degraded", 0, false, B_ALLOW_DEGRADED},
        {NULL, 0, false, 0},
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig) {
        got_signal = sig;
}

/* SIGINT/SIGTERM/SIGHUP set got_signal; no SA_RESTART, so waits notice. */
static void install_handlers(void) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || *s == '-' || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

static double secs(uint64_t ms) {
        return (double)ms / 1000.0;
}

static void print_json(const char *image, const struct vm_options *o, struct vm *vm,
                       const struct vm_boot_state *bs, const char *phase, int status) {
        const struct vm_info *i = vm_info(vm);
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &out, true);
        json_begin_object(&w);
        json_key(&w, "image");
        json_string(&w, image);
        json_key(&w, "firmware");
        json_string(&w, vm_firmware_to_string(o->firmware));
        json_key(&w, "accel");
        json_string(&w, vm_accel_to_string(i->accel));
        json_key(&w, "hostname");
        json_string(&w, i->hostname);
        json_key(&w, "ssh_port");
        json_int(&w, i->ssh_port);
        json_key(&w, "ready");
        json_bool(&w, i->ssh_ms > 0);
        json_key(&w, "marker_seconds");
        json_double(&w, secs(i->ready_ms));
        json_key(&w, "ready_seconds");
        json_double(&w, secs(i->ssh_ms));
        json_key(&w, "system_state");
        if (bs && bs->state[0])
                json_string(&w, bs->state);
        else
                json_null(&w);
        json_key(&w, "failed_units");
        json_begin_array(&w);
        for (size_t k = 0; bs && k < bs->nfailed; k++)
                json_string(&w, bs->failed[k]);
        json_end_array(&w);
        json_key(&w, "result");
        json_string(&w, phase);
        if (status >= 0) {
                json_key(&w, "exit_status");
                json_int(&w, status);
        }
        json_end_object(&w);
        printf("%s\n", strbuf_str(&out));
}

/* Prints the VM's error and the end of the serial console. */
static void report_failure(struct vm *vm, const char *what, bool tail) {
        fprintf(stderr, "kiln boot: %s: %s\n", what, vm_error(vm));
        if (!tail)
                return;
        _cleanup_free_ char *t = vm_console_tail(vm, 30);
        if (*t) {
                fprintf(stderr, "---- last lines of the serial console (all of it: --console-log FILE) ----\n%s\n----\n",
                        t);
        }
}

static int boot_run(struct cli *cli, int argc, char **argv) {
        struct cli_parser p = {.opts = boot_opts, .argc = argc, .argv = argv, .i = 1, .verb = "boot"};
        struct vm_options o = {0};
        const char *arg, *run = NULL;
        bool ssh = false, json = false, allow_degraded = false;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2: return EXIT_USAGE;
                case 0:
                        if (o.image)
                                return cli_usage_error("boot", "unexpected argument '%s' (one IMAGE only)", arg),
                                       EXIT_USAGE;
                        o.image = arg;
                        break;
                case B_HELP: cli_print_verb_help(&verb_boot, stdout); return EXIT_OK;
                case B_FIRMWARE:
                        if (vm_firmware_from_string(arg, &o.firmware) < 0)
                                return cli_usage_error("boot", "--firmware: expected bios or uefi, not '%s'", arg),
                                       EXIT_USAGE;
                        break;
                case B_ACCEL:
                        if (vm_accel_from_string(arg, &o.accel) < 0)
                                return cli_usage_error("boot", "--accel: expected auto, kvm or tcg, not '%s'", arg),
                                       EXIT_USAGE;
                        break;
                case B_MEMORY:
                        if (parse_uint(arg, 128, 1u << 20, &o.memory_mib) < 0)
                                return cli_usage_error("boot", "--memory: expected MiB (128 or more), not '%s'", arg),
                                       EXIT_USAGE;
                        break;
                case B_CPUS:
                        if (parse_uint(arg, 1, 255, &o.cpus) < 0)
                                return cli_usage_error("boot", "--cpus: expected 1 to 255, not '%s'", arg),
                                       EXIT_USAGE;
                        break;
                case B_HOSTNAME: o.hostname = arg; break;
                case B_TIMEOUT:
                        if (parse_uint(arg, 1, 86400, &o.timeout_s) < 0)
                                return cli_usage_error("boot", "--timeout: expected seconds (1 to 86400), not '%s'",
                                                       arg),
                                       EXIT_USAGE;
                        break;
                case B_CONSOLE_LOG: o.console_log = arg; break;
                case B_RUN: run = arg; break;
                case B_SSH: ssh = true; break;
                case B_JSON: json = true; break;
                case B_ALLOW_DEGRADED: allow_degraded = true; break;
                }
        }
        if (!o.image)
                return cli_usage_error("boot", "missing IMAGE (kiln boot IMAGE)"), EXIT_USAGE;
        if (run && ssh)
                return cli_usage_error("boot", "--run and --ssh exclude each other"), EXIT_USAGE;
        if (access(o.image, R_OK) < 0) {
                fprintf(stderr, "kiln boot: cannot read image %s: %m\n", o.image);
                return EXIT_USAGE;
        }
        got_signal = 0;
        install_handlers();
        o.cancel = &got_signal;

        _cleanup_vm_ struct vm *vm = NULL;
        int r = vm_new(&o, &vm);
        if (r < 0) {
                fprintf(stderr, "kiln boot: %s\n", vm ? vm_error(vm) : strerror(-r));
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        }
        const struct vm_info *info = vm_info(vm);
        r = vm_start(vm);
        if (info->accel_note)
                fprintf(stderr, "kiln boot: KVM not usable (%s); using TCG (software emulation, slow)\n",
                        info->accel_note);
        if (r < 0) {
                report_failure(vm, "cannot start QEMU", false);
                return got_signal ? 128 + got_signal : EXIT_FAILED;
        }
        fprintf(stderr, "kiln boot: booting %s (%s, %s, %u MiB, %u CPUs) as %s; ssh on 127.0.0.1:%u\n",
                o.image, vm_firmware_to_string(o.firmware), vm_accel_to_string(info->accel),
                o.memory_mib ? o.memory_mib : 1024, o.cpus ? o.cpus : 2, info->hostname, info->ssh_port);
        r = vm_wait_ready(vm);
        if (r < 0) {
                if (r == -ECANCELED) {
                        fprintf(stderr, "kiln boot: interrupted; stopping the VM\n");
                        return 128 + got_signal;
                }
                report_failure(vm, "the guest did not become ready", true);
                if (json)
                        print_json(o.image, &o, vm, NULL, "not-ready", -1);
                return EXIT_FAILED;
        }
        fprintf(stderr, "kiln boot: ready after %.1f s (cloud-init done after %.1f s)\n", secs(info->ssh_ms),
                secs(info->ready_ms));
        /* Ready is not enough: systemd says whether the boot went well. */
        _cleanup_(vm_boot_state_done) struct vm_boot_state bs = {0};
        r = vm_boot_state(vm, 0, &bs);
        if (r == -ECANCELED) {
                fprintf(stderr, "kiln boot: interrupted; stopping the VM\n");
                return 128 + got_signal;
        }
        if (r < 0) {
                report_failure(vm, "cannot tell how the boot ended", true);
                if (json)
                        print_json(o.image, &o, vm, NULL, "no-state", -1);
                return EXIT_FAILED;
        }
        struct check_boot_policy pol = {.allow_degraded = allow_degraded};
        _cleanup_free_ char *verdict = NULL;
        enum check_status vs = check_boot_state_judge(&bs, &pol, &verdict);
        if (vs == CHECK_FAILED) {
                fprintf(stderr, "kiln boot: the boot is not clean: %s\n", verdict);
                if (bs.nfailed)
                        fprintf(stderr, "kiln boot: to look inside anyway: kiln boot --allow-degraded --run "
                                        "'systemctl status --no-pager %s; journalctl -b --no-pager -u %s' %s\n",
                                bs.failed[0], bs.failed[0], o.image);
                if (json)
                        print_json(o.image, &o, vm, &bs, "degraded", -1);
                return EXIT_FAILED;
        }
        if (!streq(bs.state, "running"))
                fprintf(stderr, "kiln boot: warning: %s\n", verdict);

        int status = -1;
        const char *phase = "ready";
        if (run || ssh) {
                r = run ? vm_exec(vm, run, NULL, 0, NULL, &status) : vm_shell(vm, &status);
                if (r < 0) {
                        if (r == -ECANCELED) {
                                fprintf(stderr, "kiln boot: interrupted; stopping the VM\n");
                                return 128 + got_signal;
                        }
                        report_failure(vm, run ? "--run" : "--ssh", false);
                        return EXIT_FAILED;
                }
                phase = run ? "ran" : "shell";
        } else {
                _cleanup_free_ char *cmd = vm_ssh_command_line(vm);
                fprintf(stderr,
                        "kiln boot: the VM runs until Ctrl-C. Connect with:\n  %s\n"
                        "kiln boot: serial console: %s\n",
                        cmd, info->console_log);
                /* waiting for a signal (or for the guest to power off) */
                while (!got_signal && vm_running(vm)) {
                        struct timespec ts = {0, 200 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                if (!got_signal) {
                        fprintf(stderr, "kiln boot: the VM stopped by itself\n");
                        phase = "stopped";
                } else {
                        fprintf(stderr, "kiln boot: stopping the VM\n");
                }
        }
        if (json)
                print_json(o.image, &o, vm, &bs, phase, status);
        return status >= 0 ? status : EXIT_OK;
}
