/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ISO 9660 writer, written from ECMA-119 (2nd edition), the Joliet
 * specification (Microsoft, 1995), SUSP 1.10 and RRIP 1.10.
 *
 * Design: the whole layout is computed before a byte is written, so the
 * image can be written front to back in one pass (a pipe will do) and the
 * metadata never needs patching. Three phases:
 *
 *   1. tree:   entries → a tree of nodes (implicit parent directories),
 *              every path, name and limit checked, source files stat'ed;
 *   2. layout: per directory, primary names assigned (unique per
 *              directory) and children sorted for each of the two trees
 *              (primary with Rock Ridge, Joliet); directories numbered in
 *              path-table order (breadth first); every extent placed;
 *   3. write:  descriptors, the Rock Ridge ER sector, path tables,
 *              directories, file data; each region built in memory and
 *              padded to the sector, so the position written always equals
 *              the position planned (checked at the end).
 *
 * The record builders are the single source of truth for sizes: layout
 * calls them without an output buffer to measure, write calls them again
 * to fill.
 */
#include "vm/iso9660.h"

#include "base/util.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

enum { PRIMARY, JOLIET, NTREES };
enum rec_kind { REC_SELF, REC_PARENT, REC_CHILD };

#define NAME_BYTES_MAX 128 /* UTF-8 bytes per name: keeps a Rock Ridge record under 255 */
#define IO_CHUNK (256u * 1024)

/* Rock Ridge entry sizes (SUSP 1.10 / RRIP 1.10). */
#define SUSP_SP_LEN 7
#define SUSP_CE_LEN 28
#define RR_PX_LEN 36
#define RR_TF_LEN (5 + 3 * 7) /* modify, access, attributes: short form */
#define RR_NM_HDR 5

static const char rr_er_id[] = "RRIP_1991A";
static const char rr_er_des[] =
        "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
static const char rr_er_src[] =
        "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN "
        "PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
#define RR_ER_LEN (8 + sizeof(rr_er_id) - 1 + sizeof(rr_er_des) - 1 + sizeof(rr_er_src) - 1)

struct node {
        char *name;            /* original last component (owned); "" for the root */
        char iso[16];          /* primary identifier: "NAME.EXT;1" or "DIRNAME" */
        uint16_t ucs[ISO9660_NAME_MAX]; /* Joliet identifier */
        size_t nucs;
        bool dir;
        bool explicit_dir;     /* given as an entry, not only implied by a path */
        unsigned mode;         /* permission bits */
        size_t entry;          /* index of its entry, SIZE_MAX for implied dirs */
        struct node *parent;   /* the root is its own parent */
        struct node **kids;    /* owned nodes, in creation order */
        size_t nkids, capkids;
        struct node **sorted[NTREES]; /* borrowed, in the order of each tree */
        unsigned nsubdirs;
        uint16_t number[NTREES];      /* path table directory number, root = 1 */
        uint32_t lba[NTREES], size[NTREES]; /* directory extents */
        uint64_t data_size;    /* files */
        uint32_t data_lba;
};

/* A small string-keyed hash map (open addressing, FNV-1a). Keys are owned. */
struct strmap {
        char **keys;
        void **vals;
        size_t cap, n;
};

static uint64_t fnv1a(const char *s) {
        uint64_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ull;
        return h;
}

static void strmap_free(struct strmap *m) {
        for (size_t i = 0; i < m->cap; i++)
                free(m->keys[i]);
        free(m->keys);
        free(m->vals);
        *m = (struct strmap){0};
}

static void **strmap_slot(struct strmap *m, const char *key, bool *ret_found);

static void strmap_grow(struct strmap *m) {
        struct strmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->n = 0;
        m->keys = xcalloc(m->cap, sizeof(*m->keys));
        m->vals = xcalloc(m->cap, sizeof(*m->vals));
        for (size_t i = 0; i < old.cap; i++)
                if (old.keys[i]) {
                        bool found;
                        void **v = strmap_slot(m, old.keys[i], &found);
                        *v = old.vals[i];
                }
        strmap_free(&old);
}

/* The value slot for key, inserting key (with a NULL value) when absent. */
static void **strmap_slot(struct strmap *m, const char *key, bool *ret_found) {
        if ((m->n + 1) * 2 > m->cap)
                strmap_grow(m);
        size_t i = fnv1a(key) & (m->cap - 1);
        while (m->keys[i]) {
                if (streq(m->keys[i], key)) {
                        *ret_found = true;
                        return &m->vals[i];
                }
                i = (i + 1) & (m->cap - 1);
        }
        m->keys[i] = xstrdup(key);
        m->n++;
        *ret_found = false;
        return &m->vals[i];
}

