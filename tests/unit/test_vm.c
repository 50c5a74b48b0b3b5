/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the VM runner's parts that need no guest: options, the
 * temp dir and what goes into it (key pair, seed), the console tail, and
 * the errors of vm_start. Booting is tested end to end (tests/e2e/test_boot.sh). */
#include "harness.h"

#include "vm/vm-internal.h"

#include <sys/stat.h>

static char *make_tmp(void) {
        char *t = xstrdup("/tmp/kiln-test-vm.XXXXXX");
        CHECK(mkdtemp(t) != NULL);
        return t;
}

static void rm_tree(const char *dir) {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
}

/* A file that looks like a raw disk (vm_new reads only its first bytes). */
static char *make_image(const char *dir, bool qcow2) {
        char *p = xasprintf("%s/disk.img", dir);
        const char *data = qcow2 ? "QFI\xfb rest" : "not a qcow2 header";
        CHECK(write_file(p, data, strlen(data), 0644, 0) == 0);
        return p;
}

TEST(vm_strings) {
        enum vm_firmware f;
        enum vm_accel a;
        CHECK(vm_firmware_from_string("uefi", &f) == 0 && f == VM_FIRMWARE_UEFI);
        CHECK(vm_firmware_from_string("bios", &f) == 0 && f == VM_FIRMWARE_BIOS);
        CHECK(vm_firmware_from_string("efi", &f) == -EINVAL);
        CHECK(vm_firmware_from_string(NULL, &f) == -EINVAL);
        CHECK(vm_accel_from_string("tcg", &a) == 0 && a == VM_ACCEL_TCG);
        CHECK(vm_accel_from_string("kvm", &a) == 0 && a == VM_ACCEL_KVM);
        CHECK(vm_accel_from_string("auto", &a) == 0 && a == VM_ACCEL_AUTO);
        CHECK(vm_accel_from_string("hvf", &a) == -EINVAL);
        CHECK_STREQ(vm_accel_to_string(VM_ACCEL_TCG), "tcg");
        CHECK_STREQ(vm_firmware_to_string(VM_FIRMWARE_UEFI), "uefi");
}

TEST(vm_new_missing_image) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = xasprintf("%s/none.qcow2", t);
        struct vm_options o = {.image = img, .tmp_parent = t};
        struct vm *vm = NULL;
        CHECK_INT(vm_new(&o, &vm), ==, -ENOENT);
        CHECK(vm != NULL);
        CHECK(strstr(vm_error(vm), img) != NULL);
        vm_free(vm);
        CHECK(rmdir(t) == 0); /* nothing was left in it */
        struct vm_options none = {0};
        CHECK_INT(vm_new(&none, &vm), ==, -EINVAL);
        CHECK(vm == NULL);
}

TEST(vm_new_bad_hostname) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = make_image(t, false);
        const char *bad[] = {"under_score", "-lead", "trail-", "", "a.b",
                             "x234567890123456789012345678901234567890123456789012345678901234"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct vm_options o = {.image = img, .tmp_parent = t, .hostname = bad[i]};
                struct vm *vm = NULL;
                CHECK_INT(vm_new(&o, &vm), ==, -EINVAL);
                CHECK(strstr(vm_error(vm), "not a valid hostname") != NULL);
                vm_free(vm);
        }
        rm_tree(t);
}

/* vm_new makes the key pair and the seed; the seed carries the hostname,
 * the public key and the marker's two halves, never the whole marker;
 * vm_free removes everything. */
