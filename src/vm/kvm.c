/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kvm.c — does KVM really work here?
 *
 * /dev/kvm existing is not enough: on some hosts (nested virtualisation,
 * broken hypervisors) KVM_CREATE_VM or KVM_RUN never returns. So the probe
 * runs a real guest: a child process creates a VM with the KVM ioctls, maps
 * one page with three real-mode instructions (mov al, 42; out 0x10, al; hlt)
 * and runs it; KVM works when KVM_RUN comes back with the expected port I/O
 * exit. The parent waits for the child's one-byte verdict with a deadline
 * and kills it when the deadline passes — a hung ioctl cannot hang kiln.
 *
 * That is not enough either: on some hosts the ioctls work but the guest's
 * clock does not (seen here: GRUB's menu countdown never ends under KVM,
 * and SeaBIOS needs seconds for what takes 0.2 s). So a second stage boots
 * QEMU itself with -accel kvm -cpu host (as vm_start would) on a one-sector payload that sleeps (hlt)
 * until the BIOS timer tick counter has advanced three ticks, then writes
 * to QEMU's isa-debug-exit port; QEMU exits with status 67. KVM is used
 * only when that happens within the deadline.
 */
#include "vm/vm-internal.h"

#include "base/arch.h"
#include "base/util.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

/* Verdicts the child writes to the pipe (one byte). */
enum {
        PROBE_OK = 'k',
        PROBE_NO_DEV = 'd',
        PROBE_API = 'a',
        PROBE_CREATE_VM = 'v',
        PROBE_MEMORY = 'm',
        PROBE_VCPU = 'c',
        PROBE_REGS = 'r',
        PROBE_RUN = 'x',
        PROBE_WRONG_EXIT = 'e',
};

static const char *verdict_text(char v) {
        switch (v) {
        case PROBE_NO_DEV: return "cannot open /dev/kvm";
        case PROBE_API: return "/dev/kvm has an unexpected API version";
        case PROBE_CREATE_VM: return "KVM_CREATE_VM failed";
        case PROBE_MEMORY: return "KVM_SET_USER_MEMORY_REGION failed";
        case PROBE_VCPU: return "KVM_CREATE_VCPU failed";
        case PROBE_REGS: return "setting vCPU registers failed";
        case PROBE_RUN: return "KVM_RUN failed";
        case PROBE_WRONG_EXIT: return "the probe guest did not run as expected";
        default: return "the KVM probe failed";
        }
}

/* In the child: run the three-instruction guest; returns a verdict. */
static char probe_child(void) {
        static const uint8_t code[] = {0xb0, 0x2a, 0xe6, 0x10, 0xf4}; /* mov al,42; out 0x10,al; hlt */
        int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0)
                return PROBE_NO_DEV;
        if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
                return PROBE_API;
        int vmfd = ioctl(kvm, KVM_CREATE_VM, 0UL);
        if (vmfd < 0)
                return PROBE_CREATE_VM;
        uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                return PROBE_MEMORY;
        memcpy(mem, code, sizeof(code));
        struct kvm_userspace_memory_region region = {
                .slot = 0,
                .guest_phys_addr = 0x1000,
                .memory_size = 0x1000,
                .userspace_addr = (uintptr_t)mem,
        };
        if (ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                return PROBE_MEMORY;
        int vcpu = ioctl(vmfd, KVM_CREATE_VCPU, 0UL);
        if (vcpu < 0)
                return PROBE_VCPU;
        int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (run_size < (int)sizeof(struct kvm_run))
                return PROBE_VCPU;
        struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
        if (run == MAP_FAILED)
                return PROBE_VCPU;
        struct kvm_sregs sregs;
        if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
                return PROBE_REGS;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
                return PROBE_REGS;
        struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
        if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
                return PROBE_REGS;
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
                return PROBE_RUN;
        if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT ||
            run->io.port != 0x10 || run->io.size != 1 ||
            ((uint8_t *)run)[run->io.data_offset] != 42)
                return PROBE_WRONG_EXIT;
        return PROBE_OK;
}

