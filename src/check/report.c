/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Check reports: a table for people, JSON for programs, JUnit XML for CI
 * systems (Jenkins, GitLab, GitHub test reporters all read it).
 *
 * JUnit has no formal schema everyone follows; this writes the common
 * subset: <testsuites tests failures skipped time> holding one <testsuite>
 * per report (name "kiln checks: BUILD (WHERE)") with one <testcase
 * classname="BUILD.KIND" name="..."> per check, and a <failure message> or
 * <skipped message> child where it applies.
 */
#include "check/check.h"

#include <fcntl.h>

/* ---- table ---------------------------------------------------------------------------------- */

static void location(const struct check *c, struct strbuf *out) {
        if (c->mark.src && c->mark.line)
                strbuf_addf(out, "%s:%u:%u", c->mark.src->path, c->mark.line, c->mark.col);
}

void check_report_table(const struct check_report *r, struct strbuf *out, bool color) {
        size_t wk = 4, ww = 4;
        for (size_t i = 0; i < r->n; i++) {
                _cleanup_free_ char *what = check_describe(r->v[i].check);
                size_t lk = strlen(r->v[i].check->kind->name), lw = strlen(what);
                wk = lk > wk ? lk : wk;
                ww = lw > ww ? lw : ww;
        }
        if (ww > 48)
                ww = 48;
        strbuf_addf(out, "%-7s  %-*s  %-*s  %s\n", "STATUS", (int)wk, "KIND", (int)ww, "WHAT", "DETAIL");
        for (size_t i = 0; i < r->n; i++) {
                const struct check_result *cr = &r->v[i];
                _cleanup_free_ char *what = check_describe(cr->check);
                const char *col = cr->status == CHECK_PASSED   ? "\033[32m"
                                  : cr->status == CHECK_FAILED ? "\033[1;31m"
                                                               : "\033[2m";
                const char *st = cr->status == CHECK_PASSED   ? "ok"
                                 : cr->status == CHECK_FAILED ? "FAILED"
                                                              : "skipped";
                strbuf_addf(out, "%s%-7s%s  %-*s  %-*s  %s", color ? col : "", st, color ? "\033[0m" : "",
                            (int)wk, cr->check->kind->name, (int)ww, what, cr->detail ? cr->detail : "");
                if (cr->status == CHECK_FAILED && cr->check->mark.src) {
                        strbuf_adds(out, " (");
                        location(cr->check, out);
                        strbuf_addc(out, ')');
                }
                strbuf_addc(out, '\n');
        }
        strbuf_addf(out, "%u passed, %u failed, %u skipped (%.1fs)\n", r->passed, r->failed, r->skipped,
                    (double)r->elapsed_ms / 1000.0);
}

/* ---- JSON ----------------------------------------------------------------------------------- */

void check_report_json(const struct check_report *r, struct json_writer *w) {
        json_begin_object(w);
        json_key(w, "build");
        json_string(w, r->build);
        json_key(w, "where");
        json_string(w, r->where);
        json_key(w, "passed");
        json_int(w, r->passed);
        json_key(w, "failed");
        json_int(w, r->failed);
        json_key(w, "skipped");
        json_int(w, r->skipped);
        json_key(w, "elapsed_ms");
        json_int(w, (int64_t)r->elapsed_ms);
        json_key(w, "checks");
        json_begin_array(w);
        for (size_t i = 0; i < r->n; i++) {
                const struct check_result *cr = &r->v[i];
                const struct check *c = cr->check;
                json_begin_object(w);
                json_key(w, "kind");
                json_string(w, c->kind->name);
                json_key(w, "target");
                json_string(w, c->target);
                json_key(w, "name");
                json_string(w, c->name);
                json_key(w, "status");
                json_string(w, check_status_name(cr->status));
                json_key(w, "detail");
                json_string(w, cr->detail);
                json_key(w, "file");
                json_string(w, c->mark.src ? c->mark.src->path : NULL);
                json_key(w, "line");
                json_int(w, c->mark.line);
                json_key(w, "column");
                json_int(w, c->mark.col);
                json_end_object(w);
        }
        json_end_array(w);
        json_end_object(w);
}

/* ---- JUnit XML ------------------------------------------------------------------------------ */

void check_xml_escape(struct strbuf *out, const char *s) { strbuf_add_xml(out, s); }

