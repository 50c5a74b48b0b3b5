/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c — the content-addressed image store and its SQLite catalog (the
 * layout and guarantees are in store.h).
 *
 * Invariants
 *   - blobs/sha256/xx/<hex> has exactly the content named by <hex> when it
 *     appears: it is put in place by rename (copy, reflink) or link(2) of a
 *     file whose content was hashed after it was open and locked, and whose
 *     size and mtime did not move while it was hashed.
 *   - A blob is tied to the catalog (rename from tmp/ and its `blobs` row)
 *     and untied (rename to tmp/ and row deleted) only inside a write
 *     transaction (BEGIN IMMEDIATE), so an add that finds a blob in place
 *     and a removal that takes it away are serialised by SQLite's lock.
 *     An add whose blob vanished between preparing and committing prepares
 *     again (STORE_ADD_RETRIES times).
 *   - Every file in tmp/ is flocked (LOCK_EX) by the process working on it
 *     until it is renamed away or unlinked; store_open removes those it can
 *     lock, i.e. leftovers of dead processes. For a linked blob the lock is
 *     on the source file's inode, which is the same inode.
 *     Known gap: blobs being deleted sit unlocked in tmp/gc-* between
 *     their rename and the COMMIT; if that COMMIT fails (disk full, I/O
 *     error) and another process's store_open swept them meanwhile, the
 *     rows survive without their blob (served as 404, re-stored by the
 *     next add of that content). Locking them would deadlock against an
 *     add holding the lock of the same (hard-linked) inode.
 *   - Entry ids come from AUTOINCREMENT and are never reused; YYYYMMDD.N
 *     counters live in their own table, so a removed version's number is
 *     not handed out again either.
 *
 * The catalog's schema version is PRAGMA user_version; migrations[i] takes
 * version i to i+1 inside one transaction, so a store written by an older
 * kiln is upgraded on open and one written by a newer kiln is refused.
 *
 * Opening, migrations and the translation of SQLite result codes to -errno
 * are db.h's; store_error() shows its message prefixed "catalog: ".
 */
#include "store/store.h"

#include "base/hash.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "db/db.h"
#include "spec/value.h"
#include "spec/yaml.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define STORE_ADD_RETRIES 3
#define MANIFEST_MAX_BYTES (16u << 20)
#define COPY_CHUNK (1u << 20)

struct store {
        char *dir;
        struct db *db;
        char err[512];
};

/* ---- errors ----------------------------------------------------------------- */

_printf_(2, 3) static void set_error(struct store *st, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->err, sizeof(st->err), fmt, ap);
        va_end(ap);
}

/* Shows the catalog's last failure (db.h) as the store's error; returns r. */
static int catalog_error(struct store *st, int r) {
        set_error(st, "catalog: %s", db_error(st->db));
        return r;
}

/* A failed sqlite3_step (or other call) on the catalog: its -errno (db.h). */
static int sql_fail(struct store *st, int rc) { return catalog_error(st, db_fail(st->db, rc)); }

const char *store_error(const struct store *st) { return st->err; }

/* ---- catalog ------------------------------------------------------------------ */

static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE blobs("
        "  sha256 TEXT PRIMARY KEY,"
        "  size INTEGER NOT NULL,"
        "  mtime_ns INTEGER NOT NULL,"   /* of the blob file when stored */
        "  added INTEGER NOT NULL);"
        "CREATE TABLE entries("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  name TEXT NOT NULL, version TEXT NOT NULL,"
        "  build_id TEXT, arch TEXT, role TEXT,"
        "  format TEXT NOT NULL, file TEXT NOT NULL,"
        "  size INTEGER NOT NULL,"
        "  sha256 TEXT NOT NULL REFERENCES blobs(sha256),"
        "  sha512 TEXT,"
        "  created INTEGER NOT NULL, added INTEGER NOT NULL,"
        "  UNIQUE(name, version, file));"
        "CREATE INDEX entries_sha256 ON entries(sha256);"
        "CREATE INDEX entries_name ON entries(name, created);"
        "CREATE TABLE labels("
        "  entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,"
        "  key TEXT NOT NULL, value TEXT NOT NULL,"
        "  PRIMARY KEY(entry_id, key)) WITHOUT ROWID;"
        "CREATE INDEX labels_kv ON labels(key, value);"
        "CREATE TABLE version_counters("
        "  name TEXT NOT NULL, day TEXT NOT NULL, n INTEGER NOT NULL,"
        "  PRIMARY KEY(name, day)) WITHOUT ROWID;",
};

static int exec(struct store *st, const char *sql) {
        int r = db_exec(st->db, sql);
        return r < 0 ? catalog_error(st, r) : r;
}

static int prepare(struct store *st, const char *sql, sqlite3_stmt **ret) {
        int r = db_prepare(st->db, sql, ret);
        return r < 0 ? catalog_error(st, r) : r;
}

static int begin(struct store *st) {
        int r = db_begin(st->db);
        return r < 0 ? catalog_error(st, r) : r;
}

static int commit(struct store *st) {
        int r = db_commit(st->db);
        return r < 0 ? catalog_error(st, r) : r;
}

/* ---- paths and names -------------------------------------------------------- */

char *store_default_dir(void) {
        const char *e = getenv("KILN_STORE_DIR");
        if (e && *e)
                return xstrdup(e);
        e = getenv("XDG_DATA_HOME");
        if (e && *e == '/')
                return xasprintf("%s/kiln/store", e);
        e = getenv("HOME");
        return xasprintf("%s/.local/share/kiln/store", e && *e ? e : "/root");
}

const char *store_dir(const struct store *st) { return st->dir; }

static bool is_hex(const char *s, size_t len) {
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return s[len] == 0;
}

/* Names, versions, file names, formats: [A-Za-z0-9._+-], not starting with
 * '.' or '-', at most STORE_NAME_MAX — safe as URL segments and file names. */
bool store_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > STORE_NAME_MAX || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '+' || c == '-'))
                        return false;
        }
        return true;
}

static bool valid_label(const struct store_label *l) {
        size_t kn = l->key ? strlen(l->key) : 0, vn = l->value ? strlen(l->value) : 0;
        if (kn == 0 || kn > STORE_LABEL_KEY_MAX || !l->value || vn > STORE_LABEL_VALUE_MAX)
                return false;
        for (size_t i = 0; i < kn; i++) {
                char c = l->key[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || c == '/'))
                        return false;
        }
        for (size_t i = 0; i < vn; i++)
                if ((unsigned char)l->value[i] < 0x20 || l->value[i] == 0x7f)
                        return false;
        return true;
}

int store_blob_path(const struct store *st, const char *sha256, char **ret) {
        if (!sha256 || strlen(sha256) != 64 || !is_hex(sha256, 64))
                return -EINVAL;
        *ret = xasprintf("%s/blobs/sha256/%.2s/%s", st->dir, sha256, sha256);
        return 0;
}

