/* SPDX-License-Identifier: Apache-2.0 */
/* publish.c: validation of publish: sections, targets, artifact selection,
 * reading kiln-manifest.json and hashing bare files. The network side is
 * tested against a real server in tests/e2e/test_s3.sh. */
#include "harness.h"

#include "base/diag.h"
#include "base/strbuf.h"
#include "publish/publish.h"
#include "spec/spec.h"
#include "spec/yaml.h"

#include <sys/stat.h>

static struct value *parse(const char *text, struct source **ret_src) {
        struct source *src = source_new("t.yaml", text, strlen(text));
        struct diag_list d = {0};
        struct value *v = NULL;
        CHECK_INT(yaml_load(src, &d, &v), ==, 0);
        diag_list_done(&d);
        *ret_src = src;
        return v;
}

/* Renders d's diagnostics as one string (owned). */
static char *render(struct diag_list *d) {
        struct strbuf sb = STRBUF_INIT;
        diag_sort(d);
        diag_render(d, &sb, false);
        return strbuf_detach(&sb);
}

TEST(publish_validate_accepts_good_targets) {
        struct source *src;
        struct value *v = parse("- {type: s3, bucket: capi-images, key: ci/x.qcow2, format: qcow2,\n"
                                "   part_size: 8MiB, addressing: virtual, retries: 2}\n"
                                "- {type: s3, name: gcs, bucket: b.example, endpoint: 'https://storage.googleapis.com'}\n",
                                &src);
        struct diag_list d = {0};
        CHECK_INT(publish_validate(v, &d), ==, 0);
        CHECK_INT(d.nerrors, ==, 0);
        diag_list_done(&d);
        value_free(v);
        source_free(src);
}

TEST(publish_validate_reports_every_mistake_with_position) {
        struct source *src;
        struct value *v = parse("- type: s3\n"
                                "  bucket: Bad_Bucket\n"
                                "  endpoint: ftp://x\n"
                                "  part_size: 1MiB\n"
                                "  adressing: path\n"
                                "- type: dropbox\n"
                                "- {bucket: x}\n"
                                "- just-a-string\n",
                                &src);
        struct diag_list d = {0};
        CHECK_INT(publish_validate(v, &d), ==, -EINVAL);
        _cleanup_free_ char *out = render(&d);
        CHECK(strstr(out, "t.yaml:2:11: error: publish target 's3': bucket: 'Bad_Bucket'"));
        CHECK(strstr(out, "t.yaml:3:13: error: publish target 's3': endpoint: 'ftp://x'"));
        CHECK(strstr(out, "t.yaml:4:14: error: publish target 's3': part_size"));
        CHECK(strstr(out, "t.yaml:5:3: error: unknown key 'adressing'"));
        CHECK(strstr(out, "did you mean 'addressing'"));
        CHECK(strstr(out, "t.yaml:6:9: error: publish: unknown type 'dropbox'"));
        CHECK(strstr(out, "one of: s3, glance"));
        CHECK(strstr(out, "t.yaml:7:3: error: publish: missing type:"));
        CHECK(strstr(out, "t.yaml:8:3: error: publish: expected a map, got a string"));
        diag_list_done(&d);
        value_free(v);
        source_free(src);
}

TEST(publish_targets_and_artifact_choice) {
        struct source *src;
        struct value *v = parse("- {type: s3, bucket: abc, format: qcow2}\n"
                                "- {type: s3, name: raw-copy, bucket: abc, format: raw}\n"
                                "- {type: s3, bucket: abc}\n"
                                "- {type: s3, bucket: abc, format: vmdk}\n",
                                &src);
        struct publish_target *t = NULL;
        size_t n = 0;
        CHECK_INT(publish_targets_from_value(v, &t, &n), ==, 0);
        CHECK_INT(n, ==, 4);
        CHECK_STREQ(t[0].name, "s3 #1");
        CHECK_STREQ(t[1].name, "raw-copy");
        struct publish_artifact arts[2] = {
                {.file_name = "m.raw", .format = "raw"},
                {.file_name = "m.qcow2", .format = "qcow2"},
        };
        CHECK(publish_pick_artifact(&t[0], arts, 2) == &arts[1]);
        CHECK(publish_pick_artifact(&t[1], arts, 2) == &arts[0]);
        CHECK(publish_pick_artifact(&t[2], arts, 2) == &arts[0]);
        CHECK(publish_pick_artifact(&t[3], arts, 2) == NULL);
        CHECK(publisher_find("s3") != NULL);
        CHECK(publisher_find("s3")->sha256_only);
        CHECK(publisher_find("nope") == NULL);
        publish_targets_free(t, n);
        value_free(v);
        source_free(src);
}

