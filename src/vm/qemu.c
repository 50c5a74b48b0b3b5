/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qemu.c — the life cycle of one VM: temp dir, key pair, seed ISO, QEMU,
 * readiness, teardown. See vm.h for the contract.
 *
 * Invariants:
 *   - everything the VM creates lives in tmp_dir (0700), except the console
 *     log when the caller named one; vm_free removes tmp_dir in every state;
 *   - QEMU is started only by start_qemu and reaped only by reap(); once
 *     reaped, pid is 0, so no signal ever reaches a recycled pid;
 *   - the image is attached with snapshot=on: QEMU writes to a temporary
 *     overlay, never to the image;
 *   - "ready" means positive evidence: the marker with this VM's nonce on
 *     the serial console, then a successful SSH login. No fixed sleeps: every
 *     wait polls its condition against a deadline.
 */
#include "vm/vm-internal.h"

#include "vm/cidata.h"
#include "image/format.h"

#include "os/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define PORT_ATTEMPTS 8
#define STOP_GRACE_MS 5000
#define POLL_MS 100
#define SSH_RETRY_MS 1000
/* Serial logs are read incrementally; this is how much of the end is kept
 * for vm_console_tail. */
#define TAIL_MAX (64u << 10)

static void sleep_ms(unsigned ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* an EINTR just ends the nap early: callers re-check */
}

int vm_fail(struct vm *vm, int r, const char *fmt, ...) {
        va_list ap;
        strbuf_reset(&vm->err);
        va_start(ap, fmt);
        strbuf_vaddf(&vm->err, fmt, ap);
        va_end(ap);
        return r;
}

void vm_strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

/* What the programs kiln starts for a VM (QEMU, ssh, ssh-keygen, qemu-img)
 * get of kiln's environment: the search path, where temporary files go
 * (QEMU's snapshot overlay), the terminal and locale for an interactive
 * shell; nothing else (no KILN_VAR_*, no credentials). */
char **vm_tool_env(void) {
        static const char *const names[] = {"PATH", "HOME", "TMPDIR", "TERM", "LANG",
                                             "LC_ALL", "LC_CTYPE", "USER", "LOGNAME", NULL};
        return proc_env_from_host(names, NULL);
}

int vm_run(struct vm *vm, char *const argv[], int out_fd, uint64_t deadline_ms, int *ret_code) {
        uint64_t now = now_ms();
        if (deadline_ms && now >= deadline_ms)
                return -ETIMEDOUT;
        struct proc_opts po = {.argv = argv, .envp = vm->env, .stdin_fd = PROC_NULL,
                               .stdout_fd = out_fd, .stderr_fd = out_fd,
                               .timeout_ms = deadline_ms ? deadline_ms - now : 0,
                               .cancel = vm->o.cancel};
        struct proc_status st;
        int r = proc_run(&po, &st);
        if (r < 0)
                return r;
        if (st.cancelled || st.timed_out)
                return st.cancelled ? -ECANCELED : -ETIMEDOUT;
        *ret_code = st.exit_code;
        return 0;
}

/* ---- string tables ---------------------------------------------------------- */

static const char *const firmware_names[] = {[VM_FIRMWARE_BIOS] = "bios", [VM_FIRMWARE_UEFI] = "uefi"};
static const char *const accel_names[] = {[VM_ACCEL_AUTO] = "auto", [VM_ACCEL_KVM] = "kvm", [VM_ACCEL_TCG] = "tcg"};

int vm_firmware_from_string(const char *s, enum vm_firmware *ret) {
        for (size_t i = 0; i < ARRAY_SIZE(firmware_names); i++)
                if (s && streq(s, firmware_names[i])) {
                        *ret = (enum vm_firmware)i;
                        return 0;
                }
        return -EINVAL;
}

int vm_accel_from_string(const char *s, enum vm_accel *ret) {
        for (size_t i = 0; i < ARRAY_SIZE(accel_names); i++)
                if (s && streq(s, accel_names[i])) {
                        *ret = (enum vm_accel)i;
                        return 0;
                }
        return -EINVAL;
}

const char *vm_accel_to_string(enum vm_accel a) {
        return (unsigned)a < ARRAY_SIZE(accel_names) ? accel_names[a] : "?";
}

const char *vm_firmware_to_string(enum vm_firmware f) {
        return (unsigned)f < ARRAY_SIZE(firmware_names) ? firmware_names[f] : "?";
}