struct iso {
        const struct iso9660_entry *entries;
        size_t n;
        const struct iso9660_options *o;
        struct node *root;
        size_t nnodes;
        struct node **dirs[NTREES]; /* path table order */
        size_t ndirs;
        struct node **files;        /* entry order */
        size_t nfiles, capfiles;
        uint8_t date7[7];           /* directory record date (9.1.5) */
        char date17[17];            /* volume descriptor date (8.4.26.1) */
        uint32_t ce_lba;
        uint32_t pt_size[NTREES], pt_l[NTREES], pt_m[NTREES];
        uint32_t total;             /* sectors */
        size_t bad;
};

static void node_free(struct node *n) {
        if (!n)
                return;
        for (size_t i = 0; i < n->nkids; i++)
                node_free(n->kids[i]);
        free(n->kids);
        for (int t = 0; t < NTREES; t++)
                free(n->sorted[t]);
        free(n->name);
        free(n);
}

static void iso_done(struct iso *iso) {
        node_free(iso->root);
        for (int t = 0; t < NTREES; t++)
                free(iso->dirs[t]);
        free(iso->files);
}

/* ---- byte order helpers (ECMA-119 7.2, 7.3) ---- */

static void put_le16(uint8_t *p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
static void put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8, p[1] = v & 0xff; }
static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}
static void put_be32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put_both16(uint8_t *p, uint16_t v) { put_le16(p, v), put_be16(p + 2, v); }
static void put_both32(uint8_t *p, uint32_t v) { put_le32(p, v), put_be32(p + 4, v); }

static uint32_t sectors(uint64_t bytes) {
        return (uint32_t)((bytes + ISO9660_SECTOR - 1) / ISO9660_SECTOR);
}

/* ---- names ---- */

/* Decodes UTF-8 name into UCS-2 (Basic Multilingual Plane only), rejecting
 * what Joliet forbids. Returns the number of characters or -errno. */
static int name_to_ucs2(const char *name, uint16_t *out) {
        size_t n = 0;
        const unsigned char *s = (const unsigned char *)name;
        while (*s) {
                uint32_t c;
                int more;
                if (*s < 0x80)
                        c = *s, more = 0;
                else if ((*s & 0xe0) == 0xc0)
                        c = *s & 0x1f, more = 1;
                else if ((*s & 0xf0) == 0xe0)
                        c = *s & 0x0f, more = 2;
                else
                        return -EINVAL; /* 4-byte sequences: beyond UCS-2 */
                s++;
                for (int i = 0; i < more; i++, s++) {
                        if ((*s & 0xc0) != 0x80)
                                return -EINVAL;
                        c = (c << 6) | (*s & 0x3f);
                }
                if ((more == 1 && c < 0x80) || (more == 2 && c < 0x800) ||
                    (c >= 0xd800 && c <= 0xdfff))
                        return -EINVAL; /* overlong or surrogate */
                if (c < 0x20 || c == 0x7f || (c < 0x80 && strchr("*/:;?\\", (int)c)))
                        return -EINVAL;
                if (n >= ISO9660_NAME_MAX)
                        return -E2BIG;
                out[n++] = (uint16_t)c;
        }
        return (int)n;
}

static char dchar(unsigned char c) {
        if (c >= 'a' && c <= 'z')
                return (char)(c - 'a' + 'A');
        if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return (char)c;
        return '_';
}

/* The level-1 identifier for name, with `suffix` (a decimal number, or
 * NULL) replacing the end of the 8-character name part to make it unique. */
static void iso_name(const char *name, bool dir, const char *suffix, char out[16]) {
        char base[9] = "", ext[4] = "";
        const char *dot = dir ? NULL : strrchr(name, '.');
        if (dot == name)
                dot = NULL; /* ".profile" is a name, not an extension */
        size_t blen = dot ? (size_t)(dot - name) : strlen(name), nb = 0, ne = 0;
        for (size_t i = 0; i < blen && nb < 8; i++)
                base[nb++] = dchar((unsigned char)name[i]);
        base[nb] = 0;
        for (const char *p = dot ? dot + 1 : ""; *p && ne < 3; p++)
                ext[ne++] = dchar((unsigned char)*p);
        ext[ne] = 0;
        if (suffix) {
                size_t sl = strlen(suffix), keep = nb + sl > 8 ? 8 - sl : nb;
                memcpy(base + keep, suffix, sl + 1);
        } else if (nb == 0 && (dir || ne == 0)) {
                base[0] = '_', base[1] = 0;
        }
        if (dir)
                snprintf(out, 16, "%s", base);
        else
                snprintf(out, 16, "%s.%s;1", base, ext);
}