static char *tmpdir(void) {
        char tpl[] = "/tmp/kiln-test-publish.XXXXXX";
        CHECK(mkdtemp(tpl) != NULL);
        return xstrdup(tpl);
}

static void rm_dir(const char *dir) {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);
        CHECK_INT(system(cmd), ==, 0);
}

TEST(publish_artifacts_from_manifest) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *img = xasprintf("%s/m.qcow2", dir);
        CHECK_INT(write_file(img, "abc", 3, 0644, 0), ==, 0);
        const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        _cleanup_free_ char *manifest = xasprintf(
                "{\"name\": \"m\", \"id\": \"m-x86_64\", \"arch\": \"x86_64\", \"role\": null,"
                " \"labels\": {\"os\": \"debian\"},"
                " \"artifacts\": [{\"file\": \"m.qcow2\", \"format\": \"qcow2\", \"size\": 3,"
                " \"sha256\": \"%s\", \"sha512\": null}]}", sha);
        _cleanup_free_ char *mpath = xasprintf("%s/kiln-manifest.json", dir);
        CHECK_INT(write_file(mpath, manifest, strlen(manifest), 0644, 0), ==, 0);

        struct publish_artifacts set = {0};
        struct strbuf err = STRBUF_INIT;
        CHECK_INT(publish_artifacts_load(dir, false, &set, &err), ==, 0);
        CHECK_INT(set.n, ==, 1);
        CHECK_STREQ(set.v[0].file_name, "m.qcow2");
        CHECK_STREQ(set.v[0].format, "qcow2");
        CHECK_STREQ(set.v[0].sha256, sha);
        CHECK_STREQ(set.v[0].sha512, "");
        CHECK_STREQ(set.v[0].build_id, "m-x86_64");
        CHECK(set.v[0].role == NULL);
        CHECK(set.v[0].labels != NULL);
        publish_artifacts_done(&set);

        /* sha512 wanted and missing: computed, after checking the sha256 */
        CHECK_INT(publish_artifacts_load(dir, true, &set, &err), ==, 0);
        CHECK_STREQ(set.v[0].sha512,
                    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
        publish_artifacts_done(&set);

        /* The file changed size since the build: refused. */
        CHECK_INT(write_file(img, "abcd", 4, 0644, 0), ==, 0);
        strbuf_reset(&err);
        CHECK_INT(publish_artifacts_load(dir, false, &set, &err), ==, -ESTALE);
        CHECK(strstr(strbuf_str(&err), "rebuild"));
        publish_artifacts_done(&set);

        /* No manifest: not built. */
        unlink(mpath);
        strbuf_reset(&err);
        CHECK_INT(publish_artifacts_load(dir, false, &set, &err), ==, -ENOENT);
        CHECK(strstr(strbuf_str(&err), "kiln build"));
        publish_artifacts_done(&set);

        /* A bare file is hashed. */
        CHECK_INT(publish_artifacts_add_file(&set, img, true, &err), ==, 0);
        CHECK_INT(set.v[0].size, ==, 4);
        CHECK_STREQ(set.v[0].sha256, "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589");
        CHECK_INT(strlen(set.v[0].sha512), ==, 128);
        CHECK_STREQ(set.v[0].format, "qcow2");
        publish_artifacts_done(&set);
        strbuf_free(&err);
        rm_dir(dir);
}

