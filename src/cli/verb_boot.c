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

static double secs(uint64_t ms) {
        return (double)ms / 1000.0;
}

static void print_json(const struct vm_options *o, struct vm *vm,
                       const struct vm_boot_state *bs, const char *phase, int status) {
        const struct vm_info *i = vm_info(vm);
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &out, true);
        json_begin_object(&w);
        json_key(&w, "image");
        json_string(&w, o->image);
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

/* What kiln boot was asked to do. */
struct boot_args {
        struct vm_options o;
        const char *run;
        bool ssh, json, allow_degraded;
};

static int take_image(const struct cli_opt *opt, const char *verb, const char *arg, int argi) {
        struct vm_options *o = opt->value;
        if (o->image)
                return cli_usage_error(verb, "unexpected argument '%s' (one IMAGE only)", arg);
        o->image = arg;
        return 0;
}

static int take_firmware(const struct cli_opt *opt, const char *verb, const char *arg, int argi) {
        if (vm_firmware_from_string(arg, opt->value) < 0)
                return cli_usage_error(verb, "--firmware: expected bios or uefi, not '%s'", arg);
        return 0;
}

static int take_accel(const struct cli_opt *opt, const char *verb, const char *arg, int argi) {
        if (vm_accel_from_string(arg, opt->value) < 0)
                return cli_usage_error(verb, "--accel: expected auto, kvm or tcg, not '%s'", arg);
        return 0;
}

/* Fills *b from argv. True when the verb goes on; else *ret_exit is its
 * exit code (help printed, or a usage error). */
static bool parse_args(struct boot_args *b, int argc, char **argv, int *ret_exit) {
        const struct cli_opt opts[] = {
                CLI_OPT_HELP(),
                CLI_OPT_CALLBACK("firmware", 0, &b->o.firmware, true, take_firmware),
                CLI_OPT_CALLBACK("accel", 0, &b->o.accel, true, take_accel),
                CLI_OPT_UINT("memory", 'm', &b->o.memory_mib, 128, 1u << 20, "--memory: expected MiB (128 or more)"),
                CLI_OPT_UINT("cpus", 0, &b->o.cpus, 1, 255, "--cpus: expected 1 to 255"),
                CLI_OPT_STRING("hostname", 0, &b->o.hostname),
                CLI_OPT_UINT("timeout", 0, &b->o.timeout_s, 1, 86400, "--timeout: expected seconds (1 to 86400)"),
                CLI_OPT_STRING("console-log", 0, &b->o.console_log),
                CLI_OPT_STRING("run", 0, &b->run),
                CLI_OPT_FLAG("ssh", 0, &b->ssh),
                CLI_OPT_FLAG("json", 0, &b->json),
                CLI_OPT_FLAG("allow-degraded", 0, &b->allow_degraded),
                CLI_OPT_ARGS(&b->o, take_image),
                CLI_OPT_END(),
        };
        int r = cli_parse_options(&verb_boot, opts, argc, argv);
        *ret_exit = cli_parse_exit(r);
        if (r != 0)
                return false;
        *ret_exit = EXIT_USAGE;
        if (!b->o.image)
                return cli_usage_error("boot", "missing IMAGE (kiln boot IMAGE)"), false;
        if (b->run && b->ssh)
                return cli_usage_error("boot", "--run and --ssh exclude each other"), false;
        if (access(b->o.image, R_OK) < 0) {
                fprintf(stderr, "kiln boot: cannot read image %s: %m\n", b->o.image);
                return false;
        }
        return true;
}

static int interrupted(void) {
        fprintf(stderr, "kiln boot: interrupted; stopping the VM\n");
        return 128 + got_signal;
}

/* Creates and starts the VM. True when it runs; else *ret_exit is the
 * exit code. */
static bool start(const struct boot_args *b, struct vm **ret_vm, int *ret_exit) {
        int r = vm_new(&b->o, ret_vm);
        struct vm *vm = *ret_vm;
        if (r < 0) {
                fprintf(stderr, "kiln boot: %s\n", vm ? vm_error(vm) : strerror(-r));
                *ret_exit = r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
                return false;
        }
        const struct vm_info *info = vm_info(vm);
        r = vm_start(vm);
        if (info->accel_note)
                fprintf(stderr, "kiln boot: KVM not usable (%s); using TCG (software emulation, slow)\n",
                        info->accel_note);
        if (r < 0) {
                report_failure(vm, "cannot start QEMU", false);
                *ret_exit = got_signal ? 128 + got_signal : EXIT_FAILED;
                return false;
        }
        fprintf(stderr, "kiln boot: booting %s (%s, %s, %u MiB, %u CPUs) as %s; ssh on 127.0.0.1:%u\n",
                b->o.image, vm_firmware_to_string(b->o.firmware), vm_accel_to_string(info->accel),
                b->o.memory_mib ? b->o.memory_mib : 1024, b->o.cpus ? b->o.cpus : 2, info->hostname,
                info->ssh_port);
        return true;
}