static int64_t mtime_ns(const struct stat *s) {
        return (int64_t)s->st_mtim.tv_sec * 1000000000 + s->st_mtim.tv_nsec;
}

/* ---- open / close ----------------------------------------------------------- */

/* Removes tmp/ files no live process holds a lock on (see the invariants). */
static void sweep_tmp(const char *tmpdir) {
        DIR *d = opendir(tmpdir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", tmpdir, de->d_name);
                _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
                        unlink(p);
        }
        closedir(d);
}

int store_open(const char *dir, struct store **ret) {
        if (!dir || !*dir)
                return -EINVAL;
        _cleanup_free_ char *blobs = xasprintf("%s/blobs/sha256", dir);
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", dir);
        int r = mkdir_p(blobs, 0755);
        if (r < 0)
                return r;
        r = mkdir_p(tmp, 0755);
        if (r < 0)
                return r;
        struct store *st = xcalloc(1, sizeof(*st));
        st->dir = realpath(dir, NULL); /* absolute: paths shown stay valid */
        if (!st->dir)
                st->dir = xstrdup(dir);
        _cleanup_free_ char *db = xasprintf("%s/catalog.db", dir);
        st->db = db_new();
        const struct db_options o = {.busy_timeout_ms = STORE_BUSY_TIMEOUT_MS, .create = true,
                                     .sync_full = true};
        r = db_open(st->db, db, &o);
        if (r >= 0)
                r = db_migrate(st->db, migrations, ARRAY_SIZE(migrations));
        if (r < 0) {
                catalog_error(st, r);
                goto fail;
        }
        sweep_tmp(tmp);
        st->err[0] = 0;
        *ret = st;
        return 0;
fail:
        store_close(st);
        return r;
}

struct store *store_close(struct store *st) {
        if (!st)
                return NULL;
        db_free(st->db);
        free(st->dir);
        free(st);
        return NULL;
}

/* ---- entries ---------------------------------------------------------------- */

static void labels_free(struct store_label *labels, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(labels[i].key);
                free(labels[i].value);
        }
        free(labels);
}

void store_entry_done(struct store_entry *e) {
        free(e->name);
        free(e->version);
        free(e->build_id);
        free(e->arch);
        free(e->role);
        free(e->format);
        free(e->file);
        labels_free(e->labels, e->nlabels);
        memset(e, 0, sizeof(*e));
}

void store_entries_free(struct store_entry *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                store_entry_done(&v[i]);
        free(v);
}

#define ENTRY_COLUMNS                                                          \
        "e.id, e.name, e.version, e.build_id, e.arch, e.role, e.format, e.file, " \
        "e.size, e.sha256, e.sha512, e.created, e.added"

static char *col_text(sqlite3_stmt *s, int i) {
        const unsigned char *t = sqlite3_column_text(s, i);
        return t ? xstrdup((const char *)t) : NULL;
}

static int read_labels(struct store *st, struct store_entry *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT key, value FROM labels WHERE entry_id=? ORDER BY key", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, e->id);
        size_t cap = 0;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                GROW(e->labels, e->nlabels, cap);
                e->labels[e->nlabels].key = col_text(s, 0);
                e->labels[e->nlabels].value = col_text(s, 1);
                e->nlabels++;
        }
        return rc == SQLITE_DONE ? 0 : sql_fail(st, rc);
}

/* Runs a prepared SELECT of ENTRY_COLUMNS and collects the rows. */
static int collect(struct store *st, sqlite3_stmt *s, struct store_entry **ret, size_t *ret_n) {
        struct store_entry *v = NULL;
        size_t n = 0, cap = 0;
        int rc, r = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                GROW(v, n, cap);
                struct store_entry *e = &v[n++];
                memset(e, 0, sizeof(*e));
                e->id = sqlite3_column_int64(s, 0);
                e->name = col_text(s, 1);
                e->version = col_text(s, 2);
                e->build_id = col_text(s, 3);
                e->arch = col_text(s, 4);
                e->role = col_text(s, 5);
                e->format = col_text(s, 6);
                e->file = col_text(s, 7);
                e->size = (uint64_t)sqlite3_column_int64(s, 8);
                const unsigned char *h = sqlite3_column_text(s, 9);
                snprintf(e->sha256, sizeof(e->sha256), "%s", h ? (const char *)h : "");
                h = sqlite3_column_text(s, 10);
                snprintf(e->sha512, sizeof(e->sha512), "%s", h ? (const char *)h : "");
                e->created = sqlite3_column_int64(s, 11);
                e->added = sqlite3_column_int64(s, 12);
        }
        if (rc != SQLITE_DONE)
                r = sql_fail(st, rc);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = read_labels(st, &v[i]);
        if (r < 0) {
                store_entries_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int check_filter(struct store *st, const struct store_filter *f) {
        if (!f)
                return 0;
        if (f->nlabels > STORE_MAX_LABELS) {
                set_error(st, "more than %d label filters", STORE_MAX_LABELS);
                return -E2BIG;
        }
        for (size_t i = 0; i < f->nlabels; i++)
                if (!valid_label(&f->labels[i])) {
                        set_error(st, "invalid label filter '%s'", f->labels[i].key ? f->labels[i].key : "");
                        return -EINVAL;
                }
        return 0;
}

static int select_entries(struct store *st, const struct store_filter *f, const char *order,
                          struct store_entry **ret, size_t *ret_n) {
        int r = check_filter(st, f);
        if (r < 0)
                return r;
        struct strbuf sql = STRBUF_INIT;
        strbuf_adds(&sql, "SELECT " ENTRY_COLUMNS " FROM entries e WHERE 1");
        const char *cols[] = {"name", "version", "arch", "role", "format"};
        const char *vals[] = {f ? f->name : NULL, f ? f->version : NULL, f ? f->arch : NULL,
                              f ? f->role : NULL, f ? f->format : NULL};
        for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
                if (vals[i])
                        strbuf_addf(&sql, " AND e.%s=?", cols[i]);
        for (size_t i = 0; f && i < f->nlabels; i++)
                strbuf_adds(&sql, " AND EXISTS (SELECT 1 FROM labels l WHERE l.entry_id=e.id"
                                  " AND l.key=? AND l.value=?)");
        strbuf_addf(&sql, " ORDER BY %s", order);
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        r = prepare(st, sql.buf, &s);
        strbuf_free(&sql);
        if (r < 0)
                return r;
        int k = 1;
        for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
                if (vals[i])
                        db_bind_text(s, k++, vals[i]);
        for (size_t i = 0; f && i < f->nlabels; i++) {
                db_bind_text(s, k++, f->labels[i].key);
                db_bind_text(s, k++, f->labels[i].value);
        }
        return collect(st, s, ret, ret_n);
}

int store_list(struct store *st, const struct store_filter *f, struct store_entry **ret,
               size_t *ret_n) {
        return select_entries(st, f, "e.created DESC, e.id DESC", ret, ret_n);
}

int store_get(struct store *st, int64_t id, struct store_entry *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT " ENTRY_COLUMNS " FROM entries e WHERE e.id=?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, id);
        struct store_entry *v = NULL;
        size_t n = 0;
        r = collect(st, s, &v, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                free(v);
                set_error(st, "no entry with id %lld", (long long)id);
                return -ENOENT;
        }
        *ret = v[0];
        free(v);
        return 0;
}