TEST(s3_publish_fails_cleanly_without_credentials_or_server) {
        struct source *src;
        struct value *v = parse("{type: s3, bucket: abc, endpoint: 'http://127.0.0.1:1'}\n", &src);
        struct publish_target t = {.name = "x", .type = "s3", .settings = v};
        struct publish_artifact a = {.path = "/nonexistent", .file_name = "f.raw", .format = "raw",
                                     .size = 1, .sha256 = "00", .sha512 = ""};
        char *no_env[] = {"HOME=/nonexistent", NULL};
        struct publish_ctx ctx = {.environ = no_env, .log_fd = -1};
        struct publish_result r = {0};
        CHECK(publisher_find("s3")->publish(&t, &a, &ctx, &r) < 0);
        CHECK_INT(r.status, ==, PUBLISH_FAILED);
        CHECK(r.error && strstr(r.error, "no credentials"));
        publish_result_done(&r);

        /* Credentials, but nothing listens on port 1: a connect error. */
        char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret-value-123", NULL};
        ctx.environ = env;
        CHECK(publisher_find("s3")->publish(&t, &a, &ctx, &r) < 0);
        CHECK(r.error && strstr(r.error, "cannot connect"));
        CHECK(!strstr(r.error, "secret-value-123"));
        publish_result_done(&r);
        value_free(v);
        source_free(src);
}

TEST(publish_build_reads_the_output_folder_and_reports_per_target) {
        static const char spec_text[] =
                "builds:\n"
                "  m:\n"
                "    source: {type: debian, suite: bookworm}\n"
                "    publish:\n"
                "      - {type: s3, name: nowhere, bucket: abc, endpoint: 'http://127.0.0.1:1', retries: 0}\n"
                "      - {type: s3, bucket: abc, format: vmdk}\n";
        struct spec_options o = {.path = "t.yaml", .text = spec_text, .text_len = strlen(spec_text)};
        struct diag_list d = {0};
        struct spec *s = NULL;
        CHECK_INT(spec_load(&o, &d, &s), ==, 0);
        CHECK_INT(publish_validate_spec(s, &d), ==, 0);
        const struct spec_build *b = spec_find_build(s, "m");
        CHECK(b != NULL);

        _cleanup_free_ char *out = tmpdir();
        char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret-value-123", NULL};
        struct publish_ctx ctx = {.environ = env, .log_fd = -1};
        struct publish_outcome *res = NULL;
        size_t n = 0;
        /* Not built yet: every target fails, saying so. */
        CHECK_INT(publish_build(s, b, out, &ctx, &res, &n), ==, -ENOENT);
        CHECK_INT(n, ==, 2);
        CHECK(res[0].result.status == PUBLISH_FAILED && strstr(res[0].result.error, "kiln build"));
        publish_outcomes_free(res, n);

        _cleanup_free_ char *dir = xasprintf("%s/m", out);
        CHECK_INT(mkdir(dir, 0755), ==, 0);
        _cleanup_free_ char *img = xasprintf("%s/m.raw", dir);
        CHECK_INT(write_file(img, "abc", 3, 0644, 0), ==, 0);
        const char *manifest =
                "{\"name\": \"m\", \"id\": \"m\", \"artifacts\": [{\"file\": \"m.raw\", \"format\": \"raw\","
                " \"size\": 3, \"sha256\": \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}";
        _cleanup_free_ char *mpath = xasprintf("%s/kiln-manifest.json", dir);
        CHECK_INT(write_file(mpath, manifest, strlen(manifest), 0644, 0), ==, 0);
        CHECK_INT(publish_build(s, b, out, &ctx, &res, &n), ==, -EIO);
        CHECK_INT(n, ==, 2);
        CHECK_STREQ(res[0].target, "nowhere");
        CHECK_STREQ(res[0].file, "m.raw");
        CHECK(res[0].result.status == PUBLISH_FAILED && strstr(res[0].result.error, "cannot connect"));
        CHECK_STREQ(res[1].target, "s3 #2");
        CHECK(res[1].file == NULL && strstr(res[1].result.error, "no artifact of format vmdk"));
        publish_outcomes_free(res, n);
        rm_dir(out);
        spec_free(s);
        diag_list_done(&d);
}

