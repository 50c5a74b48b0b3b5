/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.c on real SQLite files: migrations run once (and not at all when the
 * file is newer), a failing migration leaves the file as it was, and each
 * SQLite failure arrives as its -errno: a missing file, a file that is not
 * a database, a disk full (max_page_count), a read-only connection, a
 * constraint, another writer holding the lock past the busy timeout.
 */
#include "harness.h"

#include "base/util.h"
#include "db/db.h"
#include "provision/cache.h" /* rm_rf */

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *test_dir(void) {
        char *d = xstrdup("/var/tmp/kiln-test-db.XXXXXX");
        if (!mkdtemp(d))
                abort();
        return d;
}

static const struct db_options create = {.create = true, .busy_timeout_ms = 100};

static const char *const schema[] = {
        "CREATE TABLE parents(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);",
        "CREATE TABLE children(id INTEGER PRIMARY KEY,"
        "  parent INTEGER NOT NULL REFERENCES parents(id));",
        "ALTER TABLE parents ADD COLUMN note TEXT;",
};

/* The number of rows sql returns (one column, counted). */
static int count(struct db *db, const char *sql) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        if (db_prepare(db, sql, &s) < 0)
                return -1;
        int n = 0;
        while (sqlite3_step(s) == SQLITE_ROW)
                n++;
        return n;
}

TEST(db_migrate_once) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *path = xasprintf("%s/a.db", dir);
        _cleanup_db_ struct db *db = db_new();
        CHECK_INT(db_open(db, path, &create), ==, 0);
        CHECK_INT(db_migrate(db, schema, 2), ==, 2);
        int v = -1;
        CHECK_INT(db_user_version(db, &v), ==, 0);
        CHECK_INT(v, ==, 2);
        CHECK_INT(db_migrate(db, schema, 2), ==, 0);
        CHECK_INT(count(db, "SELECT name FROM sqlite_master WHERE name = 'children'"), ==, 1);
        /* A later kiln adds one migration: only that one runs, on reopen. */
        CHECK_INT(db_open(db, path, NULL), ==, 0);
        CHECK_INT(db_migrate(db, schema, 3), ==, 1);
        CHECK_INT(db_user_version(db, &v), ==, 0);
        CHECK_INT(v, ==, 3);
        CHECK_INT(count(db, "SELECT note FROM parents"), ==, 0);
        /* An older one refuses the newer file and changes nothing. */
        CHECK_INT(db_migrate(db, schema, 2), ==, -EPROTONOSUPPORT);
        CHECK(strstr(db_error(db), "newer") != NULL);
        CHECK_INT(db_user_version(db, &v), ==, 0);
        CHECK_INT(v, ==, 3);
        /* WAL and foreign keys are on. */
        CHECK_INT(count(db, "PRAGMA journal_mode"), ==, 1);
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        CHECK_INT(db_prepare(db, "PRAGMA journal_mode", &s), ==, 0);
        CHECK(sqlite3_step(s) == SQLITE_ROW && streq((const char *)sqlite3_column_text(s, 0), "wal"));
        CHECK_INT(db_exec(db, "INSERT INTO children(parent) VALUES (42)"), ==, -EEXIST);
        rm_rf(dir);
}

TEST(db_migration_failure_rolls_back) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *path = xasprintf("%s/a.db", dir);
        _cleanup_db_ struct db *db = db_new();
        CHECK_INT(db_open(db, path, &create), ==, 0);
        static const char *const bad[] = {
                "CREATE TABLE one(x);",
                "CREATE TABLE two(x); SELECT * FROM no_such_table;",
        };
        int r = db_migrate(db, bad, 2);
        CHECK(r < 0);
        CHECK(strstr(db_error(db), "no_such_table") != NULL);
        int v = -1;
        CHECK_INT(db_user_version(db, &v), ==, 0);
        CHECK_INT(v, ==, 0);
        /* Both migrations were one transaction: the first is undone too. */
        CHECK_INT(count(db, "SELECT name FROM sqlite_master WHERE name IN ('one', 'two')"), ==, 0);
        rm_rf(dir);
}

TEST(db_open_errors) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_db_ struct db *db = db_new();
        /* Missing file, not created: the OS error behind SQLITE_CANTOPEN. */
        _cleanup_free_ char *missing = xasprintf("%s/missing.db", dir);
        CHECK_INT(db_open(db, missing, NULL), ==, -ENOENT);
        CHECK(db_error(db)[0] != 0);
        _cleanup_free_ char *nodir = xasprintf("%s/no/such/dir.db", dir);
        CHECK_INT(db_open(db, nodir, &create), ==, -ENOENT);
        /* A file that is not a database. */
        _cleanup_free_ char *junk = xasprintf("%s/junk.db", dir);
        char page[4096];
        memset(page, 'k', sizeof(page));
        CHECK(write_file(junk, page, sizeof(page), 0644, 0) == 0);
        CHECK_INT(db_open(db, junk, &create), ==, -EBADMSG);
        CHECK(db_error(db)[0] != 0);
        /* After a failed open the same struct opens another file. */
        _cleanup_free_ char *good = xasprintf("%s/good.db", dir);
        CHECK_INT(db_open(db, good, &create), ==, 0);
        CHECK_STREQ(db_error(db), "");
        rm_rf(dir);
}

