/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arch.c — the architecture table (see arch.h). The first row is the
 * default architecture.
 */
#include "base/arch.h"

#include "base/util.h"

static const struct arch arches[] = {
        {
                .name = "x86_64",
                .debian = "amd64",
                .qemu_system = "qemu-system-x86_64",
                .qemu_package = "qemu-system-x86",
                .machine = "q35",
                .tcg_cpu = "max",
                .console = "ttyS0",
                .bios = "SeaBIOS",
                .uefi_code = "/usr/share/OVMF/OVMF_CODE_4M.fd",
                .uefi_vars = "/usr/share/OVMF/OVMF_VARS_4M.fd",
                .uefi_package = "ovmf",
                .grub_bios_target = "i386-pc",
                .grub_bios_package = "grub-pc-bin",
                .grub_efi_target = "x86_64-efi",
                .grub_efi_package = "grub-efi-amd64-bin",
                .grub_efi_modules = {"efi_gop", "efi_uga", NULL},
                .efi_boot_file = "BOOTX64.EFI",
                .gpt_root_type = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
                .kernel_package = "linux-image-cloud-amd64",
                .boot_loaders = ARCH_LOADER_GRUB_BIOS | ARCH_LOADER_GRUB_EFI,
        },
        {
                /* UEFI only (QEMU's virt machine has no legacy BIOS). Its
                 * disks are planned, not assembled: no loader yet. */
                .name = "aarch64",
                .debian = "arm64",
                .qemu_system = "qemu-system-aarch64",
                .qemu_package = "qemu-system-arm",
                .machine = "virt",
                .tcg_cpu = "max",
                .console = "ttyAMA0",
                .bios = NULL,
                .uefi_code = "/usr/share/AAVMF/AAVMF_CODE.fd",
                .uefi_vars = "/usr/share/AAVMF/AAVMF_VARS.fd",
                .uefi_package = "qemu-efi-aarch64",
                .grub_bios_target = NULL,
                .grub_bios_package = NULL,
                .grub_efi_target = "arm64-efi",
                .grub_efi_package = "grub-efi-arm64-bin",
                .grub_efi_modules = {"efi_gop", NULL},
                .efi_boot_file = "BOOTAA64.EFI",
                .gpt_root_type = "b921b045-1df0-41c3-af44-4c6f280d3fae",
                .kernel_package = "linux-image-cloud-arm64",
                .boot_loaders = 0,
        },
};

const struct arch *arch_find(const char *name) {
        for (size_t i = 0; name && i < ARRAY_SIZE(arches); i++)
                if (streq(arches[i].name, name))
                        return &arches[i];
        return NULL;
}

const struct arch *arch_lookup(const char *name) {
        for (size_t i = 0; name && i < ARRAY_SIZE(arches); i++)
                if (streq(arches[i].name, name) || streq(arches[i].debian, name))
                        return &arches[i];
        return NULL;
}

const struct arch *arch_get(size_t i) {
        return i < ARRAY_SIZE(arches) ? &arches[i] : NULL;
}

const struct arch *arch_default(void) {
        return &arches[0];
}

const struct arch *arch_host(void) {
#if defined(__x86_64__)
        return arch_find("x86_64");
#elif defined(__aarch64__)
        return arch_find("aarch64");
#else
        return NULL;
#endif
}