/* Hash progress as the verb sees it: the calls, first and last. */
struct progress_seen {
        unsigned calls;
        uint64_t first_done, last_done, total;
};

static void seen_progress(void *userdata, const char *path, uint64_t done, uint64_t total) {
        struct progress_seen *p = userdata;
        (void)path;
        if (p->calls++ == 0)
                p->first_done = done;
        p->last_done = done;
        p->total = total;
}

TEST(publish_refuses_what_is_not_a_regular_file_without_reading_it) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *fifo = xasprintf("%s/fifo.raw", dir);
        _cleanup_free_ char *missing = xasprintf("%s/missing.raw", dir);
        CHECK_INT(mkfifo(fifo, 0600), ==, 0);
        static const struct {
                const char *path, *what;
                int r;
        } cases[] = {
                {NULL, "a FIFO", -EINVAL}, /* fifo, filled in below */
                {NULL, "No such file or directory", -ENOENT},
                {"/dev/null", "a character device", -EINVAL},
                {"/tmp", "a directory", -EINVAL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const char *path = i == 0 ? fifo : i == 1 ? missing : cases[i].path;
                struct publish_artifacts set = {0};
                struct strbuf err = STRBUF_INIT;
                /* errno left over from elsewhere must not show */
                errno = ENOTTY;
                CHECK_INT(publish_artifacts_add_file(&set, path, true, &err), ==, cases[i].r);
                CHECK(strstr(strbuf_str(&err), path) != NULL);
                CHECK(strstr(strbuf_str(&err), cases[i].what) != NULL);
                CHECK(!strstr(strbuf_str(&err), "ioctl"));
                CHECK_INT(set.n, ==, 0);
                publish_artifacts_done(&set);
                strbuf_free(&err);
        }

        /* A FIFO as the S3 credentials file: refused, not read. */
        {
                _cleanup_free_ char *text = xasprintf(
                        "{type: s3, bucket: abc, endpoint: 'http://127.0.0.1:1', credentials_file: '%s'}\n",
                        fifo);
                struct source *src;
                struct value *v = parse(text, &src);
                struct publish_target t = {.name = "x", .type = "s3", .settings = v};
                struct publish_artifact a = {.path = "/nonexistent", .file_name = "f.raw",
                                             .format = "raw", .size = 1, .sha256 = "00", .sha512 = ""};
                char *env[] = {"HOME=/nonexistent", NULL};
                struct publish_ctx ctx = {.environ = env, .log_fd = -1};
                struct publish_result res = {0};
                CHECK_INT(publisher_find("s3")->publish(&t, &a, &ctx, &res), ==, -EINVAL);
                CHECK(res.error && strstr(res.error, "credentials file") && strstr(res.error, "a FIFO"));
                publish_result_done(&res);
                value_free(v);
                source_free(src);
        }

        /* A manifest naming a FIFO (or a directory) of the recorded size. */
        _cleanup_free_ char *img = xasprintf("%s/m.raw", dir);
        _cleanup_free_ char *mpath = xasprintf("%s/kiln-manifest.json", dir);
        const char *manifest =
                "{\"name\": \"m\", \"artifacts\": [{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 0,"
                " \"sha256\": \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]}";
        CHECK_INT(write_file(mpath, manifest, strlen(manifest), 0644, 0), ==, 0);
        CHECK_INT(mkfifo(img, 0600), ==, 0);
        for (int need512 = 0; need512 <= 1; need512++) {
                struct publish_artifacts set = {0};
                struct strbuf err = STRBUF_INIT;
                CHECK_INT(publish_artifacts_load(dir, need512, &set, &err), ==, -EINVAL);
                CHECK(strstr(strbuf_str(&err), "a FIFO") != NULL);
                publish_artifacts_done(&set);
                strbuf_free(&err);
        }
        CHECK_INT(unlink(img), ==, 0);
        CHECK_INT(mkdir(img, 0755), ==, 0);
        struct publish_artifacts set = {0};
        struct strbuf err = STRBUF_INIT;
        CHECK_INT(publish_artifacts_load(dir, false, &set, &err), ==, -EINVAL);
        CHECK(strstr(strbuf_str(&err), "a directory") != NULL);
        publish_artifacts_done(&set);
        strbuf_free(&err);
        rm_dir(dir);
}

