/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the spec layer's totals and numeric ranges: the
 * interpolation budget against generated pathological specs, the total of
 * builds, size/duration/integer ranges, and checks that run after errors.
 * No timing asserts: each test asserts the located error that stops the
 * blow-up (without the limits these specs take minutes or gigabytes). */
#include "harness.h"

#include "pipeline/pipeline.h"
#include "spec/schema.h"
#include "spec/spec.h"

#include <stdint.h>

static char tmpdir[64];

static char *write_spec(const char *text) {
        if (!tmpdir[0]) {
                strcpy(tmpdir, "/tmp/kiln-unit-limits-XXXXXX");
                if (!mkdtemp(tmpdir))
                        abort();
        }
        char *p = xasprintf("%s/spec.yaml", tmpdir);
        FILE *f = fopen(p, "w");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
        return p;
}

struct loaded {
        struct spec *s;
        struct diag_list d;
        int r;
        char *path;
        unsigned calls; /* of check_sections */
};

static void count_calls(const struct spec *s, struct diag_list *d, void *arg) {
        (void)s;
        (void)d;
        ((struct loaded *)arg)->calls++;
}

static void load_into(struct loaded *l, const char *text) {
        *l = (struct loaded){0};
        l->path = write_spec(text);
        struct spec_options o = {
                .path = l->path,
                .now = 1700000000,
                .check_sections = count_calls,
                .check_arg = l,
        };
        l->r = pipeline_load(&o, &l->d, &l->s); /* disk: rules are the image engine's */
}

static void unload(struct loaded *l) {
        spec_free(l->s);
        diag_list_done(&l->d);
        unlink(l->path);
        free(l->path);
}

/* The error containing needle, or NULL. */
static const struct diag *find(const struct loaded *l, const char *needle) {
        for (size_t i = 0; i < l->d.n; i++)
                if (strstr(l->d.v[i].msg, needle))
                        return &l->d.v[i];
        return NULL;
}

/* True when an error containing needle is located in the spec at a line
 * >= min_line (the part of the spec that multiplies). */
static bool located(const struct loaded *l, const char *needle, unsigned min_line) {
        const struct diag *dg = find(l, needle);
        return dg && dg->level == DIAG_ERROR && dg->mark.src && dg->mark.line >= min_line &&
               dg->mark.col >= 1;
}

#define MATRIX16 "    matrix: {n: [a1,a2,a3,a4,a5,a6,a7,a8,a9,b1,b2,b3,b4,b5,b6,b7]"
#define MATRIX256 MATRIX16 ", m: [c1,c2,c3,c4,c5,c6,c7,c8,c9,d1,d2,d3,d4,d5,d6,d7]}\n"
#define SRC "    source: {type: debian, suite: bookworm}\n"

/* ---- the interpolation budget ----------------------------------------------- */

/* An 8 KB spec: replace() squares a 4000-byte variable to 16 MB in each of
 * 80 labels of 16 matrix cells (20 GB). */
TEST(limits_replace_amplification_stops_at_byte_budget) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  a: \"");
        for (int i = 0; i < 4000; i++)
                strbuf_addc(&sb, 'x');
        strbuf_adds(&sb, "\"\nbuilds:\n  b:\n" MATRIX16 "}\n" SRC "    labels:\n");
        for (int i = 0; i < 80; i++)
                strbuf_addf(&sb, "      l%d: \"${replace(var.a, \\\"x\\\", var.a)}\"\n", i);
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        CHECK(located(&l, "limit SPEC_MAX_INTERP_BYTES", 9));
        unload(&l);
        strbuf_free(&sb);
}

/* A 600 KB variable used by 200 steps of 256 cells (30 GB), no function. */
TEST(limits_large_variable_referenced_often_stops) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  big: \"");
        for (int i = 0; i < 600000; i++)
                strbuf_addc(&sb, 'y');
        strbuf_adds(&sb, "\"\nbuilds:\n  b:\n" MATRIX256 SRC "    steps:\n");
        for (int i = 0; i < 200; i++)
                strbuf_adds(&sb, "      - shell: \"${var.big}\"\n");
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        CHECK(located(&l, "limit SPEC_MAX_INTERP_BYTES", 8));
        unload(&l);
        strbuf_free(&sb);
}

/* Many references to an empty variable make no bytes, only work. */
TEST(limits_many_expressions_stop_at_work_budget) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  e: \"\"\nbuilds:\n  b:\n" MATRIX256 SRC
                         "    steps:\n");
        for (int s = 0; s < 10; s++) {
                strbuf_adds(&sb, "      - shell: \"");
                for (int i = 0; i < 5000; i++)
                        strbuf_adds(&sb, "${var.e}");
                strbuf_adds(&sb, "\"\n");
        }
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        CHECK(located(&l, "limit SPEC_MAX_INTERP_WORK", 9));
        unload(&l);
        strbuf_free(&sb);
}

