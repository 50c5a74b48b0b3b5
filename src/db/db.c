/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.c — SQLite behind db.h.
 *
 * Every SQLite result code that leaves this file goes through db_errno, the
 * only translation to -errno; db_fail also keeps SQLite's message, which is
 * per-connection state in SQLite and would be overwritten by the next call.
 * Cleanup style: scoped (_cleanup_stmt_, _cleanup_free_).
 */
#include "db/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct db {
        sqlite3 *sql;
        char err[512];
};

struct db *db_new(void) { return xcalloc(1, sizeof(struct db)); }

struct db *db_free(struct db *db) {
        if (!db)
                return NULL;
        sqlite3_close_v2(db->sql);
        free(db);
        return NULL;
}

const char *db_error(const struct db *db) { return db->err; }

sqlite3 *db_sqlite(struct db *db) { return db->sql; }

int db_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE: return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
        case SQLITE_CANTOPEN: return -EACCES;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_FORMAT: return -EBADMSG;
        case SQLITE_FULL: return -ENOSPC;
        case SQLITE_CONSTRAINT: return -EEXIST;
        case SQLITE_TOOBIG: return -E2BIG;
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
        case SQLITE_MISMATCH: return -EINVAL;
        default: return -EIO;
        }
}

int db_fail(struct db *db, int rc) {
        snprintf(db->err, sizeof(db->err), "%s", db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
        if ((rc & 0xff) == SQLITE_CANTOPEN) {
                int e = db->sql ? sqlite3_system_errno(db->sql) : 0;
                if (e > 0)
                        return -e;
        }
        return db_errno(rc);
}

int db_exec(struct db *db, const char *sql) {
        int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : db_fail(db, rc);
}

int db_prepare(struct db *db, const char *sql, sqlite3_stmt **ret) {
        int rc = sqlite3_prepare_v2(db->sql, sql, -1, ret, NULL);
        return rc == SQLITE_OK ? 0 : db_fail(db, rc);
}

void db_bind_text(sqlite3_stmt *s, int i, const char *v) {
        if (v)
                sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
        else
                sqlite3_bind_null(s, i);
}

int db_begin(struct db *db) { return db_exec(db, "BEGIN IMMEDIATE"); }

int db_commit(struct db *db) { return db_exec(db, "COMMIT"); }

void db_rollback(struct db *db) {
        if (db->sql && !sqlite3_get_autocommit(db->sql))
                sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
}

int db_open(struct db *db, const char *path, const struct db_options *opts) {
        struct db_options o = opts ? *opts : (struct db_options){0};
        if (!o.busy_timeout_ms)
                o.busy_timeout_ms = DB_BUSY_TIMEOUT_MS;
        sqlite3_close_v2(db->sql);
        db->sql = NULL;
        db->err[0] = 0;
        int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (o.create ? SQLITE_OPEN_CREATE : 0);
        int rc = sqlite3_open_v2(path, &db->sql, flags, NULL);
        int r = rc == SQLITE_OK ? 0 : db_fail(db, rc);
        if (r >= 0) {
                sqlite3_extended_result_codes(db->sql, 1);
                sqlite3_busy_timeout(db->sql, (int)o.busy_timeout_ms);
                r = db_exec(db, "PRAGMA journal_mode=WAL");
        }
        if (r >= 0)
                r = db_exec(db, o.sync_full ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"
                                            : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON");
        if (r < 0) {
                sqlite3_close_v2(db->sql);
                db->sql = NULL;
        }
        return r;
}

int db_user_version(struct db *db, int *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = db_prepare(db, "PRAGMA user_version", &s);
        if (r < 0)
                return r;
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return db_fail(db, rc);
        *ret = sqlite3_column_int(s, 0);
        return 0;
}

int db_migrate(struct db *db, const char *const *migrations, size_t n) {
        int v, r = db_user_version(db, &v);
        if (r < 0)
                return r;
        if (v == (int)n)
                return 0;
        r = db_begin(db);
        if (r < 0)
                return r;
        /* Again under the write lock: another process may have migrated. */
        r = db_user_version(db, &v);
        if (r >= 0 && v > (int)n) {
                snprintf(db->err, sizeof(db->err), "schema %d is newer than this kiln's (%zu)", v, n);
                r = -EPROTONOSUPPORT;
        }
        int ran = 0;
        for (; r >= 0 && v >= 0 && v < (int)n; v++, ran++) {
                r = db_exec(db, migrations[v]);
                if (r >= 0) {
                        _cleanup_free_ char *sql = xasprintf("PRAGMA user_version=%d", v + 1);
                        r = db_exec(db, sql);
                }
        }
        if (r < 0) {
                db_rollback(db);
                return r;
        }
        r = db_commit(db);
        return r < 0 ? r : ran;
}
