/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image/artifact.c: the one reader of kiln-manifest.json against hostile
 * manifests (paths that leave the folder, sizes that lie or overflow,
 * missing and mistyped fields, duplicate files, limits), and the writer's
 * round trip through the reader.
 */
#include "harness.h"

#include "base/json.h"
#include "base/strbuf.h"
#include "image/artifact.h"
#include "os/fs.h"

#include <sys/stat.h>

#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char *scratch(void) {
        char tpl[] = "/tmp/kiln-test-artifact.XXXXXX";
        CHECK(mkdtemp(tpl) != NULL);
        char *dir = xstrdup(tpl);
        _cleanup_free_ char *f = xasprintf("%s/m.raw", dir);
        CHECK_INT(write_file(f, "abc", 3, 0644, 0), ==, 0);
        return dir;
}

/* Writes text as dir's manifest and reads it back; returns the result, the
 * message in *err (owned, "" on success). */
static int read_text(const char *dir, const char *text, struct artifact_set *set, char **err) {
        _cleanup_free_ char *mp = xasprintf("%s/kiln-manifest.json", dir);
        CHECK_INT(write_file(mp, text, strlen(text), 0644, 0), ==, 0);
        struct strbuf sb = STRBUF_INIT;
        int r = artifact_set_read(dir, set, &sb);
        *err = strbuf_detach(&sb);
        return r;
}

/* One artifact entry around a replaceable piece. */
static char *manifest_with(const char *artifacts) {
        return xasprintf("{\"schema_version\": 1, \"name\": \"m\", \"id\": \"m-x86_64\","
                         " \"labels\": {\"os\": \"debian\", \"n\": 5, \"none\": null},"
                         " \"artifacts\": [%s]}", artifacts);
}

TEST(artifact_read_good_manifest) {
        _cleanup_free_ char *dir = scratch();
        _cleanup_free_ char *text = manifest_with(
                "{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3, \"sha256\": \"" SHA_ABC "\","
                " \"sha512\": null, \"unknown\": {\"deep\": [1, 2]}}");
        struct artifact_set set = {0};
        _cleanup_free_ char *err = NULL;
        CHECK_INT(read_text(dir, text, &set, &err), ==, 0);
        CHECK_STREQ(set.name, "m");
        CHECK_STREQ(set.build_id, "m-x86_64");
        CHECK(set.arch == NULL && set.role == NULL);
        CHECK_INT(set.nlabels, ==, 2); /* null is no label */
        CHECK_STREQ(set.labels[1].key, "n");
        CHECK_STREQ(set.labels[1].value, "5");
        CHECK_INT(set.nfiles, ==, 1);
        CHECK_STREQ(set.files[0].file, "m.raw");
        _cleanup_free_ char *path = xasprintf("%s/m.raw", dir);
        CHECK_STREQ(set.files[0].path, path);
        CHECK_INT(set.files[0].size, ==, 3);
        CHECK_STREQ(set.files[0].sha256, SHA_ABC);
        CHECK_STREQ(set.files[0].sha512, "");
        CHECK(set.files[0].compression == NULL);
        CHECK(set.created > 0);
        artifact_set_done(&set);
        rm_rf(dir);
}