TEST(publish_open_file_checks_kind_and_size) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *f = xasprintf("%s/f.raw", dir);
        CHECK_INT(write_file(f, "abcd", 4, 0644, 0), ==, 0);
        struct strbuf err = STRBUF_INIT;
        uint64_t size = 0;
        int fd = publish_open_file(f, 4, &size, &err);
        CHECK(fd >= 0);
        CHECK_INT(size, ==, 4);
        char buf[8];
        CHECK_INT(read(fd, buf, sizeof(buf)), ==, 4); /* blocking, readable */
        close(fd);
        CHECK_INT(publish_open_file(f, 3, NULL, &err), ==, -ESTALE);
        CHECK(strstr(strbuf_str(&err), "4 bytes, but 3 were recorded"));
        strbuf_free(&err);
        rm_dir(dir);
}

TEST(publish_hash_progress_is_reported) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *f = xasprintf("%s/big.raw", dir);
        size_t n = (3u << 20) + 5;
        _cleanup_free_ char *data = xcalloc(1, n);
        CHECK_INT(write_file(f, data, n, 0644, 0), ==, 0);
        struct progress_seen seen = {0};
        struct publish_artifacts set = {.hash_progress = seen_progress, .hash_userdata = &seen};
        struct strbuf err = STRBUF_INIT;
        CHECK_INT(publish_artifacts_add_file(&set, f, false, &err), ==, 0);
        CHECK(seen.calls >= 4); /* 0, then after every MiB */
        CHECK_INT(seen.first_done, ==, 0);
        CHECK_INT(seen.last_done, ==, n);
        CHECK_INT(seen.total, ==, n);
        publish_artifacts_done(&set);
        strbuf_free(&err);
        rm_dir(dir);
}

/* Runs the s3 publisher's validate on one target text; returns the
 * rendered diagnostics (owned) and the result in *ret. */
static char *s3_validate_text(const char *text, int *ret) {
        struct source *src;
        struct value *v = parse(text, &src);
        struct diag_list d = {0};
        *ret = publish_validate(v, &d);
        char *out = render(&d);
        diag_list_done(&d);
        value_free(v);
        source_free(src);
        return out;
}

TEST(s3_keys_up_to_1024_bytes_and_no_leading_slash) {
        /* 1024 bytes exactly (UTF-8: 2 + 511 * 2), 1025, a leading '/' */
        struct strbuf k = STRBUF_INIT;
        strbuf_adds(&k, "u/");
        for (int i = 0; i < 511; i++)
                strbuf_adds(&k, "\xc3\xa9");
        CHECK_INT(k.len, ==, 1024);
        int r;
        _cleanup_free_ char *t1 = xasprintf("{type: s3, bucket: abc, key: \"%s\"}\n", strbuf_str(&k));
        _cleanup_free_ char *o1 = s3_validate_text(t1, &r);
        CHECK_INT(r, ==, 0);
        CHECK_STREQ(o1, "");
        _cleanup_free_ char *t2 = xasprintf("{type: s3, bucket: abc, key: \"%sx\"}\n", strbuf_str(&k));
        _cleanup_free_ char *o2 = s3_validate_text(t2, &r);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(strstr(o2, "t.yaml:1:30: error: publish target 's3': key: 1025 bytes, longer than "
                         "S3's limit of 1024 bytes"));
        _cleanup_free_ char *o3 = s3_validate_text("{type: s3, bucket: abc, key: /x/}\n", &r);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(strstr(o3, "t.yaml:1:30: error: publish target 's3': key: starts with '/'"));

        /* At publish time (keys from --to, or with the file name appended):
         * the same rules, before any request. */
        char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret-value-123", NULL};
        struct publish_ctx ctx = {.environ = env, .log_fd = -1};
        struct publish_artifact a = {.path = "/nonexistent", .file_name = "f.raw", .format = "raw",
                                     .size = 1, .sha256 = "00", .sha512 = ""};
        static const struct {
                const char *key_suffix; /* after k */
                bool prefix_k;
                const char *want;
        } cases[] = {
                {"/lead/x.raw", false, "starts with '/'"},
                {"//", false, "starts with '/'"},
                {"", true, "cannot connect"},      /* 1024 bytes: accepted */
                {"z", true, "1025 bytes"},
                {"/", true, "1030 bytes"},          /* + "f.raw" */
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *key = xasprintf("%s%s", cases[i].prefix_k ? strbuf_str(&k) : "",
                                                     cases[i].key_suffix);
                _cleanup_free_ char *text = xasprintf(
                        "{type: s3, bucket: abc, endpoint: 'http://127.0.0.1:1', retries: 0, key: \"%s\"}\n",
                        key);
                struct source *src;
                struct value *v = parse(text, &src);
                struct publish_target t = {.name = "x", .type = "s3", .settings = v};
                struct publish_result res = {0};
                CHECK(publisher_find("s3")->publish(&t, &a, &ctx, &res) < 0);
                CHECK(res.error && strstr(res.error, cases[i].want));
                publish_result_done(&res);
                value_free(v);
                source_free(src);
        }
        strbuf_free(&k);
}