/* ---- setup ------------------------------------------------------------------ */

static void random_hex(char *out, size_t nbytes) {
        unsigned char b[32];
        if (nbytes > sizeof(b))
                nbytes = sizeof(b);
        size_t got = 0;
        while (got < nbytes) {
                ssize_t n = getrandom(b + got, nbytes - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        abort(); /* getrandom cannot fail on Linux >= 3.17 otherwise */
                }
                got += (size_t)n;
        }
        hex_encode(b, nbytes, out);
}

/* A hostname goes into YAML and the guest's /etc/hostname: one DNS label. */
static bool valid_hostname(const char *h) {
        size_t n = strlen(h);
        if (n == 0 || n > 63 || h[0] == '-' || h[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
                      (h[i] >= '0' && h[i] <= '9') || h[i] == '-'))
                        return false;
        return true;
}

/* Runs a helper program quietly; on failure its output is in vm_error. */
static int run_tool(struct vm *vm, char *const argv[]) {
        _cleanup_free_ char *log = xasprintf("%s/tool.log", vm->tmp_dir);
        _cleanup_close_ int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return vm_fail(vm, -errno, "cannot create %s: %s", log, strerror(errno));
        int st;
        int r = vm_run(vm, argv, fd, now_ms() + 60000, &st);
        if (r == -ECANCELED || r == -ETIMEDOUT)
                return vm_fail(vm, r, "%s: %s", argv[0], strerror(-r));
        if (r < 0)
                return vm_fail(vm, r, "cannot run %s: %s", argv[0], strerror(-r));
        if (st != 0) {
                _cleanup_free_ char *text = NULL;
                size_t len;
                if (read_file(log, 4096, &text, &len) < 0)
                        text = xstrdup("");
                while (len > 0 && text[len - 1] == '\n')
                        text[--len] = 0;
                unlink(log);
                return vm_fail(vm, -EIO, "%s failed (exit %d)%s%s", argv[0], st,
                               *text ? ": " : "", text);
        }
        unlink(log);
        return 0;
}

static int copy_file(const char *from, const char *to) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file(from, 64u << 20, &data, &len);
        if (r < 0)
                return r;
        return write_file(to, data, len, 0600, 0);
}

/* The seed: meta-data names the instance and host; user-data authorises the
 * key for root and prints the readiness marker on the serial port once
 * cloud-init's final stage runs (after SSH is configured). The marker is
 * printed as two halves so the complete string appears nowhere but in the
 * guest's output. */
static int write_seed(struct vm *vm, const char *nonce) {
        _cleanup_free_ char *pub_path = xasprintf("%s.pub", vm->key_path);
        _cleanup_free_ char *pub = NULL;
        size_t len;
        int r = read_file(pub_path, 16384, &pub, &len);
        if (r < 0)
                return vm_fail(vm, r, "cannot read %s: %s", pub_path, strerror(-r));
        while (len > 0 && (pub[len - 1] == '\n' || pub[len - 1] == '\r'))
                pub[--len] = 0;
        size_t half = strlen(nonce) / 2;
        _cleanup_free_ char *user_data = xasprintf(
                "#cloud-config\n"
                "hostname: %s\n"
                "preserve_hostname: false\n"
                "disable_root: false\n"
                "ssh_pwauth: false\n"
                "ssh_authorized_keys:\n"
                "  - \"%s\"\n"
                "runcmd:\n"
                "  - [sh, -c, \"printf 'kiln-ready-%%s%%s\\\\n' %.*s %s > /dev/%s\"]\n",
                vm->hostname, pub, (int)half, nonce, nonce + half, vm->arch->console);
        _cleanup_free_ char *meta_data = xasprintf("instance-id: kiln-%s\nlocal-hostname: %s\n", nonce,
                                                   vm->hostname);
        struct cidata c = {.user_data = user_data, .meta_data = meta_data};
        r = cidata_write(vm->seed_path, &c);
        if (r < 0)
                return vm_fail(vm, r, "cannot write the seed ISO %s: %s", vm->seed_path, strerror(-r));
        return 0;
}