/* Primary identifiers in ECMA-119 9.3 order: name part, then extension,
 * each compared as if padded with spaces (then the version, always 1). */
static int cmp_padded(const char *a, size_t la, const char *b, size_t lb) {
        size_t n = la > lb ? la : lb;
        for (size_t i = 0; i < n; i++) {
                unsigned char ca = i < la ? (unsigned char)a[i] : ' ';
                unsigned char cb = i < lb ? (unsigned char)b[i] : ' ';
                if (ca != cb)
                        return ca < cb ? -1 : 1;
        }
        return 0;
}

static int cmp_primary(const void *pa, const void *pb) {
        const struct node *a = *(struct node *const *)pa, *b = *(struct node *const *)pb;
        size_t la = strcspn(a->iso, ".;"), lb = strcspn(b->iso, ".;");
        int r = cmp_padded(a->iso, la, b->iso, lb);
        if (r)
                return r;
        const char *ea = a->iso + la + (a->iso[la] == '.'), *eb = b->iso + lb + (b->iso[lb] == '.');
        r = cmp_padded(ea, strcspn(ea, ";"), eb, strcspn(eb, ";"));
        /* A directory "X" and a file "X.;1" tie above: any fixed order will
         * do, this one keeps qsort's result independent of input order. */
        return r ? r : strcmp(a->iso, b->iso);
}

/* Joliet identifiers: UCS-2 code units, shorter ones padded with 0. */
static int cmp_joliet(const void *pa, const void *pb) {
        const struct node *a = *(struct node *const *)pa, *b = *(struct node *const *)pb;
        size_t n = a->nucs < b->nucs ? a->nucs : b->nucs;
        for (size_t i = 0; i < n; i++)
                if (a->ucs[i] != b->ucs[i])
                        return a->ucs[i] < b->ucs[i] ? -1 : 1;
        return a->nucs < b->nucs ? -1 : a->nucs > b->nucs;
}

static int cmp_original(const void *pa, const void *pb) {
        const struct node *a = *(struct node *const *)pa, *b = *(struct node *const *)pb;
        return strcmp(a->name, b->name);
}

/* ---- phase 1: the tree ---- */

static struct node *node_add(struct iso *iso, struct node *parent, const char *name, bool dir) {
        struct node *n = xcalloc(1, sizeof(*n));
        n->name = xstrdup(name);
        n->dir = dir;
        n->mode = dir ? 0755 : 0644;
        n->entry = SIZE_MAX;
        n->parent = parent;
        GROW(parent->kids, parent->nkids, parent->capkids);
        parent->kids[parent->nkids++] = n;
        if (dir)
                parent->nsubdirs++;
        iso->nnodes++;
        return n;
}