TEST(vm_new_seed_and_cleanup) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = make_image(t, true);
        struct vm_options o = {.image = img, .tmp_parent = t, .hostname = "unit-host",
                               .firmware = VM_FIRMWARE_UEFI, .accel = VM_ACCEL_TCG};
        struct vm *vm = NULL;
        int r = vm_new(&o, &vm);
        CHECK_INT(r, ==, 0);
        if (r < 0) {
                fprintf(stderr, "vm_new: %s\n", vm_error(vm));
                vm_free(vm);
                return;
        }
        const struct vm_info *i = vm_info(vm);
        CHECK_STREQ(i->hostname, "unit-host");
        CHECK_STREQ(i->user, "root");
        CHECK_STREQ(vm->format, "qcow2");
        struct stat st;
        CHECK(stat(i->tmp_dir, &st) == 0 && (st.st_mode & 0777) == 0700);
        CHECK(stat(i->key_path, &st) == 0 && (st.st_mode & 0077) == 0);
        CHECK(vm->vars_path && access(vm->vars_path, R_OK) == 0);
        _cleanup_free_ char *pub_path = xasprintf("%s.pub", i->key_path);
        _cleanup_free_ char *pub = NULL, *iso = NULL;
        size_t plen, ilen;
        CHECK(read_file(pub_path, 4096, &pub, &plen) == 0);
        CHECK(startswith(pub, "ssh-ed25519 ") != NULL);
        pub[strcspn(pub, " ")] = 0;
        CHECK(read_file(vm->seed_path, 1u << 20, &iso, &ilen) == 0);
        CHECK(memmem(iso, ilen, "hostname: unit-host", 19) != NULL);
        CHECK(memmem(iso, ilen, "disable_root: false", 19) != NULL);
        CHECK(memmem(iso, ilen, "CD001", 5) != NULL);
        const char *key_b64 = pub + strlen(pub) + 1;
        CHECK(memmem(iso, ilen, key_b64, strcspn(key_b64, " \n")) != NULL);
        CHECK(memmem(iso, ilen, vm->marker, strlen(vm->marker)) == NULL);
        CHECK_INT(strlen(vm->marker), ==, strlen("kiln-ready-") + 32);
        const char *nonce = vm->marker + strlen("kiln-ready-");
        CHECK(memmem(iso, ilen, nonce, 16) != NULL);
        CHECK(memmem(iso, ilen, nonce + 16, 16) != NULL);
        /* not started: exec refuses, stop is a no-op */
        int status = -1;
        CHECK_INT(vm_exec(vm, "true", NULL, 0, NULL, &status), ==, -ENOTCONN);
        CHECK_INT(vm_stop(vm), ==, 0);
        CHECK(vm_ssh_command_line(vm) == NULL);
        _cleanup_free_ char *dir = xstrdup(i->tmp_dir);
        vm_free(vm);
        CHECK(access(dir, F_OK) < 0 && errno == ENOENT);
        rm_tree(t);
}

/* Two VMs never share a hostname, nonce or temp dir. */
TEST(vm_new_unique) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = make_image(t, false);
        struct vm_options o = {.image = img, .tmp_parent = t};
        struct vm *a = NULL, *b = NULL;
        CHECK_INT(vm_new(&o, &a), ==, 0);
        CHECK_INT(vm_new(&o, &b), ==, 0);
        if (a && b && a->marker && b->marker) {
                CHECK(startswith(vm_info(a)->hostname, "kiln-") && strlen(vm_info(a)->hostname) == 13);
                CHECK(!streq(vm_info(a)->hostname, vm_info(b)->hostname));
                CHECK(!streq(a->marker, b->marker));
                CHECK(!streq(vm_info(a)->tmp_dir, vm_info(b)->tmp_dir));
                CHECK_STREQ(a->format, "raw");
        }
        vm_free(a);
        vm_free(b);
        rm_tree(t);
}

TEST(vm_console_tail_cleans) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = make_image(t, false);
        _cleanup_free_ char *log = xasprintf("%s/console.log", t);
        struct vm_options o = {.image = img, .tmp_parent = t, .console_log = log};
        struct vm *vm = NULL;
        CHECK_INT(vm_new(&o, &vm), ==, 0);
        const char *text = "one\r\ntwo\r\n\x1b[0;32m  OK  \x1b[0m] three\r\nfour\x07\r\n\r\n";
        CHECK(write_file(log, text, strlen(text), 0644, 0) == 0);
        _cleanup_free_ char *tail2 = vm_console_tail(vm, 2);
        CHECK_STREQ(tail2, "  OK  ] three\nfour?");
        _cleanup_free_ char *all = vm_console_tail(vm, 100);
        CHECK_STREQ(all, "one\ntwo\n  OK  ] three\nfour?");
        vm_free(vm);
        CHECK(access(log, F_OK) == 0); /* a named console log is kept */
        rm_tree(t);
}