/* Hashing a large value many times makes little but reads a lot. */
TEST(limits_repeated_hashing_stops_at_work_budget) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  big: \"");
        for (int i = 0; i < 500000; i++)
                strbuf_addc(&sb, 'z');
        strbuf_adds(&sb, "\"\nbuilds:\n  b:\n" MATRIX256 SRC "    steps:\n");
        for (int i = 0; i < 100; i++)
                strbuf_adds(&sb, "      - shell: \"${sha256(var.big)}${sha256(var.big)}\"\n");
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        CHECK(located(&l, "limit SPEC_MAX_INTERP_WORK", 8));
        unload(&l);
        strbuf_free(&sb);
}

/* from: copies the parent's sections into each layered build: a 16 MB
 * checks: inherited by 60 x 16 builds. */
TEST(limits_inherited_copies_count) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  a: \"");
        for (int i = 0; i < 4000; i++)
                strbuf_addc(&sb, 'x');
        strbuf_adds(&sb, "\"\nbuilds:\n  base:\n" MATRIX16 "}\n" SRC
                         "    checks: [\"${replace(var.a, \\\"x\\\", var.a)}\"]\n");
        for (int i = 0; i < 60; i++)
                strbuf_addf(&sb, "  c%d:\n    from: base\n" MATRIX16 "}\n", i);
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        CHECK(located(&l, "limit SPEC_MAX_INTERP_BYTES", 5));
        unload(&l);
        strbuf_free(&sb);
}

/* split() of a long string makes a value per piece: capped per call. */
TEST(limits_split_result_is_capped) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  a: \"");
        for (int i = 0; i < 4000; i++)
                strbuf_addc(&sb, ',');
        strbuf_adds(&sb, "\"\nbuilds:\n  b:\n" SRC
                         "    labels:\n      x: \"${split(\\\",\\\", replace(var.a, \\\",\\\", var.a))[0]}\"\n");
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        CHECK(located(&l, "the result of split() is longer than", 8));
        unload(&l);
        strbuf_free(&sb);
}

/* ---- totals --------------------------------------------------------------------- */

/* Four builds of 255 cells (1020) and one of 256: SPEC_MAX_BUILDS is a total. */
TEST(limits_total_builds_hold_across_matrices) {
        const char *axis15 = "[a,b,c,d,e,f,g,h,i,j,k,l,m,n,o]";
        const char *axis17 = "[a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]";
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nbuilds:\n");
        for (int i = 0; i < 4; i++)
                strbuf_addf(&sb, "  b%d:\n    matrix: {x: %s, y: %s}\n" SRC, i, axis15, axis17);
        strbuf_adds(&sb, "  last:\n" MATRIX256 SRC);
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r < 0);
        const struct diag *dg = find(&l, "limit SPEC_MAX_BUILDS");
        CHECK(dg && dg->mark.line == 15 && dg->mark.col == 3);
        unload(&l);
        strbuf_free(&sb);
}

/* ---- numbers ------------------------------------------------------------------------ */

TEST(limits_sizes_take_only_the_documented_forms) {
        uint64_t n = 0;
        CHECK(parse_size("1.5GB", &n) == 0 && n == 1500000000ull);
        CHECK(parse_size("0.5K", &n) == 0 && n == 512);
        CHECK(parse_size("8388607T", &n) == 0 && n == 8388607ull << 40);
        CHECK(parse_size("0x1p40", &n) == -EINVAL);
        CHECK(parse_size("1e3G", &n) == -EINVAL);
        CHECK(parse_size("4 G", &n) == -EINVAL);
        CHECK(parse_size("4.G", &n) == -EINVAL);
        CHECK(parse_size("+4G", &n) == -EINVAL);
        CHECK(parse_size("infG", &n) == -EINVAL);
        CHECK(parse_size("8388608T", &n) == -ERANGE);            /* 8 EiB */
        CHECK(parse_size("16777216T", &n) == -ERANGE);           /* 16 EiB: wraps to 0 */
        CHECK(parse_size("18446744073709551616", &n) == -ERANGE); /* 2^64 */
        CHECK(parse_size("99999999999999999999999999G", &n) == -ERANGE);
}

TEST(limits_durations_are_bounded_without_wrapping) {
        uint64_t s = 0;
        CHECK(parse_duration("1h30m", &s) == 0 && s == 5400);
        CHECK(parse_duration("30d", &s) == 0 && s == SCHEMA_DURATION_MAX);
        CHECK(parse_duration("31d", &s) == -ERANGE);
        CHECK(parse_duration("18446744073709551615", &s) == -ERANGE);
        CHECK(parse_duration("4294967295d4294967295d4294967295d4294967295d4294967295d", &s) == -ERANGE);
        CHECK(parse_duration("213503982334601d", &s) == -ERANGE); /* * 86400 wraps */
        CHECK(parse_duration("1h30", &s) == -EINVAL);
}