static int add_entry(struct iso *iso, struct strmap *paths, size_t idx) {
        const struct iso9660_entry *e = &iso->entries[idx];
        if (!e->path || !*e->path)
                return -EINVAL;
        size_t plen = strlen(e->path);
        if (plen > ISO9660_PATH_MAX)
                return -E2BIG;
        if (e->path[0] == '/' || e->path[plen - 1] == '/')
                return -EINVAL;
        if (e->mode & ~07777u)
                return -EINVAL;
        if (!e->directory && e->data && e->source)
                return -EINVAL;

        struct node *cur = iso->root;
        unsigned level = 1; /* the root's */
        const char *p = e->path;
        for (;;) {
                size_t len = strcspn(p, "/");
                bool last = p[len] == 0;
                _cleanup_free_ char *comp = xstrndup(p, len);
                if (len == 0 || streq(comp, ".") || streq(comp, ".."))
                        return -EINVAL;
                if (len > NAME_BYTES_MAX)
                        return -E2BIG;
                uint16_t ucs[ISO9660_NAME_MAX];
                int r = name_to_ucs2(comp, ucs);
                if (r < 0)
                        return r;
                bool dir = !last || e->directory;
                if (dir && ++level > ISO9660_DEPTH_MAX)
                        return -E2BIG;
                _cleanup_free_ char *prefix = xstrndup(e->path, (size_t)(p + len - e->path));
                bool found;
                void **slot = strmap_slot(paths, prefix, &found);
                struct node *n = *slot;
                if (found) {
                        if (!n->dir)
                                return -EEXIST; /* a file used as a directory, or twice */
                        if (last) {
                                if (!e->directory || n->explicit_dir)
                                        return -EEXIST;
                                n->explicit_dir = true;
                                n->entry = idx;
                                if (e->mode)
                                        n->mode = e->mode;
                        }
                } else {
                        if (iso->nnodes >= ISO9660_FILES_MAX)
                                return -E2BIG;
                        n = node_add(iso, cur, comp, dir);
                        memcpy(n->ucs, ucs, sizeof(ucs[0]) * (size_t)r);
                        n->nucs = (size_t)r;
                        *slot = n;
                        if (last) {
                                n->entry = idx;
                                n->explicit_dir = e->directory;
                                if (e->mode)
                                        n->mode = e->mode;
                        }
                }
                if (last) {
                        if (!n->dir) {
                                if (e->source) {
                                        struct stat st;
                                        if (stat(e->source, &st) < 0)
                                                return -errno;
                                        if (S_ISDIR(st.st_mode))
                                                return -EISDIR;
                                        if (!S_ISREG(st.st_mode))
                                                return -EINVAL;
                                        n->data_size = (uint64_t)st.st_size;
                                } else {
                                        n->data_size = e->data_len;
                                }
                                if (n->data_size > ISO9660_FILE_SIZE_MAX)
                                        return -E2BIG;
                                GROW(iso->files, iso->nfiles, iso->capfiles);
                                iso->files[iso->nfiles++] = n;
                        }
                        return 0;
                }
                cur = n;
                p += len + 1;
        }
}

/* ---- phase 2: layout ---- */

/* Gives the children of d unique primary names and sorts them per tree. */
static void name_children(struct node *d) {
        if (d->nkids == 0)
                return;
        struct node **byname = xreallocarray(NULL, d->nkids, sizeof(*byname));
        memcpy(byname, d->kids, d->nkids * sizeof(*byname));
        qsort(byname, d->nkids, sizeof(*byname), cmp_original);
        struct strmap taken = {0};
        for (size_t i = 0; i < d->nkids; i++) {
                struct node *k = byname[i];
                bool found;
                iso_name(k->name, k->dir, NULL, k->iso);
                void **v = strmap_slot(&taken, k->iso, &found);
                for (unsigned seq = 1; found; seq++) {
                        char suffix[12];
                        snprintf(suffix, sizeof(suffix), "%u", seq);
                        iso_name(k->name, k->dir, suffix, k->iso);
                        v = strmap_slot(&taken, k->iso, &found);
                }
                *v = k;
        }
        strmap_free(&taken);
        for (int t = 0; t < NTREES; t++) {
                d->sorted[t] = xreallocarray(NULL, d->nkids, sizeof(*byname));
                memcpy(d->sorted[t], byname, d->nkids * sizeof(*byname));
                qsort(d->sorted[t], d->nkids, sizeof(*byname), t == PRIMARY ? cmp_primary : cmp_joliet);
        }
        free(byname);
        for (size_t i = 0; i < d->nkids; i++)
                if (d->kids[i]->dir)
                        name_children(d->kids[i]);
}

/* Builds one directory record into out (when not NULL; 255 bytes) and
 * returns its length. */