TEST(vm_start_errors) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = make_image(t, false);
        struct vm_options o = {.image = img, .tmp_parent = t, .accel = VM_ACCEL_TCG,
                               .qemu = "/nonexistent/qemu-system-x86_64"};
        struct vm *vm = NULL;
        CHECK_INT(vm_new(&o, &vm), ==, 0);
        CHECK_INT(vm_start(vm), ==, -ENOENT);
        CHECK(strstr(vm_error(vm), "qemu-system-x86") != NULL);
        vm_free(vm);
        /* a "QEMU" that exits at once: reported, not waited for */
        o.qemu = "false";
        CHECK_INT(vm_new(&o, &vm), ==, 0);
        CHECK_INT(vm_start(vm), ==, -ECHILD);
        CHECK(strstr(vm_error(vm), "exited at once (status 1)") != NULL);
        CHECK(!vm_running(vm));
        vm_free(vm);
        rm_tree(t);
}

/* vm was set up for QEMU binary qemu, its seed writing to console. */
static void check_arch_setup(const struct vm *vm, const char *qemu, const char *console) {
        CHECK_STREQ(vm->qemu, qemu);
        _cleanup_free_ char *iso = NULL, *want = xasprintf("> /dev/%s\"", console);
        size_t ilen = 0;
        CHECK(read_file(vm->seed_path, 1u << 20, &iso, &ilen) == 0);
        CHECK(iso && memmem(iso, ilen, want, strlen(want)) != NULL);
}

/* QEMU's binary, the firmware and the console come from the arch table
 * (base/arch.h); an unknown arch, or BIOS where there is none, is refused. */
TEST(vm_new_arch) {
        _cleanup_free_ char *t = make_tmp();
        _cleanup_free_ char *img = make_image(t, false);
        struct vm_options o = {.image = img, .tmp_parent = t, .accel = VM_ACCEL_TCG, .arch = "riscv64"};
        struct vm *vm = NULL;
        CHECK_INT(vm_new(&o, &vm), ==, -EINVAL);
        CHECK(vm && strstr(vm_error(vm), "unknown architecture 'riscv64'"));
        vm_free(vm);
        o.arch = "aarch64";
        CHECK_INT(vm_new(&o, &vm), ==, -EINVAL); /* BIOS firmware: virt has none */
        CHECK(vm && strstr(vm_error(vm), "aarch64 has no legacy BIOS"));
        vm_free(vm);

        /* x86_64, named or by default: QEMU's x86 binary, the seed writes
         * the marker to ttyS0 */
        const char *names[] = {"x86_64", NULL};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                o.arch = names[i];
                CHECK_INT(vm_new(&o, &vm), ==, 0);
                check_arch_setup(vm, "qemu-system-x86_64", "ttyS0");
                vm_free(vm);
        }

        /* aarch64 boots with UEFI (AAVMF): refused with the package's name
         * when the firmware is missing, else set up with its console */
        o.arch = "aarch64";
        o.firmware = VM_FIRMWARE_UEFI;
        int r = vm_new(&o, &vm);
        if (access("/usr/share/AAVMF/AAVMF_CODE.fd", R_OK) < 0) {
                CHECK_INT(r, ==, -ENOENT);
                CHECK(vm && strstr(vm_error(vm), "(package qemu-efi-aarch64)"));
        } else {
                CHECK_INT(r, ==, 0);
                check_arch_setup(vm, "qemu-system-aarch64", "ttyAMA0");
        }
        vm_free(vm);
        rm_tree(t);
}
