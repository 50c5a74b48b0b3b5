/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.h — SQLite, opened the one way kiln uses it: the image store's catalog
 * today, a daemon's job table tomorrow. Callers keep their schema and their
 * queries; this module owns opening (WAL, busy timeout, foreign keys),
 * numbered schema migrations, transactions, a few statement helpers, and the
 * one translation of SQLite result codes into -errno.
 *
 * A `struct db` is one connection (SQLITE_OPEN_NOMUTEX: one thread at a
 * time) plus the message of its last failure. It is made in two steps,
 * db_new then db_open, so that a failed open still has a message to show.
 *
 * Errors (db_errno; every function here that returns int uses them):
 *   -EBUSY            SQLITE_BUSY/LOCKED: another connection held the lock
 *                     past the busy timeout
 *   -ENOSPC           SQLITE_FULL: the disk is full
 *   -EBADMSG          SQLITE_CORRUPT/NOTADB/FORMAT: not a (sound) database
 *   -EEXIST           SQLITE_CONSTRAINT: a unique/foreign-key/... constraint
 *   -EACCES           SQLITE_READONLY/PERM/AUTH, or CANTOPEN without an errno
 *   -ENOMEM, -E2BIG   SQLITE_NOMEM, SQLITE_TOOBIG
 *   -EINVAL           SQLITE_MISUSE/RANGE/MISMATCH (a bug in the caller)
 *   -errno            SQLITE_CANTOPEN with the OS error behind it (-ENOENT...)
 *   -EPROTONOSUPPORT  db_migrate: the file's schema is newer than the table
 *   -EIO              anything else
 * After a failure db_error() says what happened (SQLite's message).
 */
#pragma once

#include "base/util.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define DB_BUSY_TIMEOUT_MS 5000 /* default of db_options.busy_timeout_ms */

struct db_options {
        unsigned busy_timeout_ms; /* wait for another writer this long; 0: DB_BUSY_TIMEOUT_MS */
        bool create;              /* create the file when missing */
        bool sync_full;           /* PRAGMA synchronous=FULL (default NORMAL under WAL) */
};

struct db;

/* A connection that is not open yet; never fails. */
struct db *db_new(void);
/* Opens path with opts (NULL: defaults, create off): journal_mode=WAL,
 * foreign_keys=ON, extended result codes, the busy timeout. On failure the
 * connection is closed again and db_error() tells why; db_open may be
 * called again. Returns 0 or -errno (above). */
int db_open(struct db *db, const char *path, const struct db_options *opts);
/* Closes and frees db (NULL is fine); returns NULL. */
struct db *db_free(struct db *db);
DEFINE_POINTER_CLEANUP(struct db, db_free)
#define _cleanup_db_ _cleanup_(db_freep)

/* The message of the last failure ("" when none). Borrowed from db. */
const char *db_error(const struct db *db);
/* The SQLite handle, for queries (bind, step, column). Borrowed. */
sqlite3 *db_sqlite(struct db *db);

/* SQLite result code (primary or extended) -> -errno, as in the table
 * above; SQLITE_OK, _ROW and _DONE give 0. Pure; CANTOPEN gives -EACCES. */
int db_errno(int rc);
/* Records the failure rc on db (its message) and returns db_errno(rc), or
 * the OS error for SQLITE_CANTOPEN. For callers that step statements. */
int db_fail(struct db *db, int rc);

/* Runs one or more statements without results. */
int db_exec(struct db *db, const char *sql);
/* Prepares one statement; *ret is finalised by the caller (_cleanup_stmt_). */
int db_prepare(struct db *db, const char *sql, sqlite3_stmt **ret);
/* Binds text, or NULL for a NULL pointer (the text is copied). */
void db_bind_text(sqlite3_stmt *s, int i, const char *v);
DEFINE_POINTER_CLEANUP(sqlite3_stmt, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* BEGIN IMMEDIATE (the write lock now, or -EBUSY after the busy timeout),
 * COMMIT, and ROLLBACK when a transaction is open (never fails). */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* PRAGMA user_version. */
int db_user_version(struct db *db, int *ret);

/* Brings the schema to version n: migrations[v] takes the file from
 * version v to v + 1 (user_version), all that are missing run in one
 * IMMEDIATE transaction, so two processes opening the same new file migrate
 * it once. The table only ever grows. Returns the number of migrations run
 * (0 when the file was current), -EPROTONOSUPPORT when the file is at a
 * version above n, or -errno (nothing is changed then). */
int db_migrate(struct db *db, const char *const *migrations, size_t n);