static size_t dir_record(const struct iso *iso, int tree, const struct node *n, enum rec_kind kind,
                         uint8_t *out) {
        uint8_t r[256] = {0};
        size_t lfi = kind != REC_CHILD ? 1 : tree == PRIMARY ? strlen(n->iso) : 2 * n->nucs;
        size_t len = 33 + lfi + (lfi % 2 == 0);
        if (out) {
                put_both32(r + 2, n->dir ? n->lba[tree] : n->data_lba);
                put_both32(r + 10, n->dir ? n->size[tree] : (uint32_t)n->data_size);
                memcpy(r + 18, iso->date7, 7);
                r[25] = n->dir ? 0x02 : 0x00;
                put_both16(r + 28, 1);
                r[32] = (uint8_t)lfi;
                if (kind == REC_SELF)
                        r[33] = 0;
                else if (kind == REC_PARENT)
                        r[33] = 1;
                else if (tree == PRIMARY)
                        memcpy(r + 33, n->iso, lfi);
                else
                        for (size_t i = 0; i < n->nucs; i++)
                                put_be16(r + 33 + 2 * i, n->ucs[i]);
        }
        if (tree == PRIMARY) {
                /* System Use: SUSP/RRIP entries. SP must come first in the
                 * root's "." record; CE points at the ER sector. */
                bool root_self = kind == REC_SELF && n == iso->root;
                uint8_t *s = r + len;
                if (root_self) {
                        if (out) {
                                memcpy(s, "SP", 2);
                                s[2] = SUSP_SP_LEN, s[3] = 1, s[4] = 0xbe, s[5] = 0xef, s[6] = 0;
                        }
                        s += SUSP_SP_LEN;
                }
                if (out) {
                        memcpy(s, "PX", 2);
                        s[2] = RR_PX_LEN, s[3] = 1;
                        put_both32(s + 4, (n->dir ? S_IFDIR : S_IFREG) | n->mode);
                        put_both32(s + 12, n->dir ? 2 + n->nsubdirs : 1);
                        put_both32(s + 20, 0);
                        put_both32(s + 28, 0);
                }
                s += RR_PX_LEN;
                if (out) {
                        memcpy(s, "TF", 2);
                        s[2] = RR_TF_LEN, s[3] = 1, s[4] = 0x02 | 0x04 | 0x08;
                        for (int i = 0; i < 3; i++)
                                memcpy(s + 5 + 7 * i, iso->date7, 7);
                }
                s += RR_TF_LEN;
                if (kind == REC_CHILD) {
                        size_t nl = strlen(n->name);
                        if (out) {
                                memcpy(s, "NM", 2);
                                s[2] = (uint8_t)(RR_NM_HDR + nl), s[3] = 1, s[4] = 0;
                                memcpy(s + RR_NM_HDR, n->name, nl);
                        }
                        s += RR_NM_HDR + nl;
                }
                if (root_self) {
                        if (out) {
                                memcpy(s, "CE", 2);
                                s[2] = SUSP_CE_LEN, s[3] = 1;
                                put_both32(s + 4, iso->ce_lba);
                                put_both32(s + 12, 0);
                                put_both32(s + 20, RR_ER_LEN);
                        }
                        s += SUSP_CE_LEN;
                }
                len = (size_t)(s - r);
                len += len % 2; /* records have even lengths */
        }
        if (out) {
                r[0] = (uint8_t)len;
                memcpy(out, r, len);
        }
        return len;
}

/* Lays out (out NULL: measures) the extent of directory d in tree; returns
 * its size, a multiple of the sector size. A record never crosses a sector
 * boundary (ECMA-119 6.8.1.1). */
static uint32_t dir_extent(const struct iso *iso, int tree, const struct node *d, uint8_t *out) {
        size_t pos = 0;
        for (size_t i = 0; i < d->nkids + 2; i++) {
                const struct node *n = i == 0 ? d : i == 1 ? d->parent : d->sorted[tree][i - 2];
                enum rec_kind kind = i == 0 ? REC_SELF : i == 1 ? REC_PARENT : REC_CHILD;
                size_t len = dir_record(iso, tree, n, kind, NULL);
                if (pos % ISO9660_SECTOR + len > ISO9660_SECTOR)
                        pos += ISO9660_SECTOR - pos % ISO9660_SECTOR;
                if (out)
                        dir_record(iso, tree, n, kind, out + pos);
                pos += len;
        }
        return sectors(pos) * ISO9660_SECTOR;
}

/* Builds (out NULL: measures) the L (msb false) or M path table of tree. */
static uint32_t path_table(const struct iso *iso, int tree, bool msb, uint8_t *out) {
        size_t pos = 0;
        for (size_t i = 0; i < iso->ndirs; i++) {
                const struct node *d = iso->dirs[tree][i];
                size_t ld = d == iso->root ? 1 : tree == PRIMARY ? strlen(d->iso) : 2 * d->nucs;
                if (out) {
                        uint8_t *r = out + pos;
                        r[0] = (uint8_t)ld;
                        r[1] = 0;
                        (msb ? put_be32 : put_le32)(r + 2, d->lba[tree]);
                        (msb ? put_be16 : put_le16)(r + 6, d->parent->number[tree]);
                        if (d == iso->root)
                                r[8] = 0;
                        else if (tree == PRIMARY)
                                memcpy(r + 8, d->iso, ld);
                        else
                                for (size_t k = 0; k < d->nucs; k++)
                                        put_be16(r + 8 + 2 * k, d->ucs[k]);
                }
                pos += 8 + ld + ld % 2;
        }
        return (uint32_t)pos;
}

