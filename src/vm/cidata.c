/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloud-init NoCloud seeds: the four root files handed to kiln's ISO 9660
 * writer under the label cloud-init looks for, plus generators for the
 * small meta-data and user-data documents kiln writes itself.
 *
 * Generated YAML never interpolates raw strings: every value is validated
 * against a narrow character set or emitted as a double-quoted YAML scalar
 * with escapes, so a key comment cannot inject configuration.
 */
#include "vm/cidata.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "spec/spec.h"
#include "vm/iso9660.h"

#include <ctype.h>

int cidata_write_extra(const char *path, const struct cidata *c, const struct iso9660_entry *extra,
                       size_t nextra, time_t timestamp, size_t *ret_bad) {
        if (ret_bad)
                *ret_bad = SIZE_MAX;
        if (!path || !c || !c->user_data || !c->meta_data || (nextra && !extra) || nextra > ISO9660_FILES_MAX)
                return -EINVAL;
        _cleanup_free_ struct iso9660_entry *e = xcalloc(4 + nextra, sizeof(*e));
        size_t n = 0;
        const struct {
                const char *name, *text;
        } files[] = {
                {"meta-data", c->meta_data},
                {"network-config", c->network_config},
                {"user-data", c->user_data},
                {"vendor-data", c->vendor_data},
        };
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                if (!files[i].text)
                        continue;
                size_t len = strlen(files[i].text);
                if (len > CIDATA_FILE_MAX)
                        return -E2BIG;
                e[n++] = (struct iso9660_entry){.path = files[i].name, .data = files[i].text, .data_len = len};
        }
        size_t nseed = n, bad = SIZE_MAX;
        if (nextra)
                memcpy(e + n, extra, nextra * sizeof(*e));
        n += nextra;
        struct iso9660_options o = {.volume_id = "cidata", .timestamp = timestamp};
        int64_t r = iso9660_write(path, e, n, &o, &bad);
        if (ret_bad && r < 0 && bad != SIZE_MAX && bad >= nseed)
                *ret_bad = bad - nseed;
        return r < 0 ? (int)r : 0;
}

int cidata_write_at(const char *path, const struct cidata *c, time_t timestamp) {
        return cidata_write_extra(path, c, NULL, 0, timestamp, NULL);
}

int cidata_write(const char *path, const struct cidata *c) {
        return cidata_write_at(path, c, spec_now());
}

/* ---- validation ---- */

int cidata_check_hostname(const char *s) {
        if (!s || !*s || strlen(s) > 253)
                return -EINVAL;
        for (const char *label = s; *label;) {
                size_t n = strcspn(label, ".");
                if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
                        return -EINVAL;
                for (size_t i = 0; i < n; i++)
                        if (!isalnum((unsigned char)label[i]) && label[i] != '-')
                                return -EINVAL;
                label += n;
                if (*label == '.' && !*++label)
                        return -EINVAL; /* trailing dot */
        }
        return 0;
}

int cidata_check_user(const char *s) {
        if (!s || !*s || strlen(s) > 32 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
                return -EINVAL;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                        return -EINVAL;
        return 0;
}

int cidata_check_instance_id(const char *s) {
        if (!s || !*s || strlen(s) > 64)
                return -EINVAL;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
                        return -EINVAL;
        return 0;
}

/* "TYPE BASE64 [COMMENT]" on one line, TYPE one of OpenSSH's key types
 * (ssh-*, ecdsa-sha2-*, sk-*), BASE64 non-empty. */
int cidata_check_ssh_key(const char *s) {
        if (!s || strlen(s) > 16384 || strpbrk(s, "\r\n"))
                return -EINVAL;
        if (!startswith(s, "ssh-") && !startswith(s, "ecdsa-sha2-") && !startswith(s, "sk-"))
                return -EINVAL;
        const char *sp = strchr(s, ' ');
        if (!sp)
                return -EINVAL;
        size_t n = strcspn(sp + 1, " ");
        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)sp[1 + i]) && !strchr("+/=", sp[1 + i]))
                        return -EINVAL;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return -EINVAL;
        return 0;
}

/* ---- generation ---- */

/* s as a YAML double-quoted scalar. */
static void yaml_quoted(struct strbuf *b, const char *s) {
        strbuf_addc(b, '"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        strbuf_addf(b, "\\%c", *p);
                else if (*p < 0x20 || *p == 0x7f)
                        strbuf_addf(b, "\\x%02x", *p);
                else
                        strbuf_addc(b, (char)*p);
        }
        strbuf_addc(b, '"');
}