void check_report_junit(const struct check_report *const *r, size_t n, struct strbuf *out) {
        unsigned tests = 0, failures = 0, skipped = 0;
        uint64_t ms = 0;
        for (size_t i = 0; i < n; i++) {
                tests += (unsigned)r[i]->n;
                failures += r[i]->failed;
                skipped += r[i]->skipped;
                ms += r[i]->elapsed_ms;
        }
        strbuf_addf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<testsuites name=\"kiln checks\" tests=\"%u\" failures=\"%u\" errors=\"0\" "
                         "skipped=\"%u\" time=\"%.3f\">\n",
                    tests, failures, skipped, (double)ms / 1000.0);
        for (size_t i = 0; i < n; i++) {
                const struct check_report *rp = r[i];
                strbuf_adds(out, "  <testsuite name=\"kiln checks: ");
                check_xml_escape(out, rp->build);
                strbuf_adds(out, " (");
                check_xml_escape(out, rp->where);
                strbuf_addf(out, ")\" tests=\"%zu\" failures=\"%u\" errors=\"0\" skipped=\"%u\" time=\"%.3f\">\n",
                            rp->n, rp->failed, rp->skipped, (double)rp->elapsed_ms / 1000.0);
                for (size_t k = 0; k < rp->n; k++) {
                        const struct check_result *cr = &rp->v[k];
                        const struct check *c = cr->check;
                        _cleanup_free_ char *what = check_describe(c);
                        strbuf_adds(out, "    <testcase classname=\"");
                        check_xml_escape(out, rp->build);
                        strbuf_addc(out, '.');
                        check_xml_escape(out, c->kind->name);
                        strbuf_adds(out, "\" name=\"");
                        check_xml_escape(out, c->kind->name);
                        strbuf_addc(out, ' ');
                        check_xml_escape(out, what);
                        strbuf_addc(out, '"');
                        if (c->mark.src && c->mark.line) {
                                strbuf_adds(out, " file=\"");
                                check_xml_escape(out, c->mark.src->path);
                                strbuf_addf(out, "\" line=\"%u\"", c->mark.line);
                        }
                        if (cr->status == CHECK_PASSED) {
                                strbuf_adds(out, "/>\n");
                                continue;
                        }
                        const char *tag = cr->status == CHECK_FAILED ? "failure" : "skipped";
                        strbuf_addf(out, ">\n      <%s message=\"", tag);
                        check_xml_escape(out, cr->detail);
                        strbuf_addc(out, '"');
                        if (cr->status == CHECK_FAILED) {
                                strbuf_adds(out, " type=\"check failed\">");
                                _cleanup_strbuf_ struct strbuf loc = STRBUF_INIT;
                                location(c, &loc);
                                check_xml_escape(out, loc.len ? loc.buf : "");
                                if (loc.len)
                                        strbuf_adds(out, ": ");
                                check_xml_escape(out, cr->detail);
                                strbuf_addf(out, "</%s>\n", tag);
                        } else {
                                strbuf_adds(out, "/>\n");
                        }
                        strbuf_adds(out, "    </testcase>\n");
                }
                strbuf_adds(out, "  </testsuite>\n");
        }
        strbuf_adds(out, "</testsuites>\n");
}

int check_report_write_junit(const struct check_report *const *r, size_t n, const char *path) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        check_report_junit(r, n, &sb);
        return write_file(path, sb.buf, sb.len, 0644, WRITE_FILE_ATOMIC);
}

void check_reports_json(const struct check_report *const *r, size_t n, const char *spec, bool all_ran,
                        struct strbuf *out) {
        unsigned passed = 0, failed = 0, skipped = 0;
        for (size_t i = 0; i < n; i++) {
                passed += r[i]->passed;
                failed += r[i]->failed;
                skipped += r[i]->skipped;
        }
        struct json_writer w;
        json_init(&w, out, true);
        json_begin_object(&w);
        json_key(&w, "schema_version");
        json_int(&w, 1);
        json_key(&w, "spec");
        json_string(&w, spec);
        json_key(&w, "ok");
        json_bool(&w, all_ran && failed == 0);
        json_key(&w, "passed");
        json_int(&w, passed);
        json_key(&w, "failed");
        json_int(&w, failed);
        json_key(&w, "skipped");
        json_int(&w, skipped);
        json_key(&w, "reports");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                check_report_json(r[i], &w);
        json_end_array(&w);
        json_end_object(&w);
        strbuf_addc(out, '\n');
}