static int layout(struct iso *iso) {
        name_children(iso->root);
        /* Number directories breadth first: by level, then parent number,
         * then identifier (ECMA-119 6.9.1). */
        for (int t = 0; t < NTREES; t++) {
                size_t cap = 0, n = 0;
                struct node **q = NULL;
                GROW(q, n, cap);
                q[n++] = iso->root;
                for (size_t i = 0; i < n; i++) {
                        if (i >= 0xffff)
                                return -E2BIG;
                        q[i]->number[t] = (uint16_t)(i + 1);
                        for (size_t k = 0; k < q[i]->nkids; k++)
                                if (q[i]->sorted[t][k]->dir) {
                                        GROW(q, n, cap);
                                        q[n++] = q[i]->sorted[t][k];
                                }
                }
                iso->dirs[t] = q;
                iso->ndirs = n;
        }
        uint64_t cur = 16 + 3; /* system area, PVD, SVD, terminator */
        iso->ce_lba = (uint32_t)cur++;
        for (int t = 0; t < NTREES; t++) {
                iso->pt_size[t] = path_table(iso, t, false, NULL);
                iso->pt_l[t] = (uint32_t)cur;
                cur += sectors(iso->pt_size[t]);
                iso->pt_m[t] = (uint32_t)cur;
                cur += sectors(iso->pt_size[t]);
        }
        for (int t = 0; t < NTREES; t++)
                for (size_t i = 0; i < iso->ndirs; i++) {
                        struct node *d = iso->dirs[t][i];
                        d->size[t] = dir_extent(iso, t, d, NULL);
                        d->lba[t] = (uint32_t)cur;
                        cur += d->size[t] / ISO9660_SECTOR;
                }
        for (size_t i = 0; i < iso->nfiles; i++) {
                struct node *f = iso->files[i];
                /* An empty file has no extent; it records location 0. */
                f->data_lba = f->data_size ? (uint32_t)cur : 0;
                cur += sectors(f->data_size);
                if (cur > UINT32_MAX)
                        return -E2BIG;
        }
        cur += ISO9660_PAD_SECTORS;
        if (cur > UINT32_MAX)
                return -E2BIG;
        iso->total = (uint32_t)cur;
        return 0;
}

/* ---- phase 3: writing ---- */

struct out {
        int fd;
        uint64_t pos;
};

static int emit(struct out *w, const void *data, size_t len) {
        int r = write_all(w->fd, data, len);
        if (r < 0)
                return r;
        w->pos += len;
        return 0;
}

static const uint8_t zeros[64 * 1024];

static int emit_zeros(struct out *w, uint64_t n) {
        while (n > 0) {
                size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
                int r = emit(w, zeros, k);
                if (r < 0)
                        return r;
                n -= k;
        }
        return 0;
}

/* Pads with zeros to the next sector boundary. */
static int emit_pad(struct out *w) {
        size_t rem = w->pos % ISO9660_SECTOR;
        return rem ? emit_zeros(w, ISO9660_SECTOR - rem) : 0;
}

/* A fixed-size identifier field: ASCII padded with spaces, or (Joliet) the
 * same characters as UCS-2 big-endian padded with UCS-2 spaces. */
static void put_id(uint8_t *p, size_t field, const char *s, bool ucs2) {
        size_t sl = strlen(s);
        if (!ucs2) {
                memset(p, ' ', field);
                memcpy(p, s, sl < field ? sl : field);
                return;
        }
        for (size_t i = 0; i + 1 < field; i += 2)
                put_be16(p + i, i / 2 < sl ? (uint8_t)s[i / 2] : ' ');
}