static int setup(struct vm *vm) {
        struct stat st;
        if (stat(vm->image, &st) < 0)
                return vm_fail(vm, -errno, "cannot use image %s: %s", vm->image, strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return vm_fail(vm, -EINVAL, "image %s is not a file", vm->image);
        _cleanup_close_ int fd = open(vm->image, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return vm_fail(vm, -errno, "cannot open image %s: %s", vm->image, strerror(errno));
        /* QEMU is told the format (never left to guess from the bytes). */
        const struct format_writer *fw = format_probe_fd(fd);
        if (fw && !(fw->caps & FORMAT_BOOTABLE))
                return vm_fail(vm, -EINVAL, "image %s is a %s artifact, which QEMU does not boot as it is",
                               vm->image, fw->name);
        vm->format = !fw ? "raw" : fw->qemu_driver ? fw->qemu_driver : fw->name;
        if (vm->extra_iso && access(vm->extra_iso, R_OK) < 0)
                return vm_fail(vm, -errno, "cannot read %s: %s", vm->extra_iso, strerror(errno));
        const struct arch *a = vm->arch;
        if (vm->o.firmware == VM_FIRMWARE_UEFI &&
            (access(a->uefi_code, R_OK) < 0 || access(a->uefi_vars, R_OK) < 0))
                return vm_fail(vm, -ENOENT, "UEFI firmware %s or %s is missing (package %s)", a->uefi_code,
                               a->uefi_vars, a->uefi_package);

        char nonce[33];
        random_hex(nonce, 16);
        if (!vm->hostname) {
                char h[9];
                random_hex(h, 4);
                vm->hostname = xasprintf("kiln-%s", h);
        }
        vm->info.hostname = vm->hostname;
        vm->marker = xasprintf("kiln-ready-%s", nonce);

        const char *parent = vm->tmp_parent ? vm->tmp_parent : getenv("TMPDIR");
        if (!parent || !*parent)
                parent = "/tmp";
        _cleanup_free_ char *tmpl = xasprintf("%s/kiln-vm.XXXXXX", parent);
        if (!mkdtemp(tmpl))
                return vm_fail(vm, -errno, "cannot create a temp dir in %s: %s", parent, strerror(errno));
        vm->tmp_dir = TAKE_PTR(tmpl);
        vm->info.tmp_dir = vm->tmp_dir;
        vm->key_path = xasprintf("%s/id_ed25519", vm->tmp_dir);
        vm->info.key_path = vm->key_path;
        vm->seed_path = xasprintf("%s/seed.iso", vm->tmp_dir);
        vm->qemu_log = xasprintf("%s/qemu.log", vm->tmp_dir);
        if (!vm->console_log)
                vm->console_log = xasprintf("%s/console.log", vm->tmp_dir);
        vm->info.console_log = vm->console_log;

        char *keygen[] = {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kiln-boot",
                          "-f", vm->key_path, NULL};
        int r = run_tool(vm, keygen);
        if (r < 0)
                return r == -ENOENT ? vm_fail(vm, r, "ssh-keygen not found (package openssh-client)") : r;
        r = write_seed(vm, nonce);
        if (r < 0)
                return r;
        if (vm->o.firmware == VM_FIRMWARE_UEFI) {
                vm->vars_path = xasprintf("%s/UEFI_VARS.fd", vm->tmp_dir);
                r = copy_file(vm->arch->uefi_vars, vm->vars_path);
                if (r < 0)
                        return vm_fail(vm, r, "cannot copy %s: %s", vm->arch->uefi_vars, strerror(-r));
        }
        return 0;
}

int vm_new(const struct vm_options *opts, struct vm **ret) {
        if (!ret)
                return -EINVAL;
        *ret = NULL;
        if (!opts || !opts->image)
                return -EINVAL;
        struct vm *vm = xcalloc(1, sizeof(*vm));
        vm->qemu_proc = (struct proc)PROC_INIT;
        vm->env = vm_tool_env();
        vm->o = *opts;
        vm->image = xstrdup(opts->image);
        vm->console_log = xstrdup_null(opts->console_log);
        vm->extra_iso = xstrdup_null(opts->extra_iso);
        vm->tmp_parent = xstrdup_null(opts->tmp_parent);
        vm->arch = opts->arch ? arch_find(opts->arch) : arch_default();
        vm->qemu = xstrdup_null(opts->qemu ? opts->qemu : vm->arch ? vm->arch->qemu_system : NULL);
        vm->tag = xstrdup_null(opts->tag);
        vm->hostname = xstrdup_null(opts->hostname);
        vm->o.image = vm->image;
        vm->o.console_log = vm->console_log;
        vm->o.extra_iso = vm->extra_iso;
        vm->o.tmp_parent = vm->tmp_parent;
        vm->o.qemu = vm->qemu;
        vm->o.tag = vm->tag;
        vm->o.hostname = vm->hostname;
        vm->o.arch = vm->arch ? vm->arch->name : NULL;
        if (!vm->o.memory_mib)
                vm->o.memory_mib = 1024;
        if (!vm->o.cpus)
                vm->o.cpus = 2;
        vm->info.user = "root";
        vm->info.hostname = vm->hostname;
        vm->info.accel = vm->o.accel;
        *ret = vm;
        if ((unsigned)opts->firmware >= ARRAY_SIZE(firmware_names) ||
            (unsigned)opts->accel >= ARRAY_SIZE(accel_names))
                return vm_fail(vm, -EINVAL, "unknown firmware or accelerator");
        if (!vm->arch)
                return vm_fail(vm, -EINVAL, "unknown architecture '%s'", opts->arch);
        if (opts->firmware == VM_FIRMWARE_BIOS && !vm->arch->bios)
                return vm_fail(vm, -EINVAL, "%s has no legacy BIOS: boot it with UEFI", vm->arch->name);
        if (vm->hostname && !valid_hostname(vm->hostname))
                return vm_fail(vm, -EINVAL,
                               "'%s' is not a valid hostname (letters, digits and '-', at most 63, "
                               "not starting or ending with '-')",
                               vm->hostname);
        return setup(vm);
}

/* ---- QEMU ------------------------------------------------------------------- */

static bool reap(struct vm *vm) {
        if (vm->qemu_proc.pid <= 0)
                return true;
        struct proc_status st = {.exit_code = 255};
        if (proc_try_reap(&vm->qemu_proc, &st) == 0)
                return false;
        vm->exit_code = st.exit_code;
        vm->info.qemu_pid = 0;
        return true;
}

bool vm_running(struct vm *vm) {
        return vm && vm->qemu_proc.pid > 0 && !reap(vm);
}

/* A free TCP port on 127.0.0.1, by binding port 0. Another process may take
 * it before QEMU does; start_qemu detects that and tries again. */
static int free_port(unsigned *ret) {
        _cleanup_close_ int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -errno;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(s, (struct sockaddr *)&a, &l) < 0)
                return -errno;
        *ret = ntohs(a.sin_port);
        return 0;
}

/* True when something accepts TCP connections on 127.0.0.1:port. */
static bool port_accepts(unsigned port) {
        _cleanup_close_ int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return false;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        return connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
}

/* The last non-empty line of QEMU's own output (its error message). */
static char *qemu_message(const struct vm *vm) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (read_file(vm->qemu_log, 1u << 20, &text, &len) < 0 || len == 0)
                return xstrdup("");
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
                text[--len] = 0;
        char *nl = strrchr(text, '\n');
        return xstrdup(nl ? nl + 1 : text);
}

