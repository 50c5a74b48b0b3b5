/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diag.h — located diagnostics ("FILE:LINE:COLUMN: error: message") for
 * everything a user writes: specs, var files, --var arguments.
 *
 * Library code never prints: it appends diagnostics to a diag_list and keeps
 * going where it can, so that one run reports every error, not just the
 * first. The caller renders the list once (text with the offending line and
 * a caret, or JSON) and decides the exit code from diag_list.nerrors.
 *
 * A `struct source` owns the text of one input so that rendering can quote
 * the offending line; diagnostics borrow the source, which must outlive them.
 * Sources without text render without a quoted line.
 *
 * Rendering is safe for a terminal and bounded whatever the input: control
 * characters (C0, DEL, C1, bidirectional overrides, line separators) and
 * invalid UTF-8 in paths, messages, hints and quoted lines are shown escaped
 * (\x1b, \u2028); messages and hints are cut at DIAG_MSG_MAX bytes and a
 * quoted line at DIAG_EXCERPT_COLS columns around the caret, with "...".
 *
 * Secrets: a quoted line is never shown when the diagnostic is marked
 * redact, when its source is marked redact (var files, --var, KILN_VAR_*:
 * any line there may hold a secret), or when the line lies in a range
 * registered with diag_redact_lines (a sensitive variable's declaration in
 * the spec). Registered secrets are masked in everything rendered.
 */
#pragma once

#include "base/strbuf.h"

/* Cap on stored diagnostics; further ones are only counted. */
#define DIAG_MAX 200
/* Cap on a rendered message or hint, in bytes (after escaping). */
#define DIAG_MSG_MAX 1000
/* Cap on the width of a quoted source line, in columns (after escaping). */
#define DIAG_EXCERPT_COLS 200

struct source {
        char *path;    /* as the user named it; owned */
        char *text;    /* NUL-terminated contents, or NULL; owned */
        size_t len;
        unsigned id;   /* creation order, for stable sorting */
        bool redact;   /* never quote its lines: they may hold secrets */
};

/* A position in a source: 1-based line and column (in characters);
 * line 0 means "the whole source". src is borrowed. */
struct mark {
        const struct source *src;
        unsigned line;
        unsigned col;
};

enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

struct diag {
        enum diag_level level;
        struct mark mark;
        unsigned span; /* characters to underline, >= 1 */
        char *msg;     /* owned */
        char *hint;    /* owned, may be NULL */
        bool redact;   /* never quote the source line (it holds a secret) */
};

struct diag_list {
        struct diag *v;
        size_t n, cap;
        size_t nerrors, nwarnings; /* including those over DIAG_MAX */
        struct source **adopted;   /* sources kept alive for rendering; owned */
        size_t nadopted, adopted_cap;
        char **secrets;            /* texts masked in all rendered output; owned */
        size_t nsecrets, secrets_cap;
        struct diag_lines *redacted; /* line ranges never quoted; owned */
        size_t nredacted, redacted_cap;
};

/* Lines first..last (inclusive) of src. */
struct diag_lines {
        const struct source *src;
        unsigned first, last;
};

/* Creates a source. text may be NULL; both strings are copied. */
struct source *source_new(const char *path, const char *text, size_t len);
struct source *source_free(struct source *s);
/* Length in bytes of the line break at p (before end): \n, \r\n, a lone \r,
 * U+0085, U+2028 or U+2029 — the breaks YAML (and libyaml's line numbers)
 * count; 0 when p is not at a line break. */
size_t source_break_len(const char *p, const char *end);
/* Returns the text of line (1-based) without its line break, and its length;
 * NULL when the line does not exist or the source has no text. Lines are
 * split at every break source_break_len knows, so line numbers agree with
 * libyaml's. */
const char *source_line(const struct source *s, unsigned line, size_t *ret_len);

/* Appends a diagnostic. A NULL mark means "no location". Identical
 * diagnostics (same place and message) are stored once. Returns a pointer to
 * the stored diagnostic (valid until the next add), or NULL when it was a
 * duplicate or over DIAG_MAX. */
struct diag *diag_addv(struct diag_list *d, enum diag_level level, const struct mark *m,
                       unsigned span, const char *fmt, va_list ap) _printf_(5, 0);
struct diag *diag_error(struct diag_list *d, const struct mark *m, unsigned span,
                        const char *fmt, ...) _printf_(4, 5);
struct diag *diag_warning(struct diag_list *d, const struct mark *m, unsigned span,
                          const char *fmt, ...) _printf_(4, 5);
/* Sets the hint of dg (which may be NULL: then this does nothing). */
void diag_hint(struct diag *dg, const char *fmt, ...) _printf_(2, 3);

/* Frees the diagnostics and the adopted sources. */
void diag_list_done(struct diag_list *d);

/* Takes ownership of src so that it lives as long as the list — for a
 * loader that fails and frees its own data while its diagnostics still
 * point into the source. */
void diag_adopt_source(struct diag_list *d, struct source *src);

/* Registers a secret: every occurrence of it in rendered messages, hints
 * and quoted source lines is replaced by <sensitive>. This backs up the
 * redaction done where values are known to be sensitive (a quoted line may
 * hold a secret next to an unrelated error). Secrets shorter than
 * DIAG_SECRET_MIN bytes are not masked, as masking them would garble
 * messages; kiln's own messages never print sensitive values anyway. */
#define DIAG_SECRET_MIN 4
void diag_add_secret(struct diag_list *d, const char *s, size_t n);

/* Never quote lines first..last (inclusive) of src: they hold a secret
 * (e.g. the default of a sensitive variable). Holds for every diagnostic
 * rendered afterwards, also those added before. src is borrowed. */
void diag_redact_lines(struct diag_list *d, const struct source *src, unsigned first,
                       unsigned last);

/* Sorts by source, line, column (stable) — call before rendering. */
void diag_sort(struct diag_list *d);

/* Renders every diagnostic as text:
 *   FILE:LINE:COL: error: message
 *      12 |     offending line
 *         |     ^~~~
 *   hint: ...
 * with ANSI colour when color is set, and a closing count line when more
 * than DIAG_MAX were reported. */
void diag_render(const struct diag_list *d, struct strbuf *out, bool color);

/* Renders the list as a JSON array of {file,line,column,severity,message,hint};
 * message, hint and file are escaped, capped and masked as in text. */
void diag_render_json(const struct diag_list *d, struct strbuf *out);
struct json_writer;
/* The same array, written as the next value of w. */
void diag_write_json(const struct diag_list *d, struct json_writer *w);