TEST(artifact_read_refuses_hostile_manifests) {
        _cleanup_free_ char *dir = scratch();
        /* A file outside the folder to point at. */
        _cleanup_free_ char *outside = xasprintf("%s.outside", dir);
        CHECK_INT(write_file(outside, "abc", 3, 0644, 0), ==, 0);
        static const struct {
                const char *artifacts; /* NULL: the whole manifest is `whole` */
                const char *whole;
                int r;
                const char *msg;
        } cases[] = {
                /* paths that leave the folder or are not plain names */
                {"{\"file\": \"../m.raw\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "artifacts[0].file"},
                {"{\"file\": \"/etc/passwd\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "not a plain file name"},
                {"{\"file\": \"a/../m.raw\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "a/../m.raw"},
                {"{\"file\": \"..\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "artifacts[0].file"},
                {"{\"file\": \".\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "artifacts[0].file"},
                {"{\"file\": \"\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "artifacts[0].file"},
                {"{\"file\": \"m\\u0000.raw\", \"format\": \"raw\", \"size\": 3}", NULL, -EBADMSG, NULL},
                {"{\"file\": \"kiln-manifest.json\", \"format\": \"raw\", \"size\": 3}", NULL, -EINVAL, "file"},
                /* sizes that lie, overflow or are not sizes */
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 4}", NULL, -ESTALE, "rebuild"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 18446744073709551619}", NULL, -EBADMSG, "artifacts[0].size"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 9223372036854775808}", NULL, -EBADMSG, "out of range"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 1e300}", NULL, -EBADMSG, "artifacts[0].size"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": -3}", NULL, -EBADMSG, "artifacts[0].size"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3.0}", NULL, -EBADMSG, "artifacts[0].size"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": \"3\"}", NULL, -EBADMSG, "artifacts[0].size"},
                /* missing and mistyped fields */
                {"{\"format\": \"raw\", \"size\": 3}", NULL, -EBADMSG, "artifacts[0].file: missing"},
                {"{\"file\": \"m.raw\", \"size\": 3}", NULL, -EBADMSG, "artifacts[0].format: missing"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\"}", NULL, -EBADMSG, "artifacts[0].size: missing"},
                {"{\"file\": [\"m.raw\"], \"format\": \"raw\", \"size\": 3}", NULL, -EBADMSG, "expected a string"},
                {"\"m.raw\"", NULL, -EBADMSG, "artifacts[0]: expected a map"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3, \"sha256\": \"" SHA_ABC "0\"}", NULL, -EBADMSG, "artifacts[0].sha256: malformed"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3, \"sha256\": \"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"}", NULL, -EBADMSG, "sha256: malformed"},
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3, \"sha512\": \"" SHA_ABC "\"}", NULL, -EBADMSG, "artifacts[0].sha512: malformed"},
                /* the same file twice */
                {"{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3}, {\"file\": \"m.raw\", \"format\": \"qcow2\", \"size\": 3}", NULL, -EBADMSG, "artifacts[1].file: 'm.raw' is listed twice"},
                /* a listed file that is not there */
                {"{\"file\": \"gone.raw\", \"format\": \"raw\", \"size\": 3}", NULL, -ENOENT, "gone.raw"},
                /* whole documents */
                {NULL, "[]", -EBADMSG, "not a kiln manifest"},
                {NULL, "{\"name\": \"m\", \"artifacts\": [", -EBADMSG, "not valid JSON"},
                {NULL, "{\"artifacts\": []}", -EBADMSG, "name: missing"},
                {NULL, "{\"name\": 7, \"artifacts\": []}", -EBADMSG, "name: expected a string"},
                {NULL, "{\"name\": \"m\"}", -EBADMSG, "artifacts: missing"},
                {NULL, "{\"name\": \"m\", \"artifacts\": {}}", -EBADMSG, "artifacts: expected a list"},
                {NULL, "{\"schema_version\": 2, \"name\": \"m\", \"artifacts\": []}", -EBADMSG, "schema_version"},
                {NULL, "{\"schema_version\": \"1\", \"name\": \"m\", \"artifacts\": []}", -EBADMSG, "schema_version"},
                {NULL, "{\"name\": \"m\", \"labels\": [\"a\"], \"artifacts\": []}", -EBADMSG, "labels: expected a map"},
                {NULL, "{\"name\": \"m\", \"labels\": {\"a\": {\"b\": 1}}, \"artifacts\": []}", -EBADMSG, "labels.a"},
                {NULL, "{\"name\": \"m\", \"role\": {}, \"artifacts\": []}", -EBADMSG, "role: expected a string"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *text = cases[i].artifacts ? manifest_with(cases[i].artifacts)
                                                               : xstrdup(cases[i].whole);
                struct artifact_set set = {0};
                _cleanup_free_ char *err = NULL;
                int r = read_text(dir, text, &set, &err);
                if (r != cases[i].r || (cases[i].msg && !strstr(err, cases[i].msg)))
                        test_fail(__FILE__, __LINE__, "case %zu: %d '%s'", i, r, err);
                CHECK_INT(set.nfiles, ==, 0); /* nothing is left on failure */
                CHECK(set.name == NULL);
                artifact_set_done(&set);
        }
        rm_rf(dir);
        unlink(outside);
}

TEST(artifact_read_limits_and_file_kinds) {
        _cleanup_free_ char *dir = scratch();
        struct artifact_set set = {0};
        /* More artifacts than the limit. */
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "{\"name\": \"m\", \"artifacts\": [");
        for (int i = 0; i <= ARTIFACT_MAX_FILES; i++)
                strbuf_addf(&sb, "%s{\"file\": \"f%d\", \"format\": \"raw\", \"size\": 0}", i ? "," : "", i);
        strbuf_adds(&sb, "]}");
        _cleanup_free_ char *err = NULL;
        CHECK_INT(read_text(dir, strbuf_str(&sb), &set, &err), ==, -E2BIG);
        CHECK(strstr(err, "artifacts: more than"));
        strbuf_free(&sb);
        /* A manifest over the size cap is refused before it is parsed. */
        _cleanup_free_ char *mp = xasprintf("%s/kiln-manifest.json", dir);
        CHECK_INT(truncate(mp, (off_t)ARTIFACT_MANIFEST_MAX + 1), ==, 0);
        struct strbuf e2 = STRBUF_INIT;
        CHECK_INT(artifact_set_read(dir, &set, &e2), ==, -E2BIG);
        strbuf_free(&e2);
        /* A FIFO as a listed file: refused without blocking; so is a directory. */
        _cleanup_free_ char *fifo = xasprintf("%s/p.raw", dir);
        CHECK_INT(mkfifo(fifo, 0600), ==, 0);
        free(err);
        err = NULL;
        CHECK_INT(read_text(dir, "{\"name\": \"m\", \"artifacts\": [{\"file\": \"p.raw\", \"format\": \"raw\", \"size\": 0}]}",
                            &set, &err), ==, -EINVAL);
        CHECK(strstr(err, "a FIFO"));
        _cleanup_free_ char *sub = xasprintf("%s/d.raw", dir);
        CHECK_INT(mkdir(sub, 0755), ==, 0);
        free(err);
        err = NULL;
        CHECK_INT(read_text(dir, "{\"name\": \"m\", \"artifacts\": [{\"file\": \"d.raw\", \"format\": \"raw\", \"size\": 0}]}",
                            &set, &err), ==, -EINVAL);
        CHECK(strstr(err, "a directory"));
        /* No manifest at all. */
        unlink(mp);
        struct strbuf e3 = STRBUF_INIT;
        CHECK_INT(artifact_set_read(dir, &set, &e3), ==, -ENOENT);
        CHECK(strstr(strbuf_str(&e3), "kiln build"));
        strbuf_free(&e3);
        /* A manifest that is a FIFO is refused without blocking. */
        CHECK_INT(mkfifo(mp, 0600), ==, 0);
        struct strbuf e4 = STRBUF_INIT;
        CHECK_INT(artifact_set_read(dir, &set, &e4), ==, -EBADMSG);
        CHECK(strstr(strbuf_str(&e4), "a FIFO"));
        strbuf_free(&e4);
        rm_rf(dir);
}

static void sections(void *userdata, enum artifact_section which, struct json_writer *w) {
        (void)userdata;
        (void)which;
        json_null(w);
}

TEST(artifact_write_then_read_round_trip) {
        _cleanup_free_ char *dir = scratch();
        struct artifact_set set = {.dir = xstrdup(dir), .name = xstrdup("m"), .arch = xstrdup("x86_64"),
                                   .assembly_key = xstrdup("k"), .tree_key = xstrdup("t")};
        artifact_set_label(&set, "os", "debian");
        struct artifact_file *f = artifact_set_add(&set, "m.raw");
        f->format = xstrdup("raw");
        f->size = 3;
        memcpy(f->sha256, SHA_ABC, 65);
        struct artifact_manifest_info info = {.spec_path = "kiln.yaml", .run_uuid = "u",
                                              .section = sections};
        _cleanup_free_ char *text = artifact_manifest_json(&set, &info);
        CHECK(startswith(text, "{\n  \"schema_version\": 1,\n  \"name\": \"m\",\n"));
        CHECK(strstr(text, "\"sha512\": null"));
        struct artifact_set back = {0};
        _cleanup_free_ char *err = NULL;
        CHECK_INT(read_text(dir, text, &back, &err), ==, 0);
        CHECK_STREQ(back.name, "m");
        CHECK_STREQ(back.arch, "x86_64");
        CHECK_STREQ(back.assembly_key, "k");
        CHECK_STREQ(back.tree_key, "t");
        CHECK_INT(back.nfiles, ==, 1);
        CHECK_STREQ(back.files[0].format, "raw");
        CHECK_STREQ(back.files[0].sha256, SHA_ABC);
        /* A copy owns its own strings. */
        struct artifact_set copy = {0};
        artifact_set_copy(&back, &copy);
        artifact_set_done(&back);
        CHECK_STREQ(copy.files[0].file, "m.raw");
        CHECK_STREQ(copy.name, "m");
        artifact_set_done(&copy);
        artifact_set_done(&set);
        CHECK_STREQ(artifact_compression_from_name("a.qcow2.zst"), "zst");
        CHECK(artifact_compression_from_name("a.qcow2") == NULL);
        CHECK(artifact_compression_from_name(".gz") == NULL);
        rm_rf(dir);
}