static void volume_descriptor(const struct iso *iso, int tree, uint8_t *s) {
        bool j = tree == JOLIET;
        memset(s, 0, ISO9660_SECTOR);
        s[0] = j ? 2 : 1;
        memcpy(s + 1, "CD001", 5);
        s[6] = 1;
        put_id(s + 8, 32, "", j);                      /* system identifier */
        put_id(s + 40, 32, iso->o->volume_id, j);      /* volume identifier */
        put_both32(s + 80, iso->total);                /* volume space size */
        if (j)
                memcpy(s + 88, "%/E", 3);              /* UCS-2 level 3 */
        put_both16(s + 120, 1);                        /* volume set size */
        put_both16(s + 124, 1);                        /* volume sequence number */
        put_both16(s + 128, ISO9660_SECTOR);           /* logical block size */
        put_both32(s + 132, iso->pt_size[tree]);
        put_le32(s + 140, iso->pt_l[tree]);
        put_be32(s + 148, iso->pt_m[tree]);
        /* The root record in the descriptor is the plain 34-byte form. */
        uint8_t *r = s + 156;
        r[0] = 34;
        put_both32(r + 2, iso->root->lba[tree]);
        put_both32(r + 10, iso->root->size[tree]);
        memcpy(r + 18, iso->date7, 7);
        r[25] = 0x02;
        put_both16(r + 28, 1);
        r[32] = 1;
        put_id(s + 190, 128, "", j);                   /* volume set */
        put_id(s + 318, 128, "", j);                   /* publisher */
        put_id(s + 446, 128, "", j);                   /* data preparer */
        put_id(s + 574, 128, "KILN", j);               /* application */
        put_id(s + 702, 37, "", j);                    /* copyright file */
        put_id(s + 739, 37, "", j);                    /* abstract file */
        put_id(s + 776, 37, "", j);                    /* bibliographic file */
        memcpy(s + 813, iso->date17, 17);              /* creation */
        memcpy(s + 830, iso->date17, 17);              /* modification */
        memset(s + 847, '0', 16);                      /* expiration: none */
        memset(s + 864, '0', 16);                      /* effective: none */
        s[881] = 1;                                    /* file structure version */
}

static int emit_source(struct out *w, const char *path, uint64_t size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
                return -EIO;
        _cleanup_free_ uint8_t *buf = xmalloc(IO_CHUNK);
        uint64_t left = size;
        while (left > 0) {
                ssize_t n = read(fd, buf, left < IO_CHUNK ? (size_t)left : IO_CHUNK);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO; /* shrank */
                int r = emit(w, buf, (size_t)n);
                if (r < 0)
                        return r;
                left -= (uint64_t)n;
        }
        ssize_t n = read(fd, buf, 1);
        if (n < 0)
                return -errno;
        return n == 0 ? 0 : -EIO; /* grew */
}

static int write_image(struct iso *iso, int fd) {
        struct out w = {.fd = fd};
        _cleanup_free_ uint8_t *s = xcalloc(16 + 4, ISO9660_SECTOR);
        volume_descriptor(iso, PRIMARY, s + 16 * ISO9660_SECTOR);
        volume_descriptor(iso, JOLIET, s + 17 * ISO9660_SECTOR);
        uint8_t *term = s + 18 * ISO9660_SECTOR;
        term[0] = 255;
        memcpy(term + 1, "CD001", 5);
        term[6] = 1;
        /* The continuation area: the ER entry identifying RRIP 1.10. */
        uint8_t *er = s + 19 * ISO9660_SECTOR;
        memcpy(er, "ER", 2);
        er[2] = RR_ER_LEN, er[3] = 1;
        er[4] = sizeof(rr_er_id) - 1, er[5] = sizeof(rr_er_des) - 1, er[6] = sizeof(rr_er_src) - 1;
        er[7] = 1;
        memcpy(er + 8, rr_er_id, er[4]);
        memcpy(er + 8 + er[4], rr_er_des, er[5]);
        memcpy(er + 8 + er[4] + er[5], rr_er_src, er[6]);
        int r = emit(&w, s, 20 * ISO9660_SECTOR);
        if (r < 0)
                return r;
        for (int t = 0; t < NTREES; t++)
                for (int m = 0; m < 2; m++) {
                        _cleanup_free_ uint8_t *pt = xcalloc(1, iso->pt_size[t]);
                        path_table(iso, t, m, pt);
                        if ((r = emit(&w, pt, iso->pt_size[t])) < 0 || (r = emit_pad(&w)) < 0)
                                return r;
                }
        for (int t = 0; t < NTREES; t++)
                for (size_t i = 0; i < iso->ndirs; i++) {
                        struct node *d = iso->dirs[t][i];
                        if (w.pos != (uint64_t)d->lba[t] * ISO9660_SECTOR)
                                return -EIO; /* layout and writer disagree: a bug */
                        _cleanup_free_ uint8_t *ext = xcalloc(1, d->size[t]);
                        dir_extent(iso, t, d, ext);
                        if ((r = emit(&w, ext, d->size[t])) < 0)
                                return r;
                }
        for (size_t i = 0; i < iso->nfiles; i++) {
                struct node *f = iso->files[i];
                const struct iso9660_entry *e = &iso->entries[f->entry];
                if (f->data_size == 0)
                        continue;
                if (w.pos != (uint64_t)f->data_lba * ISO9660_SECTOR)
                        return -EIO;
                iso->bad = f->entry;
                r = e->source ? emit_source(&w, e->source, f->data_size) : emit(&w, e->data, f->data_size);
                if (r < 0 || (r = emit_pad(&w)) < 0)
                        return r;
        }
        iso->bad = SIZE_MAX;
        if ((r = emit_zeros(&w, (uint64_t)ISO9660_PAD_SECTORS * ISO9660_SECTOR)) < 0)
                return r;
        if (w.pos != (uint64_t)iso->total * ISO9660_SECTOR)
                return -EIO;
        return 0;
}

