/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for base/arch.h: every row complete, lookups by kiln's and
 * Debian's names, unknown names refused, and the spec using the table. */
#include "harness.h"

#include "base/arch.h"
#include "spec/spec.h"

#include <ctype.h>
#include <stdint.h>

static bool set(const char *s) {
        return s && *s;
}

/* Lowercase 8-4-4-4-12 hex. */
static bool uuid_text(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return true;
}

TEST(arch_rows_complete) {
        size_t n = 0;
        for (const struct arch *a; (a = arch_get(n)); n++) {
                CHECK(set(a->name));
                CHECK(set(a->debian));
                CHECK(set(a->qemu_system) && startswith(a->qemu_system, "qemu-system-"));
                CHECK(set(a->qemu_package));
                CHECK(set(a->machine));
                CHECK(set(a->tcg_cpu));
                CHECK(set(a->console) && startswith(a->console, "tty"));
                CHECK(set(a->uefi_code) && a->uefi_code[0] == '/');
                CHECK(set(a->uefi_vars) && a->uefi_vars[0] == '/');
                CHECK(!streq(a->uefi_code, a->uefi_vars));
                CHECK(set(a->uefi_package));
                CHECK(set(a->grub_efi_target) && endswith(a->grub_efi_target, "-efi"));
                CHECK(set(a->grub_efi_package));
                CHECK(set(a->grub_efi_modules[0]));
                CHECK(a->grub_efi_modules[ARRAY_SIZE(a->grub_efi_modules) - 1] == NULL);
                CHECK(set(a->efi_boot_file) && startswith(a->efi_boot_file, "BOOT") &&
                      endswith(a->efi_boot_file, ".EFI"));
                CHECK(uuid_text(a->gpt_root_type));
                CHECK(set(a->kernel_package));
                /* a BIOS target and its package go together, and a legacy
                 * BIOS machine boots through one */
                CHECK(set(a->grub_bios_target) == set(a->grub_bios_package));
                CHECK(!a->bios || set(a->grub_bios_target));
                CHECK((a->boot_loaders & ~(unsigned)(ARCH_LOADER_GRUB_BIOS | ARCH_LOADER_GRUB_EFI)) == 0);
                CHECK(!(a->boot_loaders & ARCH_LOADER_GRUB_BIOS) || (a->bios && set(a->grub_bios_target)));
                /* names are unique across rows, in both namespaces */
                for (size_t j = 0; j < n; j++) {
                        const struct arch *b = arch_get(j);
                        CHECK(!streq(a->name, b->name) && !streq(a->debian, b->debian));
                        CHECK(!streq(a->name, b->debian) && !streq(a->debian, b->name));
                        CHECK(!streq(a->gpt_root_type, b->gpt_root_type));
                        CHECK(!streq(a->efi_boot_file, b->efi_boot_file));
                }
        }
        CHECK_INT(n, >=, 2);
        CHECK(arch_get(n) == NULL);
        CHECK(arch_get(SIZE_MAX) == NULL);
}

TEST(arch_lookups) {
        for (size_t i = 0; arch_get(i); i++) {
                const struct arch *a = arch_get(i);
                CHECK(arch_find(a->name) == a);
                CHECK(arch_lookup(a->name) == a);
                CHECK(arch_lookup(a->debian) == a);
        }
        const struct arch *x = arch_find("x86_64"), *arm = arch_find("aarch64");
        CHECK(x && arm && x != arm);
        CHECK_STREQ(x->debian, "amd64");
        CHECK_STREQ(arm->debian, "arm64");
        CHECK(arch_lookup("amd64") == x);
        CHECK(arch_lookup("arm64") == arm);
        /* arch_find takes kiln's names only */
        CHECK(arch_find("amd64") == NULL);
        CHECK(arch_find("arm64") == NULL);
        CHECK(arch_default() == x);
#if defined(__x86_64__)
        CHECK(arch_host() == x);
#elif defined(__aarch64__)
        CHECK(arch_host() == arm);
#endif
}

