/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ova.c — the OVA writer: what vSphere's "Deploy OVF Template" and
 * govc/ovftool import. An OVA is a tar (ustar) of, in this order,
 *
 *     NAME.ovf          the OVF 1.x envelope: disk, network, virtual hardware
 *                       (CPUs, memory, controller, NIC, firmware), guest OS,
 *                       product section with custom properties
 *     NAME.mf           "SHA256(file)= hex" for the other two
 *     NAME-disk1.vmdk   the disk, streamOptimized (vmdk.c)
 *
 * The .ovf must name the disk's size and populated size, and the .mf its
 * SHA-256, and both come before the disk in the tar, whose headers carry
 * sizes up front. So the disk is written first, once, by the vmdk writer
 * into a spool (an unlinked file beside the output, format_spool_open)
 * with its SHA-256 computed as it is written; then the tar goes out in
 * order through the artifact stream (its own checksums), the disk copied
 * from the spool (copy_file_range when nothing hashes the OVA; otherwise
 * read once, which is the tar's own pass). The raw image is read once.
 *
 * Sizes past ustar's 8 GiB octal field are written in GNU tar's base-256
 * form, which GNU tar, bsdtar and Python's tarfile read. Entry times are
 * format_image.mtime (SOURCE_DATE_EPOCH), owners root: the same tree gives
 * the same bytes.
 *
 * Options (the outputs: entry; checked when the spec loads): cpus, memory,
 * firmware (auto: efi when the layout has an ESP, else bios), adapter,
 * network, hardware_version, guest_os, product {name, version, vendor,
 * properties}. See docs/image.md.
 */
#include "image/format.h"

#include "base/strbuf.h"
#include "base/util.h"

#include <inttypes.h>

#define TAR_BLOCK 512u
#define USTAR_MAX_SIZE 077777777777ull /* 11 octal digits */
#define MAX_NAME 80u                   /* entry names stay within ustar's 100 */

static const char *const firmwares[] = {"auto", "efi", "bios", NULL};

/* ---- options ---- */

static const struct value *opt(const struct format_options *o, const char *key) {
        const struct value *m = o->image ? o->image->options : NULL;
        return m && m->kind == V_MAP ? value_map_get(m, key) : NULL;
}

static const char *opt_str(const struct format_options *o, const char *key, const char *def) {
        const struct value *v = opt(o, key);
        return v && v->str ? v->str : def;
}

static int opt_uint(const struct format_options *o, const char *key, uint64_t def, bool size,
                    uint64_t *ret) {
        const struct value *v = opt(o, key);
        if (!v || !v->str) {
                *ret = def;
                return 0;
        }
        if (size)
                return parse_size(v->str, ret);
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v->str, &end, 10);
        if (errno || end == v->str || *end)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* ---- the envelope ---- */

/* vSphere's guest id and the CIM operating system number for it. */
static void guest_os(const struct format_image *im, const char **ret_id, int *ret_cim) {
        const char *d = im ? im->distribution : NULL, *rel = im ? im->release : NULL;
        bool arm = im && im->arch && streq(im->arch, "aarch64");
        /* vSphere 8 names Arm guests "arm-<x86 name>" */
        if (d && streq(d, "debian")) {
                *ret_cim = 96; /* Debian 64-Bit */
                if (rel && (streq(rel, "buster") || streq(rel, "10")))
                        *ret_id = arm ? "arm-debian10_64Guest" : "debian10_64Guest";
                else if (rel && (streq(rel, "bullseye") || streq(rel, "11")))
                        *ret_id = arm ? "arm-debian11_64Guest" : "debian11_64Guest";
                else
                        *ret_id = arm ? "arm-debian12_64Guest" : "debian12_64Guest";
                return;
        }
        if (d && streq(d, "ubuntu")) {
                *ret_cim = 94; /* Ubuntu 64-Bit */
                *ret_id = arm ? "arm-ubuntu64Guest" : "ubuntu64Guest";
                return;
        }
        *ret_cim = 101; /* Linux 2.6.x 64-Bit */
        *ret_id = arm ? "arm-other5xLinux64Guest" : "other5xLinux64Guest";
}

static void hw_item(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
static void hw_item(struct strbuf *sb, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        strbuf_adds(sb, "      <Item>\n");
        strbuf_vaddf(sb, fmt, ap);
        strbuf_adds(sb, "      </Item>\n");
        va_end(ap);
}

struct disk_facts {
        const char *file;
        uint64_t size, capacity, populated;
};

static int make_ovf(const struct format_options *o, const char *name, const struct disk_facts *df,
                    struct strbuf *sb) {
        const struct format_image *im = o->image;
        uint64_t cpus, mem, hw;
        int r;
        if ((r = opt_uint(o, "cpus", 2, false, &cpus)) < 0 ||
            (r = opt_uint(o, "memory", 2ull << 30, true, &mem)) < 0 ||
            (r = opt_uint(o, "hardware_version", 13, false, &hw)) < 0)
                return r;
        if (cpus < 1 || cpus > 768 || mem < (4u << 20) || hw < 4 || hw > 99)
                return -EINVAL;
        const char *fw = opt_str(o, "firmware", "auto");
        if (streq(fw, "auto"))
                fw = !im || im->uefi ? "efi" : "bios";
        const char *adapter = opt_str(o, "adapter", "lsilogic");
        const char *net = opt_str(o, "network", "VM Network");
        const char *os_id;
        int cim;
        guest_os(im, &os_id, &cim);
        os_id = opt_str(o, "guest_os", os_id);

        strbuf_adds(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\""
                        " xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\""
                        " xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\""
                        " xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\""
                        " xmlns:vmw=\"http://www.vmware.com/schema/ovf\""
                        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
                        "  <References>\n    <File ovf:href=\"");
        strbuf_add_xml(sb, df->file);
        strbuf_addf(sb, "\" ovf:id=\"file1\" ovf:size=\"%" PRIu64 "\"/>\n  </References>\n", df->size);
        strbuf_addf(sb, "  <DiskSection>\n    <Info>Virtual disk information</Info>\n"
                        "    <Disk ovf:capacity=\"%" PRIu64 "\" ovf:capacityAllocationUnits=\"byte\""
                        " ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\""
                        " ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\""
                        " ovf:populatedSize=\"%" PRIu64 "\"/>\n  </DiskSection>\n",
                    df->capacity, df->populated);
        strbuf_adds(sb, "  <NetworkSection>\n    <Info>The list of logical networks</Info>\n"
                        "    <Network ovf:name=\"");
        strbuf_add_xml(sb, net);
        strbuf_adds(sb, "\">\n      <Description>The ");
        strbuf_add_xml(sb, net);
        strbuf_adds(sb, " network</Description>\n    </Network>\n  </NetworkSection>\n"
                        "  <VirtualSystem ovf:id=\"");
        strbuf_add_xml(sb, name);
        strbuf_adds(sb, "\">\n    <Info>A virtual machine</Info>\n    <Name>");
        strbuf_add_xml(sb, name);
        strbuf_addf(sb, "</Name>\n    <OperatingSystemSection ovf:id=\"%d\" vmw:osType=\"", cim);
        strbuf_add_xml(sb, os_id);
        strbuf_adds(sb, "\">\n      <Info>The kind of installed guest operating system</Info>\n"
                        "    </OperatingSystemSection>\n"
                        "    <VirtualHardwareSection>\n      <Info>Virtual hardware requirements</Info>\n"
                        "      <System>\n        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n"
                        "        <vssd:InstanceID>0</vssd:InstanceID>\n"
                        "        <vssd:VirtualSystemIdentifier>");
        strbuf_add_xml(sb, name);
        strbuf_addf(sb, "</vssd:VirtualSystemIdentifier>\n"
                        "        <vssd:VirtualSystemType>vmx-%02" PRIu64 "</vssd:VirtualSystemType>\n"
                        "      </System>\n", hw);
        hw_item(sb, "        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>\n"
                    "        <rasd:Description>Number of Virtual CPUs</rasd:Description>\n"
                    "        <rasd:ElementName>%" PRIu64 " virtual CPU(s)</rasd:ElementName>\n"
                    "        <rasd:InstanceID>1</rasd:InstanceID>\n"
                    "        <rasd:ResourceType>3</rasd:ResourceType>\n"
                    "        <rasd:VirtualQuantity>%" PRIu64 "</rasd:VirtualQuantity>\n",
                cpus, cpus);
        hw_item(sb, "        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>\n"
                    "        <rasd:Description>Memory Size</rasd:Description>\n"
                    "        <rasd:ElementName>%" PRIu64 "MB of memory</rasd:ElementName>\n"
                    "        <rasd:InstanceID>2</rasd:InstanceID>\n"
                    "        <rasd:ResourceType>4</rasd:ResourceType>\n"
                    "        <rasd:VirtualQuantity>%" PRIu64 "</rasd:VirtualQuantity>\n",
                mem >> 20, mem >> 20);
        bool ide = streq(adapter, "ide");
        const char *sub = streq(adapter, "pvscsi") ? "VirtualSCSI" : ide ? "PIIX4" : adapter;
        hw_item(sb, "        <rasd:Address>0</rasd:Address>\n"
                    "        <rasd:Description>%s Controller</rasd:Description>\n"
                    "        <rasd:ElementName>%s Controller 0</rasd:ElementName>\n"
                    "        <rasd:InstanceID>3</rasd:InstanceID>\n"
                    "        <rasd:ResourceSubType>%s</rasd:ResourceSubType>\n"
                    "        <rasd:ResourceType>%d</rasd:ResourceType>\n",
                ide ? "IDE" : "SCSI", ide ? "IDE" : "SCSI", sub, ide ? 5 : 6);
        hw_item(sb, "        <rasd:AddressOnParent>0</rasd:AddressOnParent>\n"
                    "        <rasd:ElementName>Hard Disk 1</rasd:ElementName>\n"
                    "        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>\n"
                    "        <rasd:InstanceID>4</rasd:InstanceID>\n"
                    "        <rasd:Parent>3</rasd:Parent>\n"
                    "        <rasd:ResourceType>17</rasd:ResourceType>\n");
        strbuf_adds(sb, "      <Item>\n        <rasd:AddressOnParent>7</rasd:AddressOnParent>\n"
                        "        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>\n"
                        "        <rasd:Connection>");
        strbuf_add_xml(sb, net);
        strbuf_adds(sb, "</rasd:Connection>\n"
                        "        <rasd:ElementName>Ethernet 1</rasd:ElementName>\n"
                        "        <rasd:InstanceID>5</rasd:InstanceID>\n"
                        "        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>\n"
                        "        <rasd:ResourceType>10</rasd:ResourceType>\n      </Item>\n");
        strbuf_addf(sb, "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"%s\"/>\n", fw);
        if (streq(fw, "efi"))
                strbuf_adds(sb, "      <vmw:Config ovf:required=\"false\""
                                " vmw:key=\"bootOptions.efiSecureBootEnabled\" vmw:value=\"false\"/>\n");
        strbuf_adds(sb, "    </VirtualHardwareSection>\n");

        /* The product: name, vendor, version, and the spec's properties
         * (image-builder puts the Kubernetes version there). */
        const struct value *prod = opt(o, "product");
        const struct value *pn = prod && prod->kind == V_MAP ? value_map_get(prod, "name") : NULL;
        const struct value *pv = prod && prod->kind == V_MAP ? value_map_get(prod, "vendor") : NULL;
        const struct value *pver = prod && prod->kind == V_MAP ? value_map_get(prod, "version") : NULL;
        const struct value *props = prod && prod->kind == V_MAP ? value_map_get(prod, "properties") : NULL;
        strbuf_adds(sb, "    <ProductSection>\n      <Info>Information about the installed software</Info>\n"
                        "      <Product>");
        strbuf_add_xml(sb, pn && pn->str ? pn->str : name);
        strbuf_adds(sb, "</Product>\n      <Vendor>");
        strbuf_add_xml(sb, pv && pv->str ? pv->str : "kiln");
        strbuf_adds(sb, "</Vendor>\n      <Version>");
        strbuf_add_xml(sb, pver && pver->str ? pver->str : "1.0");
        strbuf_adds(sb, "</Version>\n");
        for (size_t i = 0; props && props->kind == V_MAP && i < props->n; i++) {
                strbuf_adds(sb, "      <Property ovf:key=\"");
                strbuf_add_xml(sb, props->keys[i]->str);
                strbuf_adds(sb, "\" ovf:type=\"string\" ovf:userConfigurable=\"false\" ovf:value=\"");
                strbuf_add_xml(sb, props->items[i]->str);
                strbuf_adds(sb, "\"/>\n");
        }
        strbuf_adds(sb, "    </ProductSection>\n  </VirtualSystem>\n</Envelope>\n");
        return 0;
}

/* ---- the tar ---- */

static void octal(char *f, size_t width, uint64_t v) {
        /* width - 1 digits and a NUL */
        f[width - 1] = 0;
        for (size_t i = width - 1; i-- > 0; v >>= 3)
                f[i] = (char)('0' + (v & 7));
}

/* A ustar header for a regular file. */
static void tar_header(uint8_t *h, const char *name, uint64_t size, int64_t mtime) {
        memset(h, 0, TAR_BLOCK);
        memcpy(h, name, strlen(name)); /* < 100: checked by the caller */
        octal((char *)h + 100, 8, 0644);
        octal((char *)h + 108, 8, 0);
        octal((char *)h + 116, 8, 0);
        if (size <= USTAR_MAX_SIZE)
                octal((char *)h + 124, 12, size);
        else { /* GNU base-256: high bit set, big-endian */
                h[124] = 0x80;
                for (int i = 11; i > 0; i--, size >>= 8)
                        h[124 + i] = (uint8_t)size;
        }
        octal((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
        memset(h + 148, ' ', 8);
        h[156] = '0';
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memcpy(h + 265, "root", 4);
        memcpy(h + 297, "root", 4);
        unsigned sum = 0;
        for (unsigned i = 0; i < TAR_BLOCK; i++)
                sum += h[i];
        octal((char *)h + 148, 7, sum); /* six digits, NUL, and the space left */
}

static int tar_entry(struct format_out *out, const char *name, const void *data, uint64_t size,
                     int data_fd, int64_t mtime) {
        uint8_t h[TAR_BLOCK];
        tar_header(h, name, size, mtime);
        int r = format_out_write(out, h, sizeof(h));
        if (r >= 0)
                r = data ? format_out_write(out, data, size) : format_out_copy(out, data_fd, 0, size);
        if (r >= 0 && size % TAR_BLOCK)
                r = format_out_zeros(out, TAR_BLOCK - size % TAR_BLOCK);
        return r;
}

static int ova_write(int raw_fd, uint64_t size, int out_fd, const struct format_options *o,
                     struct format_result *res) {
        _cleanup_format_out_ struct format_out *out = NULL;
        _cleanup_close_ int spool = -1;
        _cleanup_free_ char *disk = NULL, *ovf_name = NULL, *mf_name = NULL;
        struct strbuf ovf = STRBUF_INIT, mf = STRBUF_INIT;
        int r;

        if (raw_fd < 0 || out_fd < 0 || !o || !res)
                return -EINVAL;
        if (o->file_compression != COMPRESS_NONE || o->cluster_compression != COMPRESS_NONE)
                return -EOPNOTSUPP;
        const char *name = o->image && o->image->name ? o->image->name : "disk";
        if (strlen(name) > MAX_NAME)
                return -ENAMETOOLONG;
        disk = xasprintf("%s-disk1.vmdk", name);
        ovf_name = xasprintf("%s.ovf", name);
        mf_name = xasprintf("%s.mf", name);

        /* The disk, into the spool, hashed as it is written. */
        if ((spool = format_spool_open(o, out_fd)) < 0)
                return spool;
        struct format_image dim = o->image ? *o->image : (struct format_image){0};
        dim.file = disk;
        struct format_options vo = *o;
        vo.sha256 = true;
        vo.sha512 = false;
        vo.image = &dim;
        struct format_result vr;
        if ((r = vmdk_writer.write(raw_fd, size, spool, &vo, &vr)) < 0)
                return r;

        struct disk_facts df = {.file = disk, .size = vr.bytes_written,
                                .capacity = (size + 511) / 512 * 512, .populated = vr.data_bytes};
        char ovf_sha[SHA256_HEX_LEN + 1];
        if ((r = make_ovf(o, name, &df, &ovf)) < 0 ||
            (r = hash_sha256_hex(ovf.buf, ovf.len, ovf_sha)) < 0)
                goto done;
        strbuf_addf(&mf, "SHA256(%s)= %s\nSHA256(%s)= %s\n", ovf_name, ovf_sha, disk, vr.sha256);

        int64_t mtime = o->image ? o->image->mtime : 0;
        if ((r = format_out_new(out_fd, o, &out)) < 0 ||
            (r = tar_entry(out, ovf_name, ovf.buf, ovf.len, -1, mtime)) < 0 ||
            (r = tar_entry(out, mf_name, mf.buf, mf.len, -1, mtime)) < 0 ||
            (r = tar_entry(out, disk, NULL, vr.bytes_written, spool, mtime)) < 0 ||
            (r = format_out_zeros(out, 2 * TAR_BLOCK)) < 0)
                goto done;
        struct format_result fr;
        if ((r = format_out_finish(out, &fr)) < 0)
                goto done;
        fr.data_bytes = vr.data_bytes;
        *res = fr;
done:
        strbuf_free(&ovf);
        strbuf_free(&mf);
        return r;
}

/* A tar whose first entry is an .ovf. */
static int ova_probe(const uint8_t *head, size_t len) {
        if (len < TAR_BLOCK || memcmp(head + 257, "ustar", 5) != 0)
                return 0;
        size_t n = strnlen((const char *)head, 100);
        return n > 4 && memcmp(head + n - 4, ".ovf", 4) == 0 ? 100 : 0;
}

static const struct field product_fields[] = {
        {"name", FT_STRING, 0, NULL, NULL, "the product's name (default: the image's)"},
        {"version", FT_STRING, 0, NULL, NULL, "its version (default 1.0)"},
        {"vendor", FT_STRING, 0, NULL, NULL, "its vendor (default kiln)"},
        {"properties", FT_SCALAR_MAP, 0, NULL, NULL, "custom properties: KEY: value"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct format_option ova_options[] = {
        {{"cpus", FT_INT, 0, NULL, NULL, "virtual CPUs (default 2)"}, NULL, "sets virtual hardware (cpus:)"},
        {{"memory", FT_SIZE, 0, NULL, NULL, "memory (default 2G)"}, NULL, "sets virtual hardware (memory:)"},
        {{"firmware", FT_STRING, 0, NULL, firmwares, "auto (efi with an ESP, else bios), efi, bios"},
         NULL, "sets the firmware (firmware:)"},
        FORMAT_OPTION_ADAPTER,
        {{"network", FT_STRING, 0, NULL, NULL, "the network's name (default \"VM Network\")"},
         NULL, "names a network (network:)"},
        {{"hardware_version", FT_INT, 0, NULL, NULL, "vmx-N (default 13)"},
         NULL, "sets the virtual hardware version (hardware_version:)"},
        {{"guest_os", FT_STRING, 0, NULL, NULL, "vSphere guest id (default by distribution and arch)"},
         NULL, "sets the guest OS (guest_os:)"},
        {{"product", FT_OBJECT, 0, product_fields, NULL, "the OVF product section"},
         NULL, "has a product section (product:)"},
        {{NULL, 0, 0, NULL, NULL, NULL}, NULL, NULL},
};

const struct format_writer ova_writer = {
        .name = "ova",
        .extension = "ova",
        .options = ova_options,
        .probe = ova_probe,
        .write = ova_write,
        .max_size = 2ull << 40,
        .max_size_why = "2 TiB (its disk is a streamOptimized VMDK: 32-bit sector numbers in the grain tables)",
};