TEST(s3_lists_uploads_through_the_publisher_table) {
        const struct publisher *p = publisher_find("s3");
        CHECK(p->list_uploads != NULL && p->abort_upload != NULL);
        CHECK(publisher_find("glance")->list_uploads == NULL);
        /* Nothing listens on port 1: an error, no uploads, no secret. */
        struct source *src;
        struct value *v = parse("{type: s3, bucket: abc, endpoint: 'http://127.0.0.1:1', retries: 0, key: p/}\n",
                                &src);
        struct publish_target t = {.name = "x", .type = "s3", .settings = v};
        char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret-value-123", NULL};
        struct publish_ctx ctx = {.environ = env, .log_fd = -1};
        struct publish_upload *u = (struct publish_upload *)&ctx; /* must be reset */
        size_t n = 7;
        char *e = NULL;
        CHECK(p->list_uploads(&t, &ctx, &u, &n, &e) < 0);
        CHECK(u == NULL && n == 0);
        CHECK(e && strstr(e, "listing unfinished uploads: cannot connect"));
        CHECK(e && !strstr(e, "secret-value-123"));
        free(e);
        struct publish_upload one = {.key = "p/x", .upload_id = "id1", .initiated_s = -1};
        CHECK(p->abort_upload(&t, &one, &ctx, &e) < 0);
        CHECK(e && strstr(e, "aborting the upload: cannot connect"));
        free(e);
        value_free(v);
        source_free(src);
}

/* enabled: false (here through a bool variable, as the examples do) makes a
 * target opt-in: it is reported disabled, nothing is contacted, no
 * credentials or built images are needed, and no SHA-512 is asked for. */