static int set_dates(struct iso *iso, time_t t) {
        struct tm tm;
        if (t < 0 || !gmtime_r(&t, &tm) || tm.tm_year > 2155 - 1900)
                return -EINVAL;
        iso->date7[0] = (uint8_t)tm.tm_year;
        iso->date7[1] = (uint8_t)(tm.tm_mon + 1);
        iso->date7[2] = (uint8_t)tm.tm_mday;
        iso->date7[3] = (uint8_t)tm.tm_hour;
        iso->date7[4] = (uint8_t)tm.tm_min;
        iso->date7[5] = (uint8_t)tm.tm_sec;
        iso->date7[6] = 0; /* UTC */
        char buf[80];
        snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02d00", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        memcpy(iso->date17, buf, 16);
        iso->date17[16] = 0; /* offset from GMT in 15-minute units */
        return 0;
}

static int check_volume_id(const char *v) {
        if (!v || !*v)
                return -EINVAL;
        size_t n = strlen(v);
        if (n > ISO9660_VOLID_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if (v[i] < 0x20 || v[i] > 0x7e || v[i] == '/')
                        return -EINVAL;
        return 0;
}

static int prepare(struct iso *iso, const struct iso9660_entry *entries, size_t n,
                   const struct iso9660_options *o) {
        *iso = (struct iso){.entries = entries, .n = n, .o = o, .bad = SIZE_MAX};
        if (!o || (n > 0 && !entries))
                return -EINVAL;
        int r = check_volume_id(o->volume_id);
        if (r < 0)
                return r;
        if ((r = set_dates(iso, o->timestamp)) < 0)
                return r;
        if (n > ISO9660_FILES_MAX)
                return -E2BIG;
        iso->root = xcalloc(1, sizeof(*iso->root));
        iso->root->name = xstrdup("");
        iso->root->dir = true;
        iso->root->mode = 0755;
        iso->root->entry = SIZE_MAX;
        iso->root->parent = iso->root;
        iso->nnodes = 1;
        struct strmap paths = {0};
        for (size_t i = 0; i < n && r >= 0; i++)
                if ((r = add_entry(iso, &paths, i)) < 0)
                        iso->bad = i;
        strmap_free(&paths);
        if (r < 0)
                return r;
        return layout(iso);
}

int64_t iso9660_write_fd(int fd, const struct iso9660_entry *entries, size_t n,
                         const struct iso9660_options *o, size_t *ret_bad) {
        struct iso iso;
        int r = prepare(&iso, entries, n, o);
        if (r >= 0)
                r = write_image(&iso, fd);
        if (ret_bad)
                *ret_bad = r < 0 ? iso.bad : SIZE_MAX;
        int64_t size = (int64_t)iso.total * ISO9660_SECTOR;
        iso_done(&iso);
        return r < 0 ? r : size;
}

int64_t iso9660_write(const char *path, const struct iso9660_entry *entries, size_t n,
                      const struct iso9660_options *o, size_t *ret_bad) {
        if (ret_bad)
                *ret_bad = SIZE_MAX;
        if (!path || !*path)
                return -EINVAL;
        _cleanup_free_ char *tmp = xasprintf("%s.tmp-XXXXXX", path);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int64_t r = fchmod(fd, 0644) < 0 ? -errno : 0;
        if (r >= 0)
                r = iso9660_write_fd(fd, entries, n, o, ret_bad);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}