int store_resolve(struct store *st, const char *ref, struct store_entry **ret, size_t *ret_n) {
        const char *colon = ref ? strchr(ref, ':') : NULL;
        _cleanup_free_ char *name = colon ? xstrndup(ref, colon - ref) : xstrdup_null(ref);
        const char *version = colon ? colon + 1 : NULL;
        if (!store_name_valid(name) || (version && !store_name_valid(version))) {
                set_error(st, "'%s' is not NAME or NAME:VERSION", ref ? ref : "");
                return -EINVAL;
        }
        _cleanup_free_ char *latest = NULL;
        if (!version || streq(version, "latest")) {
                struct store_entry *v = NULL;
                size_t n = 0;
                struct store_filter f = {.name = name};
                int r = store_list(st, &f, &v, &n);
                if (r < 0)
                        return r;
                if (n)
                        latest = xstrdup(v[0].version);
                store_entries_free(v, n);
                if (!latest) {
                        set_error(st, "no image named '%s'", name);
                        return -ENOENT;
                }
                version = latest;
        }
        struct store_filter f = {.name = name, .version = version};
        int r = select_entries(st, &f, "e.id", ret, ret_n);
        if (r >= 0 && *ret_n == 0) {
                free(*ret);
                *ret = NULL;
                set_error(st, "no image '%s:%s'", name, version);
                return -ENOENT;
        }
        return r;
}

void store_entries_json(const struct store_entry *v, size_t n, struct json_writer *w) {
        json_begin_array(w);
        for (size_t i = 0; i < n; i++) {
                const struct store_entry *e = &v[i];
                json_begin_object(w);
                json_key(w, "id");
                json_int(w, e->id);
                json_key(w, "name");
                json_string(w, e->name);
                json_key(w, "version");
                json_string(w, e->version);
                json_key(w, "build_id");
                json_string(w, e->build_id);
                json_key(w, "arch");
                json_string(w, e->arch);
                json_key(w, "role");
                json_string(w, e->role);
                json_key(w, "format");
                json_string(w, e->format);
                json_key(w, "file");
                json_string(w, e->file);
                json_key(w, "size");
                json_int(w, (int64_t)e->size);
                json_key(w, "sha256");
                json_string(w, e->sha256);
                json_key(w, "sha512");
                json_string(w, e->sha512[0] ? e->sha512 : NULL);
                json_key(w, "created");
                json_int(w, e->created);
                json_key(w, "added");
                json_int(w, e->added);
                json_key(w, "labels");
                json_begin_object(w);
                for (size_t k = 0; k < e->nlabels; k++) {
                        json_key(w, e->labels[k].key);
                        json_string(w, e->labels[k].value);
                }
                json_end_object(w);
                json_end_object(w);
        }
        json_end_array(w);
}

/* ---- hashing and bringing files in ------------------------------------------ */

struct hashes {
        EVP_MD_CTX *h256, *h512;
};

static int hashes_init(struct hashes *h, bool sha512) {
        h->h256 = EVP_MD_CTX_new();
        h->h512 = sha512 ? EVP_MD_CTX_new() : NULL;
        if (!h->h256 || (sha512 && !h->h512) || !EVP_DigestInit_ex(h->h256, EVP_sha256(), NULL) ||
            (h->h512 && !EVP_DigestInit_ex(h->h512, EVP_sha512(), NULL)))
                return -ENOMEM;
        return 0;
}

static void hashes_update(struct hashes *h, const void *p, size_t n) {
        EVP_DigestUpdate(h->h256, p, n);
        if (h->h512)
                EVP_DigestUpdate(h->h512, p, n);
}

static void hashes_final(struct hashes *h, char sha256[65], char sha512[129]) {
        unsigned char md[64];
        unsigned len = 0;
        EVP_DigestFinal_ex(h->h256, md, &len);
        hex_encode(md, 32, sha256);
        sha512[0] = 0;
        if (h->h512) {
                EVP_DigestFinal_ex(h->h512, md, &len);
                hex_encode(md, 64, sha512);
        }
}

static void hashes_done(struct hashes *h) {
        EVP_MD_CTX_free(h->h256);
        EVP_MD_CTX_free(h->h512);
        h->h256 = h->h512 = NULL;
}

static bool all_zero(const unsigned char *p, size_t n) {
        return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Hashes `size` bytes of in, and copies them to out when out >= 0, sparse:
 * holes (SEEK_HOLE) are hashed as zeros without being read, all-zero chunks
 * are not written. Cost: one read of the data, one hash pass. */
static int hash_copy(int in, int out, uint64_t size, struct hashes *h) {
        _cleanup_free_ unsigned char *buf = xmalloc(COPY_CHUNK);
        static const unsigned char zeros[65536];
        uint64_t off = 0;
        while (off < size) {
                off_t data = lseek(in, (off_t)off, SEEK_DATA);
                uint64_t dend;
                if (data < 0 && errno == ENXIO)
                        dend = size;
                else if (data < 0)
                        dend = off; /* no SEEK_DATA: read everything */
                else
                        dend = (uint64_t)data < size ? (uint64_t)data : size;
                for (; off < dend;) { /* a hole */
                        size_t k = dend - off < sizeof(zeros) ? dend - off : sizeof(zeros);
                        hashes_update(h, zeros, k);
                        off += k;
                }
                if (off >= size)
                        break;
                off_t hole = lseek(in, (off_t)off, SEEK_HOLE);
                uint64_t hend = hole < 0 || (uint64_t)hole > size || (uint64_t)hole <= off
                                        ? size : (uint64_t)hole;
                while (off < hend) {
                        size_t want = hend - off < COPY_CHUNK ? hend - off : COPY_CHUNK;
                        ssize_t got = pread(in, buf, want, (off_t)off);
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got < 0)
                                return -errno;
                        if (got == 0)
                                return -EIO; /* shrank while read */
                        hashes_update(h, buf, (size_t)got);
                        if (out >= 0 && !all_zero(buf, (size_t)got)) {
                                for (size_t done = 0; done < (size_t)got;) {
                                        ssize_t w = pwrite(out, buf + done, (size_t)got - done,
                                                           (off_t)(off + done));
                                        if (w < 0 && errno == EINTR)
                                                continue;
                                        if (w < 0)
                                                return -errno;
                                        done += (size_t)w;
                                }
                        }
                        off += (uint64_t)got;
                }
        }
        if (out >= 0 && ftruncate(out, (off_t)size) < 0)
                return -errno;
        return 0;
}