TEST(publish_disabled_targets_are_reported_and_never_contacted) {
        static const char spec_text[] =
                "variables:\n"
                "  publish: {type: bool, default: false}\n"
                "builds:\n"
                "  m:\n"
                "    source: {type: debian, suite: bookworm}\n"
                "    publish:\n"
                "      - {type: glance, enabled: '${var.publish}'}\n"
                "      - {type: s3, bucket: abc, endpoint: 'http://127.0.0.1:1', enabled: false}\n";
        struct spec_options o = {.path = "t.yaml", .text = spec_text, .text_len = strlen(spec_text)};
        struct diag_list d = {0};
        struct spec *s = NULL;
        CHECK_INT(spec_load(&o, &d, &s), ==, 0);
        CHECK_INT(publish_validate_spec(s, &d), ==, 0);
        const struct spec_build *b = spec_find_build(s, "m");
        CHECK(!publish_needs_sha512(b->publish));
        _cleanup_free_ char *out = tmpdir(); /* nothing built in it */
        char *no_env[] = {"HOME=/nonexistent", NULL};
        struct publish_ctx ctx = {.environ = no_env, .log_fd = -1};
        struct publish_outcome *res = NULL;
        size_t n = 0;
        CHECK_INT(publish_build(s, b, out, &ctx, &res, &n), ==, 0);
        CHECK_INT(n, ==, 2);
        for (size_t i = 0; i < n; i++) {
                CHECK_INT(res[i].result.status, ==, PUBLISH_DISABLED);
                CHECK(res[i].result.error == NULL);
        }
        CHECK_STREQ(publish_status_name(PUBLISH_DISABLED), "disabled");
        publish_outcomes_free(res, n);
        rm_dir(out);
        spec_free(s);
        diag_list_done(&d);

        /* enabled: is a boolean, located like every other key */
        struct source *src;
        struct value *v = parse("- {type: s3, bucket: abc, enabled: yes}\n", &src);
        struct diag_list d2 = {0};
        CHECK_INT(publish_validate(v, &d2), ==, -EINVAL);
        _cleanup_free_ char *msg = render(&d2);
        CHECK(strstr(msg, "t.yaml:1:36: error: publish target 's3': enabled: expected a boolean"));
        diag_list_done(&d2);
        value_free(v);
        source_free(src);
}

/* The engine of kiln publish: which builds and targets a request selects,
 * and a run reported through the observer. */
struct seen_run {
        unsigned starts, dones;
        bool last_had_artifact;
};

static void seen_start(void *userdata, const struct publish_job *j, const struct publish_artifact *a) {
        struct seen_run *s = userdata;
        (void)j;
        s->starts++;
        s->last_had_artifact = a != NULL;
}

static void seen_done(void *userdata, const struct publish_job *j, const struct publish_outcome *o) {
        struct seen_run *s = userdata;
        (void)j;
        (void)o;
        s->dones++;
}