TEST(limits_integer_fields_have_ranges) {
        struct loaded l;
        load_into(&l, "kiln: 1\n"
                      "builds:\n"
                      "  b:\n" SRC
                      "    steps:\n"
                      "      - shell: {inline: x, retries: 100000000000000000000000}\n"
                      "      - shell: {inline: x, valid_exit_codes: [0, 4294967296, 256]}\n"
                      "      - shell: {inline: x, retries: 101, timeout: 99999999999999999999}\n"
                      "      - ansible: {playbook: x.yml, verbosity: 5}\n");
        CHECK(l.r < 0);
        CHECK(located(&l, "retries: 100000000000000000000000 must be a whole number from 0 to 100", 6));
        CHECK(located(&l, "item 2, 4294967296, is out of range (0 to 255)", 7));
        CHECK(located(&l, "item 3, 256, is out of range (0 to 255)", 7));
        CHECK(located(&l, "retries: 101 must be", 8));
        CHECK(located(&l, "is out of range (a duration is at most 30 days)", 8));
        CHECK(located(&l, "verbosity: 5 must be a whole number from 0 to 4", 9));
        unload(&l);

        struct field uid = {"uid", FT_INT, F_RANGE_ID, NULL, NULL, NULL};
        struct diag_list d = {0};
        struct value *v = value_new_number(1e20, NULL);
        CHECK(schema_check_value(v, &uid, "check 1", &d) == 1);
        value_free(v);
        v = value_new_number(4294967294.0, NULL);
        CHECK(schema_check_value(v, &uid, "check 1", &d) == 0);
        value_free(v);
        diag_list_done(&d);
}

TEST(limits_disk_sizes_are_checked_without_wrapping) {
        struct loaded l;
        load_into(&l, "kiln: 1\n"
                      "builds:\n"
                      "  a:\n" SRC
                      "    disk:\n"
                      "      size: 4G\n"
                      "      partitions:\n"
                      "        - {type: bios}\n"
                      "        - {type: root, size: 4194304T}\n"
                      "        - {type: linux, mount: /srv, size: 4194304T}\n"
                      "  b:\n" SRC
                      "    disk: {size: 16777215T}\n"
                      "  c:\n" SRC
                      "    disk: {size: 200T, partitions: [{type: bios}, {type: root, size: 150T},"
                      " {type: linux, mount: /srv, size: 150T}]}\n");
        CHECK(l.r < 0);
        CHECK(located(&l, "partitions: size: 4194304T is larger than a disk can be", 9));
        CHECK(located(&l, "'16777215T' is out of range", 13));
        CHECK(!find(&l, "too small"));
        CHECK(located(&l, "the partitions need 314572801 MiB", 16));
        unload(&l);
}

/* checks: and publish: are checked (by the layer above) also when the
 * spec has other errors. */
TEST(limits_section_checks_run_after_errors) {
        struct loaded l;
        load_into(&l, "kiln: 1\nbuilds:\n  b:\n" SRC "    steps: [{shel: x}]\n");
        CHECK(l.r < 0);
        CHECK(l.calls == 1);
        unload(&l);
}

/* replace() and split() search in growing windows: matches that straddle a
 * window's end are found. */
TEST(limits_replace_finds_matches_across_windows) {
        struct strbuf sb = STRBUF_INIT, want = STRBUF_INIT;
        strbuf_adds(&sb, "kiln: 1\nvariables:\n  s: \"");
        for (int i = 0; i < 255; i++)
                strbuf_addc(&sb, 'a');
        strbuf_adds(&sb, "xy");
        for (int i = 0; i < 600; i++)
                strbuf_addc(&sb, 'a');
        strbuf_adds(&sb, "xy\"\nbuilds:\n  b:\n" SRC
                         "    labels:\n      r: \"${replace(var.s, \\\"xy\\\", \\\"-\\\")}\"\n"
                         "      n: \"${split(\\\"xy\\\", var.s)[2]}\"\n");
        struct loaded l;
        load_into(&l, strbuf_str(&sb));
        CHECK(l.r == 0);
        for (int i = 0; i < 255; i++)
                strbuf_addc(&want, 'a');
        strbuf_addc(&want, '-');
        for (int i = 0; i < 600; i++)
                strbuf_addc(&want, 'a');
        strbuf_addc(&want, '-');
        const struct value *labels = l.s ? l.s->builds[0]->labels : NULL;
        const struct value *r = value_map_get(labels, "r"), *n = value_map_get(labels, "n");
        CHECK(r && streq(r->str, strbuf_str(&want)));
        CHECK(n && streq(n->str, ""));
        unload(&l);
        strbuf_free(&sb);
        strbuf_free(&want);
}