/* One artifact on its way in. */
struct item {
        char *path;          /* source */
        char *file;          /* name in the catalog */
        char *format;
        char want256[65];    /* recorded checksums ("" when none) */
        char want512[129];
        bool has_size;
        uint64_t want_size;
        /* filled by prepare_item */
        uint64_t size;
        char sha256[65];
        char sha512[129];
        bool private_;       /* the source is not world-readable */
        char *tmp;           /* tmp/ path to rename into place, or NULL */
        bool placed;         /* renamed into blobs/ by this transaction */
        int lock_fd;         /* holds the flock on tmp's inode */
        bool in_place;       /* the blob was already there */
        uint64_t elapsed_ms;
};

static void item_release(struct item *it) {
        if (it->tmp)
                unlink(it->tmp);
        free(it->tmp);
        it->tmp = NULL;
        if (it->lock_fd >= 0)
                close(it->lock_fd);
        it->lock_fd = -1;
}

static void item_done(struct item *it) {
        item_release(it);
        free(it->path);
        free(it->file);
        free(it->format);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Blobs are read-only; one added from a file others may not read (an
 * image of a build holding secrets, written 0600) is its owner's only. */
#define BLOB_MODE 0444
#define BLOB_MODE_PRIVATE 0400

/* Creates a locked, empty tmp/ file; returns its fd and path. */
static int make_tmp(struct store *st, char **ret_path) {
        for (int tries = 0; tries < 16; tries++) {
                unsigned char rnd[8];
                char hex[17];
                if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                        return -EIO;
                hex_encode(rnd, sizeof(rnd), hex);
                _cleanup_free_ char *p = xasprintf("%s/tmp/%s.blob", st->dir, hex);
                int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, BLOB_MODE);
                if (fd < 0 && errno == EEXIST)
                        continue;
                if (fd < 0)
                        return -errno;
                /* A sweeper may have taken it between open and flock. */
                struct stat a, b;
                if (flock(fd, LOCK_EX) < 0 || fstat(fd, &a) < 0 || stat(p, &b) < 0 ||
                    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
                        close(fd);
                        continue;
                }
                *ret_path = TAKE_PTR(p);
                return fd;
        }
        return -EEXIST;
}

static bool blob_present(struct store *st, const char *sha256, uint64_t size) {
        _cleanup_free_ char *p = NULL;
        struct stat s;
        return store_blob_path(st, sha256, &p) >= 0 && stat(p, &s) == 0 &&
               (uint64_t)s.st_size == size;
}

/* Hashes the source and stages its blob in tmp/ (reflink, link or copy), or
 * finds that the blob is already stored. */
static int prepare_item(struct store *st, struct item *it, unsigned flags) {
        uint64_t t0 = now_ms();
        _cleanup_close_ int in = open(it->path, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
                int r = -errno;
                set_error(st, "%s: %s", it->path, strerror(-r));
                return r;
        }
        struct stat s0;
        if (fstat(in, &s0) < 0)
                return -errno;
        if (!S_ISREG(s0.st_mode)) {
                set_error(st, "%s: not a regular file", it->path);
                return -EINVAL;
        }
        it->size = (uint64_t)s0.st_size;
        it->private_ = !(s0.st_mode & S_IROTH);
        if (it->has_size && it->size != it->want_size) {
                set_error(st, "%s: size is %llu, the manifest says %llu", it->path,
                          (unsigned long long)it->size, (unsigned long long)it->want_size);
                return -EBADMSG;
        }
        bool want512 = (flags & STORE_ADD_SHA512) || it->want512[0];
        /* Known content already stored: nothing to bring in. */
        if (it->want256[0] && !want512 && blob_present(st, it->want256, it->size)) {
                memcpy(it->sha256, it->want256, 65);
                it->in_place = true;
                it->elapsed_ms = now_ms() - t0;
                return 0;
        }
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int out = -1;
        bool copy = true, linked = false;
        int r;
        if (!(flags & STORE_ADD_COPY)) {
                out = make_tmp(st, &tmp);
                if (out < 0)
                        return out;
                if (ioctl(out, FICLONE, in) == 0) {
                        copy = false; /* reflink: hash the source below */
                } else {
                        /* Hard link: the blob is the source's inode, locked by us. */
                        close(out);
                        unlink(tmp);
                        out = -1;
                        _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", in);
                        if (flock(in, LOCK_EX) == 0 &&
                            linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
                                copy = false;
                                linked = true;
                                out = dup(in);
                                if (out < 0) {
                                        unlink(tmp);
                                        return -errno;
                                }
                        } else {
                                flock(in, LOCK_UN);
                                free(TAKE_PTR(tmp));
                        }
                }
        }
        if (copy && out < 0) {
                out = make_tmp(st, &tmp);
                if (out < 0)
                        return out;
        }
        /* A copy or reflink is no more readable than its source (a link is
         * its source's inode, and has its mode already). */
        if (it->private_ && !linked && fchmod(out, BLOB_MODE_PRIVATE) < 0) {
                int k = -errno;
                unlink(tmp);
                return k;
        }
        struct hashes h = {0};
        r = hashes_init(&h, want512);
        if (r >= 0)
                r = hash_copy(in, copy ? out : -1, it->size, &h);
        if (r >= 0)
                hashes_final(&h, it->sha256, it->sha512);
        hashes_done(&h);
        struct stat s1;
        if (r >= 0 && fstat(in, &s1) == 0 &&
            (s1.st_size != s0.st_size || mtime_ns(&s1) != mtime_ns(&s0))) {
                set_error(st, "%s: changed while it was being added", it->path);
                r = -EBUSY;
        }
        if (r >= 0 && copy && fsync(out) < 0)
                r = -errno;
        if (r >= 0 && it->want256[0] && !streq(it->want256, it->sha256)) {
                set_error(st, "%s: sha256 is %s, the manifest says %s", it->path, it->sha256,
                          it->want256);
                r = -EBADMSG;
        }
        if (r >= 0 && it->want512[0] && !streq(it->want512, it->sha512)) {
                set_error(st, "%s: sha512 does not match the manifest", it->path);
                r = -EBADMSG;
        }
        if (r < 0) {
                if (!st->err[0])
                        set_error(st, "%s: %s", it->path, strerror(-r));
                unlink(tmp);
                return r;
        }
        it->tmp = TAKE_PTR(tmp);
        it->lock_fd = out;
        out = -1;
        it->elapsed_ms = now_ms() - t0;
        return 0;
}