TEST(publish_plan_selects_builds_and_targets) {
        static const char spec_text[] =
                "builds:\n"
                "  m:\n"
                "    source: {type: debian, suite: bookworm}\n"
                "    publish:\n"
                "      - {type: s3, name: nowhere, bucket: abc, endpoint: 'http://127.0.0.1:1', retries: 0}\n"
                "      - {type: s3, bucket: abc, format: vmdk}\n"
                "  other:\n"
                "    source: {type: debian, suite: bookworm}\n";
        struct spec_options so = {.path = "t.yaml", .text = spec_text, .text_len = strlen(spec_text)};
        struct diag_list d = {0};
        struct spec *s = NULL;
        CHECK_INT(spec_load(&so, &d, &s), ==, 0);
        _cleanup_free_ char *out = tmpdir();
        _cleanup_free_ char *dir = xasprintf("%s/m", out);
        CHECK_INT(mkdir(dir, 0755), ==, 0);
        _cleanup_free_ char *img = xasprintf("%s/m.raw", dir);
        CHECK_INT(write_file(img, "abc", 3, 0644, 0), ==, 0);
        /* No sha256 recorded: the engine hashes the file. */
        const char *manifest = "{\"name\": \"m\", \"artifacts\": [{\"file\": \"m.raw\", \"format\": \"raw\", \"size\": 3}]}";
        _cleanup_free_ char *mpath = xasprintf("%s/kiln-manifest.json", dir);
        CHECK_INT(write_file(mpath, manifest, strlen(manifest), 0644, 0), ==, 0);

        struct strbuf err = STRBUF_INIT;
        struct publish_plan plan = {0};
        /* A name no selected build has. */
        const char *bad[] = {"nope"};
        struct publish_request req = {.spec = s, .output_dir = out, .names = bad, .nnames = 1};
        CHECK_INT(publish_plan_make(&req, &plan, &err), ==, -ENXIO);
        CHECK_STREQ(plan.unmatched_name, "nope");
        publish_plan_done(&plan);
        /* Only a build without publish: nothing to do. */
        char *only_other[] = {(char *)"other"};
        req = (struct publish_request){.spec = s, .output_dir = out, .only = only_other, .nonly = 1};
        CHECK_INT(publish_plan_make(&req, &plan, &err), ==, -ENODATA);
        publish_plan_done(&plan);
        /* Every target of m; one by name. */
        req = (struct publish_request){.spec = s, .output_dir = out};
        CHECK_INT(publish_plan_make(&req, &plan, &err), ==, 0);
        CHECK_INT(plan.njobs, ==, 2);
        CHECK_STREQ(plan.jobs[0].build, "m");
        CHECK_STREQ(plan.jobs[0].set->v[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        char *env[] = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret-value-123", NULL};
        struct publish_ctx ctx = {.environ = env, .log_fd = -1};
        struct seen_run seen = {0};
        struct publish_run_observer obs = {.start = seen_start, .done = seen_done, .userdata = &seen};
        struct publish_outcome *o = NULL;
        size_t n = 0;
        CHECK_INT(publish_plan_run(&plan, &ctx, &obs, &o, &n), ==, 2);
        CHECK_INT(n, ==, 2);
        CHECK_INT(seen.starts, ==, 2);
        CHECK_INT(seen.dones, ==, 2);
        CHECK(!seen.last_had_artifact); /* no vmdk */
        CHECK_STREQ(o[0].build, "m");
        CHECK(strstr(o[0].result.error, "cannot connect"));
        publish_outcomes_free(o, n);
        publish_plan_done(&plan);
        const char *one[] = {"nowhere"};
        req = (struct publish_request){.spec = s, .output_dir = out, .names = one, .nnames = 1};
        CHECK_INT(publish_plan_make(&req, &plan, &err), ==, 0);
        CHECK_INT(plan.njobs, ==, 1);
        CHECK_STREQ(plan.jobs[0].target.name, "nowhere");
        publish_plan_done(&plan);
        /* A size that lies: the plan says which build and why. */
        CHECK_INT(write_file(img, "abcd", 4, 0644, 0), ==, 0);
        strbuf_reset(&err);
        req = (struct publish_request){.spec = s, .output_dir = out};
        CHECK_INT(publish_plan_make(&req, &plan, &err), ==, -ESTALE);
        CHECK(startswith(strbuf_str(&err), "m: "));
        publish_plan_done(&plan);
        strbuf_free(&err);
        rm_dir(out);
        spec_free(s);
        diag_list_done(&d);
}

TEST(publish_artifact_set_in_memory) {
        _cleanup_free_ char *dir = tmpdir();
        _cleanup_free_ char *img = xasprintf("%s/m.raw", dir);
        CHECK_INT(write_file(img, "abc", 3, 0644, 0), ==, 0);
        struct artifact_set set = {.dir = xstrdup(dir), .name = xstrdup("m")};
        struct artifact_file *f = artifact_set_add(&set, "m.raw");
        f->format = xstrdup("raw");
        f->size = 3;
        struct publish_artifacts pa = {0};
        struct strbuf err = STRBUF_INIT;
        CHECK_INT(publish_artifacts_use_set(&pa, &set, true, &err), ==, 0);
        CHECK_STREQ(pa.v[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK_INT(strlen(pa.v[0].sha512), ==, 128);
        CHECK_STREQ(pa.v[0].image_name, "m");
        publish_artifacts_done(&pa);
        /* A recorded sha256 that is not the file's: refused. */
        memcpy(set.files[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae", 65);
        CHECK_INT(publish_artifacts_use_set(&pa, &set, true, &err), ==, -ESTALE);
        CHECK_INT(pa.n, ==, 0);
        publish_artifacts_done(&pa);
        /* No publish: section: nothing at all. */
        struct publish_outcome *o = NULL;
        size_t n = 9;
        struct publish_ctx ctx = {.log_fd = -1};
        CHECK_INT(publish_artifact_set(&set, NULL, &ctx, &o, &n), ==, 0);
        CHECK_INT(n, ==, 0);
        publish_outcomes_free(o, n);
        artifact_set_done(&set);
        strbuf_free(&err);
        rm_dir(dir);
}