static void addv(char ***v, size_t *n, size_t *cap, char *s) {
        GROW(*v, *n, *cap);
        (*v)[(*n)++] = s;
}

static char **qemu_argv(const struct vm *vm, enum vm_accel accel) {
        char **v = NULL;
        size_t n = 0, cap = 0;
        addv(&v, &n, &cap, xstrdup(vm->qemu));
        if (vm->tag) {
                addv(&v, &n, &cap, xstrdup("-name"));
                addv(&v, &n, &cap, xstrdup(vm->tag));
        }
        addv(&v, &n, &cap, xstrdup("-machine"));
        addv(&v, &n, &cap,
             xasprintf("%s,accel=%s", vm->arch->machine, accel == VM_ACCEL_KVM ? "kvm" : "tcg"));
        addv(&v, &n, &cap, xstrdup("-cpu"));
        addv(&v, &n, &cap, xstrdup(accel == VM_ACCEL_KVM ? "host" : vm->arch->tcg_cpu));
        addv(&v, &n, &cap, xstrdup("-m"));
        addv(&v, &n, &cap, xasprintf("%u", vm->o.memory_mib));
        addv(&v, &n, &cap, xstrdup("-smp"));
        addv(&v, &n, &cap, xasprintf("%u", vm->o.cpus));
        /* only what kiln asks for: no VGA, no default NIC, no monitor */
        addv(&v, &n, &cap, xstrdup("-nodefaults"));
        addv(&v, &n, &cap, xstrdup("-display"));
        addv(&v, &n, &cap, xstrdup("none"));
        addv(&v, &n, &cap, xstrdup("-no-reboot"));
        addv(&v, &n, &cap, xstrdup("-serial"));
        addv(&v, &n, &cap, xasprintf("file:%s", vm->console_log));
        if (vm->o.firmware == VM_FIRMWARE_UEFI) {
                addv(&v, &n, &cap, xstrdup("-drive"));
                addv(&v, &n, &cap,
                     xasprintf("if=pflash,format=raw,unit=0,readonly=on,file=%s", vm->arch->uefi_code));
                addv(&v, &n, &cap, xstrdup("-drive"));
                addv(&v, &n, &cap, xasprintf("if=pflash,format=raw,unit=1,file=%s", vm->vars_path));
        }
        /* snapshot=on: writes go to a temporary overlay, never to the image */
        addv(&v, &n, &cap, xstrdup("-drive"));
        addv(&v, &n, &cap, xasprintf("file=%s,format=%s,if=virtio,snapshot=on,cache=unsafe", vm->image,
                                     vm->format));
        addv(&v, &n, &cap, xstrdup("-drive"));
        addv(&v, &n, &cap, xasprintf("file=%s,format=raw,if=virtio,readonly=on", vm->seed_path));
        if (vm->extra_iso) {
                addv(&v, &n, &cap, xstrdup("-drive"));
                addv(&v, &n, &cap, xasprintf("file=%s,format=raw,if=virtio,readonly=on", vm->extra_iso));
        }
        addv(&v, &n, &cap, xstrdup("-netdev"));
        addv(&v, &n, &cap, xasprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%u-:22", vm->info.ssh_port));
        addv(&v, &n, &cap, xstrdup("-device"));
        addv(&v, &n, &cap, xstrdup("virtio-net-pci,netdev=net0"));
        addv(&v, &n, &cap, xstrdup("-device"));
        addv(&v, &n, &cap, xstrdup("virtio-rng-pci"));
        addv(&v, &n, &cap, NULL);
        return v;
}

/* Starts QEMU once on vm->info.ssh_port. 0 when it runs and owns the port;
 * -EADDRINUSE when the port was taken (QEMU said so and exited); other
 * -errno for other failures. */
static int start_qemu_once(struct vm *vm, enum vm_accel accel) {
        _cleanup_close_ int con = open(vm->console_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (con < 0)
                return vm_fail(vm, -errno, "cannot create %s: %s", vm->console_log, strerror(errno));
        _cleanup_close_ int log = open(vm->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log < 0)
                return vm_fail(vm, -errno, "cannot create %s: %s", vm->qemu_log, strerror(errno));
        char **argv = qemu_argv(vm, accel);
        /* QEMU leads its own process group: a terminal's Ctrl-C does not
         * reach it, and vm_stop stops it as a group */
        struct proc_opts po = {.argv = argv, .envp = vm->env, .stdin_fd = PROC_NULL,
                               .stdout_fd = log, .stderr_fd = log, .kill_grace_ms = STOP_GRACE_MS};
        proc_done(&vm->qemu_proc); /* the pidfd of an earlier attempt */
        int r = proc_spawn(&po, &vm->qemu_proc);
        vm_strv_free(argv);
        if (r == -ENOENT)
                return vm_fail(vm, r, "%s not found (package %s)", vm->qemu, vm->arch->qemu_package);
        if (r < 0)
                return vm_fail(vm, r, "cannot run %s: %s", vm->qemu, strerror(-r));
        vm->info.qemu_pid = vm->qemu_proc.pid;
        vm->start_ms = now_ms();
        /* QEMU sets up host forwarding before the guest runs: wait until the
         * port answers (QEMU owns it) or QEMU exits (it could not bind). */
        uint64_t deadline = vm->start_ms + 30000;
        for (;;) {
                if (reap(vm)) {
                        _cleanup_free_ char *msg = qemu_message(vm);
                        if (strstr(msg, "host forwarding") || strstr(msg, "Address already in use"))
                                return -EADDRINUSE;
                        return vm_fail(vm, -ECHILD, "QEMU exited at once (status %d): %s",
                                       vm->exit_code, *msg ? msg : "no message");
                }
                if (port_accepts(vm->info.ssh_port))
                        return 0;
                if (vm->o.cancel && *vm->o.cancel)
                        return vm_fail(vm, -ECANCELED, "interrupted");
                if (now_ms() >= deadline)
                        return vm_fail(vm, -ETIMEDOUT, "QEMU did not open port %u within 30 s",
                                       vm->info.ssh_port);
                sleep_ms(20);
        }
}

int vm_start(struct vm *vm) {
        if (!vm->tmp_dir)
                return vm_fail(vm, -EINVAL, "the VM was not set up");
        if (vm->qemu_proc.pid > 0)
                return vm_fail(vm, -EBUSY, "QEMU is already running");
        enum vm_accel accel = vm->o.accel;
        if (accel == VM_ACCEL_AUTO && vm->arch != arch_host()) {
                /* KVM runs the host's own architecture only */
                accel = VM_ACCEL_TCG;
                free(vm->accel_note);
                vm->accel_note = xasprintf("the guest is %s, the host is not", vm->arch->name);
        } else if (accel == VM_ACCEL_AUTO) {
                const char *why = NULL;
                accel = vm_kvm_probe(3000, &why) >= 0 ? VM_ACCEL_KVM : VM_ACCEL_TCG;
                free(vm->accel_note);
                vm->accel_note = xstrdup_null(why);
        }
        vm->info.accel = accel;
        vm->info.accel_note = vm->accel_note;
        int r = -EADDRINUSE;
        for (int attempt = 0; attempt < PORT_ATTEMPTS && r == -EADDRINUSE; attempt++) {
                r = free_port(&vm->info.ssh_port);
                if (r < 0)
                        return vm_fail(vm, r, "cannot find a free port on 127.0.0.1: %s", strerror(-r));
                r = start_qemu_once(vm, accel);
        }
        if (r == -EADDRINUSE)
                return vm_fail(vm, r, "no free port for SSH forwarding after %d attempts", PORT_ATTEMPTS);
        return r;
}

/* ---- readiness -------------------------------------------------------------- */

/* Looks for the marker in the console log from *off on; `carry` keeps the
 * last bytes of the previous chunk so a marker split across reads is found. */
static bool marker_seen(const struct vm *vm, off_t *off, struct strbuf *carry) {
        _cleanup_close_ int fd = open(vm->console_log, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        char buf[65536];
        size_t mlen = strlen(vm->marker);
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof(buf), *off);
                if (n <= 0)
                        return false;
                *off += n;
                strbuf_add(carry, buf, (size_t)n);
                if (memmem(carry->buf, carry->len, vm->marker, mlen))
                        return true;
                if (carry->len > mlen) {
                        memmove(carry->buf, carry->buf + carry->len - mlen, mlen);
                        carry->len = mlen;
                        carry->buf[mlen] = 0;
                }
        }
}

static int exited_early(struct vm *vm, const char *stage) {
        _cleanup_free_ char *msg = qemu_message(vm);
        return vm_fail(vm, -ECHILD, "QEMU exited (status %d) %s%s%s", vm->exit_code, stage,
                       *msg ? ": " : "", msg);
}

int vm_wait_ready(struct vm *vm) {
        if (vm->qemu_proc.pid <= 0)
                return vm_fail(vm, -ECHILD, "QEMU is not running");
        unsigned timeout_s = vm->o.timeout_s ? vm->o.timeout_s : vm->info.accel == VM_ACCEL_KVM ? 180 : 600;
        uint64_t deadline = vm->start_ms + (uint64_t)timeout_s * 1000;
        off_t off = 0;
        _cleanup_strbuf_ struct strbuf carry = STRBUF_INIT;
        for (;;) {
                if (marker_seen(vm, &off, &carry))
                        break;
                if (reap(vm))
                        return exited_early(vm, "before the guest was ready");
                if (vm->o.cancel && *vm->o.cancel)
                        return vm_fail(vm, -ECANCELED, "interrupted");
                if (now_ms() >= deadline)
                        return vm_fail(vm, -ETIMEDOUT,
                                       "the guest did not signal readiness within %u s (no \"kiln-ready\" "
                                       "line from cloud-init on the serial console)",
                                       timeout_s);
                sleep_ms(POLL_MS);
        }
        vm->info.ready_ms = now_ms() - vm->start_ms;
        /* cloud-init has configured SSH; a login proves it. Retry while sshd
         * may still be starting (a positive check bounded by the deadline). */
        for (;;) {
                char **argv = vm_ssh_argv(vm, false, "true");
                int st;
                int r = vm_run(vm, argv, PROC_NULL, deadline, &st);
                vm_strv_free(argv);
                if (r < 0 && r != -ECANCELED && r != -ETIMEDOUT)
                        return vm_fail(vm, r, r == -ENOENT ? "ssh not found (package openssh-client)"
                                                           : "cannot run ssh: %s", strerror(-r));
                if (r == -ECANCELED)
                        return vm_fail(vm, r, "interrupted");
                if (r == 0 && st == 0)
                        break;
                if (reap(vm))
                        return exited_early(vm, "before SSH answered");
                if (r == -ETIMEDOUT || now_ms() >= deadline)
                        return vm_fail(vm, -ETIMEDOUT,
                                       "the guest signalled readiness but SSH as root on port %u did not "
                                       "work within %u s",
                                       vm->info.ssh_port, timeout_s);
                uint64_t next = now_ms() + SSH_RETRY_MS;
                while (now_ms() < next && !(vm->o.cancel && *vm->o.cancel))
                        sleep_ms(POLL_MS);
        }
        vm->info.ssh_ms = now_ms() - vm->start_ms;
        vm->ready = true;
        return 0;
}

/* ---- teardown and accessors ----------------------------------------------- */

int vm_stop(struct vm *vm) {
        if (!vm || vm->qemu_proc.pid <= 0)
                return 0;
        if (reap(vm))
                return 0;
        /* SIGTERM to QEMU's group, SIGKILL after STOP_GRACE_MS */
        struct proc_status st = {.exit_code = 255};
        (void)proc_stop(&vm->qemu_proc, &st);
        vm->exit_code = st.exit_code;
        vm->info.qemu_pid = 0;
        return 0;
}

struct vm *vm_free(struct vm *vm) {
        if (!vm)
                return NULL;
        vm_stop(vm);
        proc_done(&vm->qemu_proc);
        proc_env_free(vm->env);
        if (vm->tmp_dir)
                (void)rm_rf(vm->tmp_dir); /* only files kiln put there */
        free(vm->image);
        free(vm->console_log);
        free(vm->extra_iso);
        free(vm->tmp_parent);
        free(vm->qemu);
        free(vm->tag);
        free(vm->tmp_dir);
        free(vm->key_path);
        free(vm->seed_path);
        free(vm->vars_path);
        free(vm->qemu_log);
        free(vm->hostname);
        free(vm->marker);
        free(vm->accel_note);
        strbuf_free(&vm->err);
        free(vm);
        return NULL;
}

const struct vm_info *vm_info(const struct vm *vm) {
        return &vm->info;
}

const char *vm_error(const struct vm *vm) {
        return strbuf_str(&vm->err);
}

char *vm_console_tail(const struct vm *vm, unsigned lines) {
        _cleanup_close_ int fd = open(vm->console_log, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return xstrdup("");
        struct stat st;
        if (fstat(fd, &st) < 0)
                return xstrdup("");
        off_t from = st.st_size > (off_t)TAIL_MAX ? st.st_size - (off_t)TAIL_MAX : 0;
        _cleanup_free_ char *raw = xmalloc(TAIL_MAX);
        ssize_t n = pread(fd, raw, TAIL_MAX, from);
        if (n <= 0)
                return xstrdup("");
        /* Clean: drop CRs and terminal escape sequences (systemd's colours),
         * replace other control bytes. */
        struct strbuf sb = STRBUF_INIT;
        for (ssize_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)raw[i];
                if (c == 0x1b) {
                        if (i + 1 < n && raw[i + 1] == '[') {
                                i += 2;
                                while (i < n && !((raw[i] >= '@' && raw[i] <= '~')))
                                        i++;
                        }
                        continue;
                }
                if (c == '\r')
                        continue;
                if (c < 0x20 && c != '\n' && c != '\t')
                        c = '?';
                strbuf_addc(&sb, (char)c);
        }
        /* keep the last `lines` lines */
        const char *s = strbuf_str(&sb);
        size_t len = sb.len;
        while (len > 0 && s[len - 1] == '\n')
                len--;
        size_t start = len;
        unsigned seen = 0;
        while (start > 0) {
                if (s[start - 1] == '\n' && ++seen == lines)
                        break;
                start--;
        }
        char *out = xstrndup(s + start, len - start);
        strbuf_free(&sb);
        return out;
}