int cidata_meta_data_new(const char *instance_id, const char *hostname, char **ret) {
        if (cidata_check_instance_id(instance_id) < 0 || (hostname && cidata_check_hostname(hostname) < 0))
                return -EINVAL;
        *ret = hostname ? xasprintf("instance-id: %s\nlocal-hostname: %s\n", instance_id, hostname)
                        : xasprintf("instance-id: %s\n", instance_id);
        return 0;
}

int cidata_user_data_new(const char *user, const char *const *keys, size_t n, char **ret) {
        if (user && cidata_check_user(user) < 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (cidata_check_ssh_key(keys[i]) < 0)
                        return -EINVAL;
        _cleanup_strbuf_ struct strbuf b = STRBUF_INIT;
        strbuf_adds(&b, "#cloud-config\n");
        const char *indent = "";
        if (user) {
                strbuf_adds(&b, "users:\n  - name: ");
                yaml_quoted(&b, user);
                strbuf_adds(&b, "\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"
                                "    shell: /bin/bash\n"
                                "    lock_passwd: true\n");
                indent = "    ";
        }
        if (n > 0) {
                strbuf_addf(&b, "%sssh_authorized_keys:\n", indent);
                for (size_t i = 0; i < n; i++) {
                        strbuf_addf(&b, "%s  - ", indent);
                        yaml_quoted(&b, keys[i]);
                        strbuf_addc(&b, '\n');
                }
        }
        *ret = strbuf_detach(&b);
        return 0;
}

int cidata_default_instance_id(const char *user_data, const char *hostname,
                               char ret[CIDATA_INSTANCE_ID_LEN + 1]) {
        const char *h = hostname ? hostname : "";
        size_t ulen = strlen(user_data), len = ulen + 1 + strlen(h);
        _cleanup_free_ char *seed = xmalloc(len + 1);
        memcpy(seed, user_data, ulen + 1);
        memcpy(seed + ulen + 1, h, strlen(h) + 1);
        char hex[SHA256_HEX_LEN + 1];
        int r = hash_sha256_hex(seed, len, hex);
        if (r < 0)
                return r;
        snprintf(ret, CIDATA_INSTANCE_ID_LEN + 1, "iid-%.16s", hex);
        return 0;
}

int cidata_seed_make(const struct cidata_parts *p, struct cidata_seed *ret) {
        struct cidata_seed s = {.files = p->given};
        int r = 0;
        if (!s.files.user_data) {
                r = cidata_user_data_new(p->user, p->keys, p->nkeys, &s.user_data);
                s.files.user_data = s.user_data;
        }
        if (r >= 0 && !s.files.meta_data) {
                char iid[CIDATA_INSTANCE_ID_LEN + 1];
                const char *id = p->instance_id;
                if (!id) {
                        r = cidata_default_instance_id(s.files.user_data, p->hostname, iid);
                        id = iid;
                }
                if (r >= 0)
                        r = cidata_meta_data_new(id, p->hostname, &s.meta_data);
                s.files.meta_data = s.meta_data;
        }
        if (r < 0) {
                cidata_seed_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

void cidata_seed_done(struct cidata_seed *s) {
        free(s->user_data);
        free(s->meta_data);
        *s = (struct cidata_seed){0};
}

int cidata_ssh_keys_parse(const char *text, char ***keys, size_t *n, size_t *ret_line) {
        size_t before = *n, lineno = 0;
        for (const char *line = text, *next; *line; line = next) {
                const char *nl = strchrnul(line, '\n');
                next = *nl ? nl + 1 : nl;
                lineno++;
                size_t l = (size_t)(nl - line);
                if (l && line[l - 1] == '\r')
                        l--;
                while (l && (*line == ' ' || *line == '\t'))
                        line++, l--;
                if (!l || *line == '#')
                        continue;
                _cleanup_free_ char *key = xstrndup(line, l);
                if (cidata_check_ssh_key(key) < 0) {
                        *ret_line = lineno;
                        return -EINVAL;
                }
                *keys = xreallocarray(*keys, *n + 1, sizeof(char *));
                (*keys)[(*n)++] = TAKE_PTR(key);
        }
        return *n == before ? -ENODATA : 0;
}