TEST(db_write_errors) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *path = xasprintf("%s/a.db", dir);
        _cleanup_db_ struct db *db = db_new();
        CHECK_INT(db_open(db, path, &create), ==, 0);
        CHECK_INT(db_migrate(db, schema, 3), ==, 3);
        CHECK_INT(db_exec(db, "INSERT INTO parents(name) VALUES ('a')"), ==, 0);
        /* A unique constraint. */
        CHECK_INT(db_exec(db, "INSERT INTO parents(name) VALUES ('a')"), ==, -EEXIST);
        /* A full disk: the file may not grow past its current pages. */
        CHECK_INT(db_exec(db, "PRAGMA max_page_count = 8"), ==, 0);
        int r = 0;
        for (int i = 0; i < 64 && r == 0; i++)
                r = db_exec(db, "INSERT INTO parents(name, note) VALUES (hex(randomblob(16)), zeroblob(3000))");
        CHECK_INT(r, ==, -ENOSPC);
        /* The transaction is gone, the connection still works. */
        CHECK_INT(db_begin(db), ==, 0);
        CHECK_INT(db_exec(db, "DELETE FROM parents WHERE name != 'a'"), ==, 0);
        CHECK_INT(db_commit(db), ==, 0);
        /* A read-only connection. */
        CHECK_INT(db_exec(db, "PRAGMA query_only = 1"), ==, 0);
        CHECK_INT(db_exec(db, "INSERT INTO parents(name) VALUES ('b')"), ==, -EACCES);
        /* A bad statement from the caller. */
        sqlite3_stmt *s = NULL;
        CHECK_INT(db_prepare(db, "SELEKT 1", &s), ==, -EIO);
        CHECK(s == NULL);
        rm_rf(dir);
}

TEST(db_busy) {
        _cleanup_free_ char *dir = test_dir();
        _cleanup_free_ char *path = xasprintf("%s/a.db", dir);
        _cleanup_db_ struct db *a = db_new();
        _cleanup_db_ struct db *b = db_new();
        CHECK_INT(db_open(a, path, &create), ==, 0);
        CHECK_INT(db_migrate(a, schema, 3), ==, 3);
        CHECK_INT(db_open(b, path, &create), ==, 0);
        /* b sees the schema a wrote: nothing to migrate. */
        CHECK_INT(db_migrate(b, schema, 3), ==, 0);
        CHECK_INT(db_begin(a), ==, 0);
        CHECK_INT(db_exec(a, "INSERT INTO parents(name) VALUES ('a')"), ==, 0);
        /* a holds the write lock: b waits its busy timeout, then -EBUSY. */
        CHECK_INT(db_begin(b), ==, -EBUSY);
        CHECK_INT(db_exec(b, "INSERT INTO parents(name) VALUES ('b')"), ==, -EBUSY);
        /* WAL: b still reads (the last committed state). */
        CHECK_INT(count(b, "SELECT name FROM parents"), ==, 0);
        CHECK_INT(db_commit(a), ==, 0);
        CHECK_INT(db_begin(b), ==, 0);
        CHECK_INT(db_exec(b, "INSERT INTO parents(name) VALUES ('b')"), ==, 0);
        db_rollback(b);
        db_rollback(b); /* no transaction open: nothing happens */
        CHECK_INT(count(a, "SELECT name FROM parents"), ==, 1);
        rm_rf(dir);
}

TEST(db_errno_table) {
        CHECK_INT(db_errno(SQLITE_OK), ==, 0);
        CHECK_INT(db_errno(SQLITE_DONE), ==, 0);
        CHECK_INT(db_errno(SQLITE_BUSY_SNAPSHOT), ==, -EBUSY);
        CHECK_INT(db_errno(SQLITE_LOCKED), ==, -EBUSY);
        CHECK_INT(db_errno(SQLITE_FULL), ==, -ENOSPC);
        CHECK_INT(db_errno(SQLITE_CORRUPT), ==, -EBADMSG);
        CHECK_INT(db_errno(SQLITE_NOTADB), ==, -EBADMSG);
        CHECK_INT(db_errno(SQLITE_CONSTRAINT_UNIQUE), ==, -EEXIST);
        CHECK_INT(db_errno(SQLITE_READONLY), ==, -EACCES);
        CHECK_INT(db_errno(SQLITE_CANTOPEN), ==, -EACCES);
        CHECK_INT(db_errno(SQLITE_TOOBIG), ==, -E2BIG);
        CHECK_INT(db_errno(SQLITE_NOMEM), ==, -ENOMEM);
        CHECK_INT(db_errno(SQLITE_MISUSE), ==, -EINVAL);
        CHECK_INT(db_errno(SQLITE_IOERR_WRITE), ==, -EIO);
}