/* A wait for the guest failed with r: says why (with the end of the serial
 * console) and, with --json, writes the summary for phase. Returns false,
 * with the exit code in *ret_exit. */
static bool not_usable(const struct boot_args *b, struct vm *vm, int r, const char *what, const char *phase,
                       int *ret_exit) {
        if (r == -ECANCELED) {
                *ret_exit = interrupted();
                return false;
        }
        report_failure(vm, what, true);
        if (b->json)
                print_json(&b->o, vm, NULL, phase, -1);
        *ret_exit = EXIT_FAILED;
        return false;
}

/* Waits until the guest is ready and systemd has judged its boot (into
 * *bs). True when the boot is usable; else *ret_exit is the exit code. */
static bool wait_usable(const struct boot_args *b, struct vm *vm, struct vm_boot_state *bs, int *ret_exit) {
        const struct vm_info *info = vm_info(vm);
        *ret_exit = EXIT_FAILED;
        int r = vm_wait_ready(vm);
        if (r < 0)
                return not_usable(b, vm, r, "the guest did not become ready", "not-ready", ret_exit);
        fprintf(stderr, "kiln boot: ready after %.1f s (cloud-init done after %.1f s)\n", secs(info->ssh_ms),
                secs(info->ready_ms));
        /* Ready is not enough: systemd says whether the boot went well. */
        r = vm_boot_state(vm, 0, bs);
        if (r < 0)
                return not_usable(b, vm, r, "cannot tell how the boot ended", "no-state", ret_exit);
        struct check_boot_policy pol = {.allow_degraded = b->allow_degraded};
        _cleanup_free_ char *verdict = NULL;
        if (check_boot_state_judge(bs, &pol, &verdict) == CHECK_FAILED) {
                fprintf(stderr, "kiln boot: the boot is not clean: %s\n", verdict);
                if (bs->nfailed)
                        fprintf(stderr, "kiln boot: to look inside anyway: kiln boot --allow-degraded --run "
                                        "'systemctl status --no-pager %s; journalctl -b --no-pager -u %s' %s\n",
                                bs->failed[0], bs->failed[0], b->o.image);
                if (b->json)
                        print_json(&b->o, vm, bs, "degraded", -1);
                return false;
        }
        if (!streq(bs->state, "running"))
                fprintf(stderr, "kiln boot: warning: %s\n", verdict);
        return true;
}

/* Keeps the VM until a signal (or until the guest powers off); the phase
 * for the JSON summary. */
static const char *hold(struct vm *vm) {
        _cleanup_free_ char *cmd = vm_ssh_command_line(vm);
        fprintf(stderr,
                "kiln boot: the VM runs until Ctrl-C. Connect with:\n  %s\n"
                "kiln boot: serial console: %s\n",
                cmd, vm_info(vm)->console_log);
        while (!got_signal && vm_running(vm)) {
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (got_signal) {
                fprintf(stderr, "kiln boot: stopping the VM\n");
                return "ready";
        }
        fprintf(stderr, "kiln boot: the VM stopped by itself\n");
        return "stopped";
}

static int boot_run(struct cli *cli, int argc, char **argv) {
        struct boot_args b = {0};
        int ret;
        if (!parse_args(&b, argc, argv, &ret))
                return ret;
        got_signal = 0;
        install_handlers();
        b.o.cancel = &got_signal;
        _cleanup_vm_ struct vm *vm = NULL;
        _cleanup_(vm_boot_state_done) struct vm_boot_state bs = {0};
        if (!start(&b, &vm, &ret) || !wait_usable(&b, vm, &bs, &ret))
                return ret;
        int status = -1;
        const char *phase;
        if (b.run || b.ssh) {
                int r = b.run ? vm_exec(vm, b.run, NULL, 0, NULL, &status) : vm_shell(vm, &status);
                if (r == -ECANCELED)
                        return interrupted();
                if (r < 0) {
                        report_failure(vm, b.run ? "--run" : "--ssh", false);
                        return EXIT_FAILED;
                }
                phase = b.run ? "ran" : "shell";
        } else {
                phase = hold(vm);
        }
        if (b.json)
                print_json(&b.o, vm, &bs, phase, status);
        return status >= 0 ? status : EXIT_OK;
}