static int fsync_dir(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Inside the write transaction: puts the blob in place (when staged) and
 * records it. -EAGAIN when it was neither staged nor present any more. */
static int place_blob(struct store *st, struct item *it, int64_t now) {
        _cleanup_free_ char *path = NULL;
        int r = store_blob_path(st, it->sha256, &path);
        if (r < 0)
                return r;
        struct stat s;
        bool present = stat(path, &s) == 0 && (uint64_t)s.st_size == it->size;
        if (!present && !it->tmp)
                return -EAGAIN;
        if (!present) {
                _cleanup_free_ char *dir = xstrndup(path, strrchr(path, '/') - path);
                r = mkdir_p(dir, 0755);
                if (r < 0)
                        return r;
                if (rename(it->tmp, path) < 0)
                        return -errno;
                free(it->tmp);
                it->tmp = NULL;
                it->placed = true;
                fsync_dir(dir);
                if (stat(path, &s) < 0)
                        return -errno;
        } else {
                it->in_place = true;
        }
        /* The same content came before from a world-readable file: it is
         * private now that a private file holds it. */
        if (it->private_ && (s.st_mode & 0077) && chmod(path, s.st_mode & 0500) < 0)
                return -errno;
        _cleanup_stmt_ sqlite3_stmt *q = NULL;
        r = prepare(st, "INSERT INTO blobs(sha256, size, mtime_ns, added) VALUES(?,?,?,?) "
                        "ON CONFLICT(sha256) DO NOTHING", &q);
        if (r < 0)
                return r;
        db_bind_text(q, 1, it->sha256);
        sqlite3_bind_int64(q, 2, (int64_t)it->size);
        sqlite3_bind_int64(q, 3, mtime_ns(&s));
        sqlite3_bind_int64(q, 4, now);
        int rc = sqlite3_step(q);
        return rc == SQLITE_DONE ? 0 : sql_fail(st, rc);
}

/* The metadata shared by every item of one add. */
struct meta {
        char *name, *build_id, *arch, *role, *version;
        struct store_label *labels;
        size_t nlabels;
        int64_t created;
};

static void meta_done(struct meta *m) {
        free(m->name);
        free(m->build_id);
        free(m->arch);
        free(m->role);
        free(m->version);
        labels_free(m->labels, m->nlabels);
}

static void meta_set_label(struct meta *m, const char *key, const char *value) {
        for (size_t i = 0; i < m->nlabels; i++)
                if (streq(m->labels[i].key, key)) {
                        free(m->labels[i].value);
                        m->labels[i].value = xstrdup(value);
                        return;
                }
        m->labels = xreallocarray(m->labels, m->nlabels + 1, sizeof(*m->labels));
        m->labels[m->nlabels].key = xstrdup(key);
        m->labels[m->nlabels].value = xstrdup(value);
        m->nlabels++;
}

static void meta_override(struct meta *m, const struct store_add_options *o) {
        const char *src[] = {o->name, o->build_id, o->arch, o->role, o->version};
        char **dst[] = {&m->name, &m->build_id, &m->arch, &m->role, &m->version};
        for (size_t i = 0; i < ARRAY_SIZE(src); i++)
                if (src[i]) {
                        free(*dst[i]);
                        *dst[i] = xstrdup(src[i]);
                }
        for (size_t i = 0; i < o->nlabels; i++)
                meta_set_label(m, o->labels[i].key, o->labels[i].value);
}

static int check_meta(struct store *st, const struct meta *m, const struct item *items, size_t n) {
        const char *what[] = {"name", "build id", "arch", "role", "version"};
        const char *val[] = {m->name, m->build_id, m->arch, m->role, m->version};
        if (!m->name) {
                set_error(st, "no image name (give --name)");
                return -EINVAL;
        }
        for (size_t i = 0; i < ARRAY_SIZE(val); i++)
                if (val[i] && !store_name_valid(val[i])) {
                        set_error(st, "invalid %s '%s' (letters, digits, . _ + -; at most %d)",
                                  what[i], val[i], STORE_NAME_MAX);
                        return -EINVAL;
                }
        if (m->version && streq(m->version, "latest")) {
                set_error(st, "'latest' is not a version: it names the newest one");
                return -EINVAL;
        }
        if (m->nlabels > STORE_MAX_LABELS) {
                set_error(st, "more than %d labels", STORE_MAX_LABELS);
                return -E2BIG;
        }
        for (size_t i = 0; i < m->nlabels; i++)
                if (!valid_label(&m->labels[i])) {
                        set_error(st, "invalid label '%s' (key: letters, digits, . _ - /; "
                                      "value: no control characters)", m->labels[i].key);
                        return -EINVAL;
                }
        if (n == 0) {
                set_error(st, "nothing to add");
                return -EINVAL;
        }
        if (n > STORE_MAX_ARTIFACTS) {
                set_error(st, "more than %d files in one add", STORE_MAX_ARTIFACTS);
                return -E2BIG;
        }
        for (size_t i = 0; i < n; i++) {
                if (!store_name_valid(items[i].file) || !store_name_valid(items[i].format)) {
                        set_error(st, "invalid file name or format '%s' / '%s'", items[i].file,
                                  items[i].format ? items[i].format : "");
                        return -EINVAL;
                }
                for (size_t k = 0; k < i; k++)
                        if (streq(items[i].file, items[k].file)) {
                                set_error(st, "file name '%s' given twice", items[i].file);
                                return -EINVAL;
                        }
        }
        return 0;
}

/* An existing version of m->name holding exactly these files and contents. */
static int find_same(struct store *st, const struct meta *m, const struct item *items, size_t n,
                     char **ret_version) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT version, count(*) FROM entries WHERE name=? "
                            "AND build_id IS ? AND arch IS ? AND role IS ? GROUP BY version "
                            "HAVING count(*)=? ORDER BY max(id) DESC", &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, m->name);
        db_bind_text(s, 2, m->build_id);
        db_bind_text(s, 3, m->arch);
        db_bind_text(s, 4, m->role);
        sqlite3_bind_int64(s, 5, (int64_t)n);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *version = (const char *)sqlite3_column_text(s, 0);
                _cleanup_stmt_ sqlite3_stmt *q = NULL;
                r = prepare(st, "SELECT count(*) FROM entries WHERE name=? AND version=? "
                                "AND file=? AND format=? AND sha256=?", &q);
                if (r < 0)
                        return r;
                bool all = true;
                for (size_t i = 0; all && i < n; i++) {
                        sqlite3_reset(q);
                        db_bind_text(q, 1, m->name);
                        db_bind_text(q, 2, version);
                        db_bind_text(q, 3, items[i].file);
                        db_bind_text(q, 4, items[i].format);
                        db_bind_text(q, 5, items[i].sha256);
                        all = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1;
                }
                if (all && (!m->version || streq(m->version, version))) {
                        *ret_version = xstrdup(version);
                        return 1;
                }
        }
        return rc == SQLITE_DONE ? 0 : sql_fail(st, rc);
}

/* Sets m's labels on every entry of m->name:version (adding or replacing
 * values; other labels stay). */