static int probe_once(unsigned timeout_ms, const char **ret_reason) {
        if (access("/dev/kvm", F_OK) < 0) {
                *ret_reason = "/dev/kvm does not exist";
                return -ENOENT;
        }
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                *ret_reason = "cannot create a pipe for the KVM probe";
                return -errno;
        }
        pid_t pid = fork();
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                *ret_reason = "cannot fork the KVM probe";
                return -errno;
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(p[0]);
                char v = probe_child();
                (void)!write(p[1], &v, 1);
                _exit(0);
        }
        close(p[1]);
        char v = 0;
        uint64_t deadline = vm_now_ms() + timeout_ms;
        for (;;) {
                uint64_t now = vm_now_ms();
                if (now >= deadline)
                        break;
                struct pollfd pfd = {.fd = p[0], .events = POLLIN};
                int n = poll(&pfd, 1, (int)(deadline - now));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0 && read(p[0], &v, 1) != 1)
                        v = 0;
                break;
        }
        close(p[0]);
        kill(pid, SIGKILL);
        /* A child stuck in an uninterruptible ioctl may not die at once;
         * reap it if it does, never wait for it. */
        for (int i = 0; i < 20 && waitpid(pid, NULL, WNOHANG) == 0; i++) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (v == PROBE_OK) {
                *ret_reason = NULL;
                return 0;
        }
        if (v == 0) {
                *ret_reason = "KVM did not run a test guest within the probe's deadline";
                return -ETIMEDOUT;
        }
        *ret_reason = verdict_text(v);
        return v == PROBE_NO_DEV ? -EACCES : -ENODEV;
}

/* The boot sector (GNU as, .code16, linked at 0x7c00):
 *         xor %ax,%ax; mov %ax,%ds; sti
 *         mov 0x46c,%bx              BIOS tick counter (IRQ0, 18.2 Hz)
 *     1:  hlt; mov 0x46c,%cx; sub %bx,%cx; cmp $3,%cx; jb 1b
 *         mov $0x21,%al; mov $0x501,%dx; out %al,%dx    isa-debug-exit: status 67
 *     2:  cli; hlt; jmp 2b
 * followed by the 0x55 0xaa signature at offset 510. */
static const uint8_t boot_sector_code[] = {
        0x31, 0xc0, 0x8e, 0xd8, 0xfb, 0x8b, 0x1e, 0x6c, 0x04, 0xf4, 0x8b, 0x0e, 0x6c, 0x04, 0x29, 0xd9,
        0x83, 0xf9, 0x03, 0x72, 0xf4, 0xb0, 0x21, 0xba, 0x01, 0x05, 0xee, 0xfa, 0xf4, 0xeb, 0xfc,
};
#define PROBE_EXIT_STATUS 67

static int probe_qemu(unsigned timeout_ms, const char **ret_reason) {
        /* KVM runs the host's architecture; the payload is a PC boot
         * sector, which only a machine with a legacy BIOS boots */
        const struct arch *a = arch_host();
        if (!a || !a->bios) {
                *ret_reason = "kiln has no KVM probe guest for this host's architecture";
                return -ENODEV;
        }
        char path[] = "/tmp/kiln-kvm-probe.XXXXXX";
        _cleanup_close_ int fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) {
                *ret_reason = "cannot create the KVM probe's disk";
                return -errno;
        }
        uint8_t sector[512] = {0};
        memcpy(sector, boot_sector_code, sizeof(boot_sector_code));
        sector[510] = 0x55;
        sector[511] = 0xaa;
        /* a whole MiB: SeaBIOS does not boot a one-sector disk */
        int r = write_all(fd, sector, sizeof(sector));
        if (r >= 0 && ftruncate(fd, 1 << 20) < 0)
                r = -errno;
        if (r < 0) {
                unlink(path);
                *ret_reason = "cannot write the KVM probe's disk";
                return r;
        }
        _cleanup_free_ char *drive = xasprintf("file=%s,format=raw,if=virtio,readonly=on", path);
        _cleanup_free_ char *machine = xasprintf("%s,accel=kvm", a->machine);
        char *argv[] = {(char *)a->qemu_system, "-machine", machine, "-cpu", "host", "-m", "16", "-nodefaults",
                        "-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0x501,iosize=1",
                        "-drive", drive, NULL};
        pid_t pid;
        r = vm_spawn(argv, -1, -1, -1, true, &pid);
        if (r < 0) {
                unlink(path);
                static char why[96]; /* the reason outlives the call, as the others do */
                snprintf(why, sizeof why, "cannot run %s for the KVM probe", a->qemu_system);
                *ret_reason = why;
                return r;
        }
        int st;
        r = vm_wait_child(pid, NULL, vm_now_ms() + timeout_ms, &st);
        unlink(path);
        if (r == -ETIMEDOUT) {
                *ret_reason = "a test guest under QEMU/KVM did not finish within the probe's deadline "
                              "(its timer is too slow or stuck)";
                return r;
        }
        if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != PROBE_EXIT_STATUS) {
                *ret_reason = "QEMU could not run a test guest with KVM";
                return -ENODEV;
        }
        *ret_reason = NULL;
        return 0;
}

int vm_kvm_probe(unsigned timeout_ms, const char **ret_reason) {
        static int cached = 1; /* 1: not probed yet */
        static const char *cached_reason;
        if (cached == 1) {
                cached = probe_once(timeout_ms, &cached_reason);
                if (cached == 0)
                        cached = probe_qemu(timeout_ms, &cached_reason);
        }
        *ret_reason = cached_reason;
        return cached;
}