TEST(arch_unknown_is_an_error) {
        static const char *const bad[] = {"riscv64", "", "X86_64", "x86-64", "i386", "amd64 ", "arm"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK(arch_find(bad[i]) == NULL);
                CHECK(arch_lookup(bad[i]) == NULL);
        }
        CHECK(arch_find(NULL) == NULL);
        CHECK(arch_lookup(NULL) == NULL);
}

/* The facts x86_64 images and boots were built on before the table: a
 * change here changes every x86_64 image or boot. */
TEST(arch_x86_64_facts) {
        const struct arch *a = arch_find("x86_64");
        CHECK(a);
        if (!a)
                return;
        const struct {
                const char *got, *want;
        } facts[] = {
                {a->qemu_system, "qemu-system-x86_64"},
                {a->qemu_package, "qemu-system-x86"},
                {a->machine, "q35"},
                {a->tcg_cpu, "max"},
                {a->console, "ttyS0"},
                {a->bios, "SeaBIOS"},
                {a->uefi_code, "/usr/share/OVMF/OVMF_CODE_4M.fd"},
                {a->uefi_vars, "/usr/share/OVMF/OVMF_VARS_4M.fd"},
                {a->uefi_package, "ovmf"},
                {a->grub_bios_target, "i386-pc"},
                {a->grub_efi_target, "x86_64-efi"},
                {a->efi_boot_file, "BOOTX64.EFI"},
                {a->gpt_root_type, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(facts); i++)
                CHECK_STREQ(facts[i].got, facts[i].want);
        CHECK_INT(a->boot_loaders, ==, ARCH_LOADER_GRUB_BIOS | ARCH_LOADER_GRUB_EFI);
        const struct arch *arm = arch_find("aarch64");
        CHECK(arm && !arm->bios && !arm->grub_bios_target && arm->boot_loaders == 0);
        CHECK(arm && streq(arm->console, "ttyAMA0") && streq(arm->efi_boot_file, "BOOTAA64.EFI"));
}

/* Loads a spec from text; returns spec_load's result. */
static int load_text(const char *text, struct diag_list *d, struct spec **ret) {
        char dir[] = "/tmp/kiln-unit-arch-XXXXXX";
        if (!mkdtemp(dir))
                abort();
        _cleanup_free_ char *path = xasprintf("%s/spec.yaml", dir);
        FILE *f = fopen(path, "w");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
        struct spec_options o = {.path = path, .now = 1700000000};
        int r = spec_load(&o, d, ret);
        unlink(path);
        rmdir(dir);
        return r;
}

/* The spec takes its architectures from the table: Debian's names are
 * normalised, the default is the table's, an unknown name lists them. */
TEST(arch_spec_uses_table) {
        struct diag_list d = {0};
        struct spec *s = NULL;
        CHECK_INT(load_text("builds:\n"
                            "  a:\n    source: {type: tarball, path: t.tar}\n    arch: arm64\n"
                            "  b:\n    source: {type: tarball, path: t.tar}\n"
                            "  c:\n    source: {type: tarball, path: t.tar}\n"
                            "    matrix: {arch: [amd64, aarch64]}\n",
                            &d, &s),
                  >=, 0);
        CHECK_INT(d.nerrors, ==, 0);
        const struct spec_build *a = s ? spec_find_build(s, "a") : NULL;
        const struct spec_build *b = s ? spec_find_build(s, "b") : NULL;
        CHECK(a && streq(a->arch, "aarch64"));
        CHECK(b && streq(b->arch, arch_default()->name));
        CHECK(s && spec_find_build(s, "c-x86_64") && spec_find_build(s, "c-aarch64"));
        spec_free(s);
        diag_list_done(&d);

        d = (struct diag_list){0};
        s = NULL;
        CHECK_INT(load_text("builds:\n  c:\n    source: {type: tarball, path: t.tar}\n    arch: sparc\n",
                            &d, &s),
                  <, 0);
        bool hinted = false;
        for (size_t i = 0; i < d.n; i++)
                if (strstr(d.v[i].msg, "unknown architecture 'sparc'"))
                        hinted = d.v[i].hint && streq(d.v[i].hint, "kiln builds x86_64 and aarch64");
        CHECK(hinted);
        spec_free(s);
        diag_list_done(&d);
}