static int set_labels(struct store *st, const struct meta *m, const char *version) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "INSERT INTO labels(entry_id, key, value) "
                            "SELECT id, ?, ? FROM entries WHERE name=? AND version=? "
                            "ON CONFLICT(entry_id, key) DO UPDATE SET value=excluded.value", &s);
        for (size_t i = 0; r >= 0 && i < m->nlabels; i++) {
                sqlite3_reset(s);
                db_bind_text(s, 1, m->labels[i].key);
                db_bind_text(s, 2, m->labels[i].value);
                db_bind_text(s, 3, m->name);
                db_bind_text(s, 4, version);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        r = sql_fail(st, rc);
        }
        return r;
}

/* YYYYMMDD.N for m->name on the UTC day of `created`. */
static int next_version(struct store *st, const struct meta *m, char **ret) {
        time_t t = (time_t)m->created;
        struct tm tm;
        char day[16];
        gmtime_r(&t, &tm);
        strftime(day, sizeof(day), "%Y%m%d", &tm);
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "INSERT INTO version_counters(name, day, n) VALUES(?, ?, 1) "
                            "ON CONFLICT(name, day) DO UPDATE SET n=n+1 RETURNING n", &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, m->name);
        db_bind_text(s, 2, day);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return sql_fail(st, rc);
        *ret = xasprintf("%s.%lld", day, (long long)sqlite3_column_int64(s, 0));
        return 0;
}

static int insert_entry(struct store *st, const struct meta *m, const char *version,
                        const struct item *it, int64_t now) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "INSERT INTO entries(name, version, build_id, arch, role, format, file, "
                            "size, sha256, sha512, created, added) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                        &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, m->name);
        db_bind_text(s, 2, version);
        db_bind_text(s, 3, m->build_id);
        db_bind_text(s, 4, m->arch);
        db_bind_text(s, 5, m->role);
        db_bind_text(s, 6, it->format);
        db_bind_text(s, 7, it->file);
        sqlite3_bind_int64(s, 8, (int64_t)it->size);
        db_bind_text(s, 9, it->sha256);
        db_bind_text(s, 10, it->sha512[0] ? it->sha512 : NULL);
        sqlite3_bind_int64(s, 11, m->created);
        sqlite3_bind_int64(s, 12, now);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT_UNIQUE) {
                set_error(st, "%s:%s already has a file '%s' with other content", m->name, version,
                          it->file);
                return -EEXIST;
        }
        if (rc != SQLITE_DONE)
                return sql_fail(st, rc);
        int64_t id = sqlite3_last_insert_rowid(db_sqlite(st->db));
        _cleanup_stmt_ sqlite3_stmt *l = NULL;
        r = prepare(st, "INSERT INTO labels(entry_id, key, value) VALUES(?,?,?)", &l);
        for (size_t i = 0; r >= 0 && i < m->nlabels; i++) {
                sqlite3_reset(l);
                sqlite3_bind_int64(l, 1, id);
                db_bind_text(l, 2, m->labels[i].key);
                db_bind_text(l, 3, m->labels[i].value);
                rc = sqlite3_step(l);
                if (rc != SQLITE_DONE)
                        r = sql_fail(st, rc);
        }
        return r;
}

/* Before a rollback, while the write lock is still held (so that no other
 * add can have started to use them): takes back the blobs this transaction
 * put in place. */
static void unplace(struct store *st, struct item *items, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                if (items[i].placed && store_blob_path(st, items[i].sha256, &path) >= 0)
                        unlink(path);
                items[i].placed = false;
        }
}

/* Prepares every item, then ties them to the catalog in one transaction. */
static int add_items(struct store *st, struct meta *m, struct item *items, size_t n,
                     const struct store_add_options *o, struct store_entry **ret, size_t *ret_n) {
        st->err[0] = 0;
        int r = check_meta(st, m, items, n);
        if (r < 0)
                return r;
        _cleanup_free_ char *version = NULL;
        for (int attempt = 0;; attempt++) {
                for (size_t i = 0; i < n; i++) {
                        item_release(&items[i]);
                        items[i].in_place = items[i].placed = false;
                        r = prepare_item(st, &items[i], o->flags);
                        if (r < 0)
                                return r;
                }
                int64_t now = (int64_t)time(NULL);
                r = begin(st);
                if (r < 0)
                        return r;
                free(version);
                version = NULL;
                r = find_same(st, m, items, n, &version);
                if (r > 0) { /* this build is catalogued already: refresh its labels */
                        r = set_labels(st, m, version);
                        if (r >= 0)
                                r = commit(st);
                        if (r < 0) {
                                db_rollback(st->db);
                                return r;
                        }
                        for (size_t i = 0; i < n; i++)
                                items[i].in_place = true;
                        break;
                }
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = place_blob(st, &items[i], now);
                if (r == -EAGAIN && attempt < STORE_ADD_RETRIES) {
                        unplace(st, items, n);
                        db_rollback(st->db); /* a blob was removed meanwhile: stage it again */
                        continue;
                }
                if (r >= 0)
                        version = m->version ? xstrdup(m->version) : NULL;
                if (r >= 0 && !version)
                        r = next_version(st, m, &version);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = insert_entry(st, m, version, &items[i], now);
                if (r >= 0)
                        r = commit(st);
                if (r < 0) {
                        if (!sqlite3_get_autocommit(db_sqlite(st->db)))
                                unplace(st, items, n);
                        db_rollback(st->db);
                        if (r == -EAGAIN)
                                set_error(st, "a blob kept disappearing while it was added");
                        return r;
                }
                break;
        }
        for (size_t i = 0; i < n; i++)
                item_release(&items[i]);
        struct store_filter f = {.name = m->name, .version = version};
        struct store_entry *v = NULL;
        size_t nv = 0;
        r = select_entries(st, &f, "e.id", &v, &nv);
        if (r < 0)
                return r;
        for (size_t i = 0; o->progress && i < n; i++)
                for (size_t k = 0; k < nv; k++)
                        if (streq(v[k].file, items[i].file))
                                o->progress(o->userdata, &v[k], items[i].in_place,
                                            items[i].elapsed_ms);
        *ret = v;
        *ret_n = nv;
        return 0;
}

/* ---- adding ----------------------------------------------------------------- */

static const char *scalar(const struct value *v) {
        return v && v->kind != V_NULL && value_is_scalar(v) ? v->str : NULL;
}

/* A recorded checksum: "" when absent or null; false when malformed. */
static bool want_hash(char *dst, size_t len, const struct value *v) {
        dst[0] = 0;
        if (!v || v->kind == V_NULL)
                return true;
        const char *s = scalar(v);
        if (!s || strlen(s) != len || !is_hex(s, len))
                return false;
        memcpy(dst, s, len + 1);
        return true;
}

