/* SPDX-License-Identifier: Apache-2.0 */
/*
 * arch.h — the one table of what kiln knows about each CPU architecture:
 * its names (kiln's, Debian's), how QEMU runs it (binary, machine, CPU
 * model, firmware files, serial console), how its disks boot (GRUB
 * targets, the EFI removable-media file name, the GPT root partition type)
 * and which boot loaders kiln installs on it.
 *
 * Every module asks this table instead of writing an architecture's facts
 * itself: the spec (names, Debian's name), the bootstrapper (Debian's name,
 * the host's architecture), image/disk.c (root type, GRUB, console), vm/
 * (QEMU, firmware, console). Adding an architecture is one row here; what
 * then still fails is a real gap (a boot loader kiln does not install yet,
 * a KVM probe guest), not a forgotten literal.
 *
 * The table is static and read-only: every pointer returned borrows from
 * it and lives as long as the program. Lookups cost a scan of a few rows.
 * Unknown names are errors for every caller: the lookups return NULL.
 */
#pragma once

#include <stddef.h>

/* Boot loaders kiln installs on an architecture's disks. */
enum {
        ARCH_LOADER_GRUB_BIOS = 1u << 0, /* GRUB for legacy BIOS: boot.img in the MBR,
                                            core.img in the BIOS boot partition */
        ARCH_LOADER_GRUB_EFI = 1u << 1,  /* GRUB as the ESP's removable-media file */
};

struct arch {
        const char *name;          /* kiln's, in specs, manifests and file names: "x86_64" */
        const char *debian;        /* Debian's (dpkg --print-architecture): "amd64" */

        /* QEMU */
        const char *qemu_system;   /* system emulator binary: "qemu-system-x86_64" */
        const char *qemu_package;  /* the Debian package that has it */
        const char *machine;       /* -machine type: "q35", "virt" */
        const char *tcg_cpu;       /* -cpu under TCG ("max"); with KVM kiln passes "host" */
        const char *console;       /* the first serial port, as the guest kernel names it:
                                      "ttyS0", "ttyAMA0" */

        /* Firmware. bios: the legacy BIOS QEMU boots by default on this
         * machine ("SeaBIOS": nothing to pass), NULL when the machine has
         * none. uefi_code/uefi_vars: the UEFI firmware's code (mapped
         * read-only) and the template of its variable store (each VM gets
         * a private copy), from uefi_package. */
        const char *bios;
        const char *uefi_code;
        const char *uefi_vars;
        const char *uefi_package;

        /* Boot. GRUB's platform names (grub-mkimage -O; usr/lib/grub/TARGET
         * in the tree, from the package named beside it); grub_bios_target
         * NULL when the arch has no BIOS boot. grub_efi_modules: modules the
         * EFI image adds to the common set (its video drivers). */
        const char *grub_bios_target;
        const char *grub_bios_package;
        const char *grub_efi_target;
        const char *grub_efi_package;
        const char *grub_efi_modules[3];   /* NULL-terminated */
        const char *efi_boot_file;         /* EFI/BOOT/ file name on the ESP: "BOOTX64.EFI" */
        const char *gpt_root_type;         /* root partition type (UAPI Discoverable
                                              Partitions Specification), lowercase text */
        const char *kernel_package;        /* a Debian kernel package, for hints */
        /* ARCH_LOADER_* kiln installs on this arch's disks. 0: kiln plans
         * its disks but cannot make them bootable yet (disk_assemble says
         * -EOPNOTSUPP). */
        unsigned boot_loaders;
};

/* The architecture whose kiln name is name; NULL for NULL or an unknown
 * name. */
const struct arch *arch_find(const char *name);

/* The architecture with kiln's or Debian's name ("arm64" finds aarch64);
 * NULL when neither matches. For what users write (specs). */
const struct arch *arch_lookup(const char *name);

/* Row i of the table (0, 1, ... in table order); NULL past the end. */
const struct arch *arch_get(size_t i);

/* The architecture a build or a VM has when nothing says (x86_64). */
const struct arch *arch_default(void);

/* The architecture kiln itself was compiled for (what runs natively
 * here); NULL when it is not in the table. */
const struct arch *arch_host(void);