int store_add_output_dir(struct store *st, const char *dir, const struct store_add_options *o,
                         struct store_entry **ret, size_t *ret_n) {
        static const struct store_add_options none = {0};
        o = o ? o : &none;
        st->err[0] = 0;
        _cleanup_free_ char *mpath = xasprintf("%s/kiln-manifest.json", dir);
        struct stat ms;
        if (stat(mpath, &ms) < 0) {
                int r = -errno;
                set_error(st, "%s: %s (not a kiln output folder?)", mpath, strerror(-r));
                return r;
        }
        struct source *src = NULL;
        int r = yaml_read_source(mpath, &src);
        if (r < 0) {
                set_error(st, "%s: %s", mpath, strerror(-r));
                return r;
        }
        struct diag_list d = {0};
        _cleanup_value_ struct value *man = NULL;
        r = yaml_load(src, &d, &man);
        bool bad = r < 0 || d.nerrors || !man || man->kind != V_MAP;
        diag_list_done(&d);
        const struct value *arts = value_map_get(man, "artifacts");
        const struct value *sv = value_map_get(man, "schema_version");
        if (!bad && (!scalar(value_map_get(man, "name")) || !arts || arts->kind != V_LIST ||
                     !sv || sv->kind != V_NUMBER || sv->num != 1))
                bad = true;
        if (bad) {
                value_free(TAKE_PTR(man));
                source_free(src);
                set_error(st, "%s: not a kiln manifest (schema_version 1 with name and artifacts)",
                          mpath);
                return -EBADMSG;
        }
        if (arts->n > STORE_MAX_ARTIFACTS) {
                value_free(TAKE_PTR(man));
                source_free(src);
                set_error(st, "%s: more than %d artifacts", mpath, STORE_MAX_ARTIFACTS);
                return -E2BIG;
        }
        struct meta m = {
                .name = xstrdup(scalar(value_map_get(man, "name"))),
                .build_id = xstrdup_null(scalar(value_map_get(man, "id"))),
                .arch = xstrdup_null(scalar(value_map_get(man, "arch"))),
                .role = xstrdup_null(scalar(value_map_get(man, "role"))),
                .created = (int64_t)ms.st_mtim.tv_sec, /* when the build finished */
        };
        const struct value *lab = value_map_get(man, "labels");
        for (size_t i = 0; lab && lab->kind == V_MAP && i < lab->n; i++)
                if (scalar(lab->items[i]))
                        meta_set_label(&m, lab->keys[i]->str, lab->items[i]->str);
        meta_override(&m, o);
        struct item *items = xcalloc(arts->n + 1, sizeof(*items));
        size_t n = 0;
        for (size_t i = 0; i < arts->n; i++) {
                const struct value *a = arts->items[i];
                const char *file = scalar(value_map_get(a, "file"));
                const struct value *size = value_map_get(a, "size");
                struct item *it = &items[n++];
                it->lock_fd = -1;
                it->file = xstrdup(file ? file : "");
                it->format = xstrdup_null(o->format ? o->format : scalar(value_map_get(a, "format")));
                it->path = xasprintf("%s/%s", dir, it->file);
                if (size && size->kind == V_NUMBER && size->num >= 0 && size->num < 0x1p63) {
                        it->has_size = true;
                        it->want_size = (uint64_t)size->num;
                }
                if (!want_hash(it->want256, 64, value_map_get(a, "sha256")) ||
                    !want_hash(it->want512, 128, value_map_get(a, "sha512"))) {
                        set_error(st, "%s: malformed checksum for '%s' (lowercase hex expected)",
                                  mpath, it->file);
                        r = -EBADMSG;
                }
        }
        value_free(TAKE_PTR(man));
        source_free(src);
        if (r >= 0)
                r = add_items(st, &m, items, n, o, ret, ret_n);
        for (size_t i = 0; i < n; i++)
                item_done(&items[i]);
        free(items);
        meta_done(&m);
        return r;
}

/* "minimal.qcow2.zst" -> "qcow2"; NULL when there is no extension. */
static char *format_from_name(const char *file) {
        _cleanup_free_ char *s = xstrdup(file);
        static const char *const compress[] = {".zst", ".xz", ".gz"};
        for (size_t i = 0; i < ARRAY_SIZE(compress); i++)
                if (endswith(s, compress[i]) && strlen(s) > strlen(compress[i]))
                        s[strlen(s) - strlen(compress[i])] = 0;
        const char *dot = strrchr(s, '.');
        return dot && dot[1] && dot != s ? xstrdup(dot + 1) : NULL;
}

int store_add_files(struct store *st, const char *const *paths, size_t n,
                    const struct store_add_options *o, struct store_entry **ret, size_t *ret_n) {
        static const struct store_add_options none = {0};
        o = o ? o : &none;
        st->err[0] = 0;
        if (n > STORE_MAX_ARTIFACTS) {
                set_error(st, "more than %d files in one add", STORE_MAX_ARTIFACTS);
                return -E2BIG;
        }
        struct meta m = {.created = 0};
        meta_override(&m, o);
        struct item *items = xcalloc(n + 1, sizeof(*items));
        int r = 0;
        for (size_t i = 0; i < n; i++) {
                struct item *it = &items[i];
                it->lock_fd = -1;
                it->path = xstrdup(paths[i]);
                const char *slash = strrchr(paths[i], '/');
                it->file = xstrdup(slash ? slash + 1 : paths[i]);
                it->format = o->format ? xstrdup(o->format) : format_from_name(it->file);
                struct stat s;
                if (stat(it->path, &s) == 0 && s.st_mtim.tv_sec > m.created)
                        m.created = s.st_mtim.tv_sec;
                if (!it->format && r == 0) {
                        set_error(st, "%s: no extension to take the format from (give --format)",
                                  it->path);
                        r = -EINVAL;
                }
        }
        if (!m.created)
                m.created = (int64_t)time(NULL);
        if (r == 0)
                r = add_items(st, &m, items, n, o, ret, ret_n);
        for (size_t i = 0; i < n; i++)
                item_done(&items[i]);
        free(items);
        meta_done(&m);
        return r;
}

/* ---- removing --------------------------------------------------------------- */

/* Inside a write transaction: removes blobs no entry references. The files
 * are renamed into tmp/ (so that no add can find them once the transaction
 * ends) and unlinked by gc_end after COMMIT, or put back after a failed one. */
struct gc {
        char **blob, **trash;
        size_t n, cap;
        uint64_t freed;
};

static int gc_run(struct store *st, struct gc *g) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT sha256, size FROM blobs b WHERE NOT EXISTS "
                            "(SELECT 1 FROM entries e WHERE e.sha256=b.sha256)", &s);
        if (r < 0)
                return r;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *sha = (const char *)sqlite3_column_text(s, 0);
                _cleanup_free_ char *path = NULL;
                if (!sha || store_blob_path(st, sha, &path) < 0)
                        continue;
                _cleanup_free_ char *trash = xasprintf("%s/tmp/gc-%s.%d", st->dir, sha, (int)getpid());
                if (rename(path, trash) == 0) {
                        if (g->n >= g->cap) {
                                g->cap = g->cap ? g->cap * 2 : 8;
                                g->blob = xreallocarray(g->blob, g->cap, sizeof(*g->blob));
                                g->trash = xreallocarray(g->trash, g->cap, sizeof(*g->trash));
                        }
                        g->blob[g->n] = TAKE_PTR(path);
                        g->trash[g->n] = TAKE_PTR(trash);
                        g->n++;
                } else if (errno != ENOENT) {
                        return -errno;
                }
                g->freed += (uint64_t)sqlite3_column_int64(s, 1);
        }
        if (rc != SQLITE_DONE)
                return sql_fail(st, rc);
        return exec(st, "DELETE FROM blobs WHERE NOT EXISTS "
                        "(SELECT 1 FROM entries e WHERE e.sha256=blobs.sha256)");
}

static void gc_end(struct gc *g, bool committed) {
        for (size_t i = 0; i < g->n; i++) {
                if (committed)
                        unlink(g->trash[i]);
                else
                        rename(g->trash[i], g->blob[i]);
                free(g->blob[i]);
                free(g->trash[i]);
        }
        free(g->blob);
        free(g->trash);
        memset(g, 0, sizeof(*g));
}

/* Inside a write transaction: deletes the entries (labels cascade). */
static int delete_ids(struct store *st, const int64_t *ids, size_t n) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "DELETE FROM entries WHERE id=?", &s);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                sqlite3_reset(s);
                sqlite3_bind_int64(s, 1, ids[i]);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        r = sql_fail(st, rc);
                else if (sqlite3_changes(db_sqlite(st->db)) != 1) {
                        set_error(st, "no entry with id %lld", (long long)ids[i]);
                        r = -ENOENT;
                }
        }
        return r;
}

/* Deletes ids and collects garbage; the caller has begun the transaction,
 * which this ends. */
static int remove_in_txn(struct store *st, const int64_t *ids, size_t n, size_t *ret_blobs,
                         uint64_t *ret_freed) {
        struct gc g = {0};
        int r = delete_ids(st, ids, n);
        if (r >= 0)
                r = gc_run(st, &g);
        if (r >= 0)
                r = commit(st);
        if (r < 0)
                db_rollback(st->db);
        if (ret_blobs)
                *ret_blobs = r >= 0 ? g.n : 0;
        if (ret_freed)
                *ret_freed = r >= 0 ? g.freed : 0;
        gc_end(&g, r >= 0);
        return r;
}

int store_remove(struct store *st, const int64_t *ids, size_t n, size_t *ret_blobs,
                 uint64_t *ret_freed) {
        st->err[0] = 0;
        int r = begin(st);
        return r < 0 ? r : remove_in_txn(st, ids, n, ret_blobs, ret_freed);
}

/* Bytes of the blobs that removing ids[0..nids) would leave unreferenced;
 * v holds at least every entry named by ids. */
static int freed_by(struct store *st, const struct store_entry *v, size_t n, const int64_t *ids,
                    size_t nids, uint64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(st, "SELECT count(*) FROM entries WHERE sha256=?", &s);
        uint64_t freed = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                size_t going = 0;
                bool mine = false, first = true;
                for (size_t k = 0; k < n; k++) {
                        bool gone = false;
                        for (size_t j = 0; j < nids; j++)
                                gone |= ids[j] == v[k].id;
                        if (k == i)
                                mine = gone;
                        if (gone && streq(v[k].sha256, v[i].sha256)) {
                                going++;
                                first &= k >= i; /* count each blob once */
                        }
                }
                if (!mine || !first)
                        continue;
                sqlite3_reset(s);
                db_bind_text(s, 1, v[i].sha256);
                int rc = sqlite3_step(s);
                if (rc != SQLITE_ROW)
                        return sql_fail(st, rc);
                if ((size_t)sqlite3_column_int64(s, 0) == going)
                        freed += v[i].size;
        }
        *ret = freed;
        return r;
}

int store_prune(struct store *st, const struct store_filter *f, unsigned keep, bool dry_run,
                struct store_entry **ret, size_t *ret_n, uint64_t *ret_freed) {
        st->err[0] = 0;
        struct store_filter ff = f ? *f : (struct store_filter){0};
        ff.version = NULL;
        /* One write transaction from choosing to removing. */
        int r = dry_run ? 0 : begin(st);
        if (r < 0)
                return r;
        struct store_entry *v = NULL;
        size_t n = 0;
        r = select_entries(st, &ff, "e.name, e.created DESC, e.id DESC", &v, &n);
        if (r < 0) {
                db_rollback(st->db);
                return r;
        }
        /* Newest first per name: entries of the first `keep` distinct
         * versions stay, the others go. */
        int64_t *ids = xcalloc(n + 1, sizeof(*ids));
        const char **seen = xcalloc(n + 1, sizeof(*seen));
        size_t nids = 0, nseen = 0;
        const char *cur = NULL;
        for (size_t i = 0; i < n; i++) {
                if (!cur || !streq(cur, v[i].name)) {
                        cur = v[i].name;
                        nseen = 0;
                }
                size_t rank = nseen;
                for (size_t k = 0; k < nseen; k++)
                        if (streq(seen[k], v[i].version))
                                rank = k;
                if (rank == nseen)
                        seen[nseen++] = v[i].version;
                if (rank >= keep)
                        ids[nids++] = v[i].id;
        }
        free(seen);
        uint64_t freed = 0;
        if (dry_run)
                r = freed_by(st, v, n, ids, nids, &freed);
        else if (nids)
                r = remove_in_txn(st, ids, nids, NULL, &freed);
        else
                r = commit(st);
        if (r >= 0) {
                struct store_entry *gone = xcalloc(nids + 1, sizeof(*gone));
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                        for (size_t j = 0; j < nids; j++)
                                if (ids[j] == v[i].id) {
                                        gone[k++] = v[i];
                                        memset(&v[i], 0, sizeof(v[i]));
                                }
                *ret = gone;
                *ret_n = k;
                if (ret_freed)
                        *ret_freed = freed;
        } else {
                db_rollback(st->db);
        }
        free(ids);
        store_entries_free(v, n);
        return r;
}

/* ---- reading blobs ------------------------------------------------------------ */

int store_open_blob(struct store *st, const char *sha256, uint64_t *ret_size) {
        _cleanup_free_ char *path = NULL;
        int r = store_blob_path(st, sha256, &path);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        r = prepare(st, "SELECT size, mtime_ns FROM blobs WHERE sha256=?", &s);
        if (r < 0)
                return r;
        db_bind_text(s, 1, sha256);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sql_fail(st, rc);
        uint64_t size = (uint64_t)sqlite3_column_int64(s, 0);
        int64_t mt = sqlite3_column_int64(s, 1);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        struct stat b;
        if (fstat(fd, &b) < 0 || (uint64_t)b.st_size != size || mtime_ns(&b) != mt) {
                close(fd);
                set_error(st, "blob %s changed since it was stored", sha256);
                return -EUCLEAN;
        }
        *ret_size = size;
        return fd;
}
