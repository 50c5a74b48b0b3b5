/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for publish/glance.c that need no server: the validate hook
 * (positions, did-you-mean, allowed values, reserved properties, headers)
 * and the failures publish reports before any request (invalid settings
 * with file:line:column, no credentials, nothing listening). Uploads are
 * tested against a real glance-api in tests/e2e/test_glance.sh.
 */
#include "harness.h"

#include "base/diag.h"
#include "publish/publish.h"
#include "spec/yaml.h"

extern const struct publisher publisher_glance;

struct vt {
        struct source *src;
        struct value *doc;
        struct diag_list d;
        int r;
};

static void vt_run(struct vt *t, const char *yaml) {
        *t = (struct vt){0};
        t->src = source_new("pub.yaml", yaml, strlen(yaml));
        if (yaml_load(t->src, &t->d, &t->doc) < 0) {
                test_fail(__FILE__, __LINE__, "YAML did not load: %s", yaml);
                t->r = -EBADMSG;
                return;
        }
        t->r = publisher_glance.validate(t->doc, &t->d);
}

static void vt_done(struct vt *t) {
        value_free(t->doc);
        diag_list_done(&t->d);
        source_free(t->src);
}

/* The diagnostic whose message contains needle, or NULL. */
static const struct diag *find(const struct vt *t, const char *needle) {
        for (size_t i = 0; i < t->d.n; i++)
                if (strstr(t->d.v[i].msg, needle))
                        return &t->d.v[i];
        return NULL;
}

TEST(glance_validate_accepts_full_settings) {
        struct vt t;
        vt_run(&t, "type: glance\n"
                   "endpoint: https://cloud.example:9292/v2/\n"
                   "image_name: minimal\n"
                   "format: qcow2\n"
                   "disk_format: qcow2\n"
                   "container_format: bare\n"
                   "visibility: private\n"
                   "tags: [kiln, slurm]\n"
                   "hw_firmware_type: uefi\n"
                   "hw_machine_type: q35\n"
                   "os_distro: debian\n"
                   "os_version: 12\n"
                   "architecture: x86_64\n"
                   "min_disk: 4\n"
                   "properties: {kiln_role: compute, build: 7}\n"
                   "headers: {X-Project-Id: p1}\n"
                   "method: glance-direct\n"
                   "import_timeout: 10m\n"
                   "insecure: false\n");
        CHECK_INT(t.r, ==, 0);
        CHECK_INT(t.d.nerrors, ==, 0);
        vt_done(&t);
}

TEST(glance_validate_unknown_key_did_you_mean) {
        struct vt t;
        vt_run(&t, "type: glance\nendpoint: http://h:9292\ndisk_fromat: raw\n");
        CHECK_INT(t.r, ==, -EINVAL);
        const struct diag *dg = find(&t, "disk_fromat");
        CHECK(dg != NULL);
        if (dg) {
                CHECK_INT(dg->mark.line, ==, 3);
                CHECK_INT(dg->mark.col, ==, 1);
                CHECK(dg->hint && strstr(dg->hint, "disk_format"));
        }
        vt_done(&t);
}

TEST(glance_validate_bad_values) {
        struct vt t;
        vt_run(&t, "type: glance\n"
                   "endpoint: ftp://h\n"
                   "disk_format: qcow\n"
                   "hw_firmware_type: efi\n"
                   "method: glance_direct\n"
                   "tags: kiln\n"
                   "import_timeout: soon\n");
        CHECK_INT(t.r, ==, -EINVAL);
        const struct diag *dg = find(&t, "'ftp://h' is not an http:// or https:// URL");
        CHECK(dg && dg->mark.line == 2 && dg->mark.col == 11);
        dg = find(&t, "disk_format: 'qcow' is not one of");
        CHECK(dg && dg->mark.line == 3 && dg->hint && strstr(dg->hint, "qcow2"));
        dg = find(&t, "hw_firmware_type: 'efi'");
        CHECK(dg && dg->mark.line == 4);
        dg = find(&t, "method: 'glance_direct'");
        CHECK(dg && dg->mark.line == 5 && dg->hint && strstr(dg->hint, "glance-direct"));
        CHECK(find(&t, "tags") != NULL);
        CHECK(find(&t, "import_timeout") != NULL);
        CHECK_INT(t.d.nerrors, ==, 6);
        vt_done(&t);
}

TEST(glance_validate_properties_and_headers) {
        struct vt t;
        vt_run(&t, "type: glance\n"
                   "properties:\n"
                   "  status: active\n"
                   "  os_hash_value: x\n"
                   "  fine: yes\n"
                   "headers:\n"
                   "  \"X Bad\": v\n"
                   "  X-Ok: v\n");
        CHECK_INT(t.r, ==, -EINVAL);
        const struct diag *dg = find(&t, "'status' is not a free property");
        CHECK(dg && dg->mark.line == 3 && dg->mark.col == 3);
        CHECK(find(&t, "'os_hash_value' is not a free property") != NULL);
        dg = find(&t, "'X Bad' is not a valid HTTP header name");
        CHECK(dg && dg->mark.line == 7);
        CHECK_INT(t.d.nerrors, ==, 3);
        vt_done(&t);
}

TEST(glance_validate_not_a_map) {
        struct vt t;
        vt_run(&t, "[a, b]\n");
        CHECK_INT(t.r, ==, -EINVAL);
        CHECK(find(&t, "must be a map") != NULL);
        vt_done(&t);
}

/* Runs publish with the given settings and environment; returns its error
 * message (owned) or NULL when it did not fail. */
static char *publish_error(const char *yaml, char *const *env, int *ret_r) {
        struct vt t;
        vt_run(&t, yaml);
        struct publish_artifact a = {
                .path = "/nonexistent/minimal.qcow2",
                .file_name = "minimal.qcow2",
                .format = "qcow2",
                .size = 1,
                .sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
                .sha512 = "00000000000000000000000000000000000000000000000000000000000000000"
                          "000000000000000000000000000000000000000000000000000000000000000",
        };
        struct publish_target tg = {.name = "g", .type = "glance", .settings = t.doc};
        struct publish_ctx ctx = {.environ = env, .log_fd = -1};
        struct publish_result res = {0};
        *ret_r = publisher_glance.publish(&tg, &a, &ctx, &res);
        CHECK_INT(res.status, ==, *ret_r < 0 ? PUBLISH_FAILED : res.status);
        CHECK_INT(res.bytes_sent, ==, 0);
        CHECK(res.location == NULL || *ret_r >= 0);
        free(res.location);
        vt_done(&t);
        return res.error;
}

TEST(glance_publish_reports_invalid_settings_with_position) {
        char *env[] = {NULL};
        int r;
        _cleanup_free_ char *e = publish_error("type: glance\nendpoint: http://127.0.0.1:1\n"
                                               "visibility: everyone\n",
                                               env, &r);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(e && strstr(e, "pub.yaml:3:13: glance: visibility: 'everyone' is not one of"));
}

TEST(glance_publish_without_credentials) {
        char *env[] = {"HOME=/root", NULL};
        int r;
        _cleanup_free_ char *e = publish_error("type: glance\nendpoint: http://127.0.0.1:1\n",
                                               env, &r);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(e && strstr(e, "no credentials for Glance"));
}

TEST(glance_publish_nothing_listening_and_token_kept_secret) {
        /* Port 1 on loopback: connection refused at once. */
        char *env[] = {"OS_TOKEN=gAAAAAtoken-value-1234", NULL};
        int r;
        _cleanup_free_ char *e = publish_error("type: glance\nendpoint: http://127.0.0.1:1\n",
                                               env, &r);
        CHECK_INT(r, ==, -ECONNREFUSED);
        CHECK(e && strstr(e, "listing images"));
        CHECK(e && !strstr(e, "token-value"));
}

TEST(glance_publish_keystone_unreachable) {
        char *env[] = {"OS_AUTH_URL=http://127.0.0.1:1/v3", "OS_USERNAME=kiln",
                       "OS_PASSWORD=pw-never-shown", "OS_PROJECT_NAME=p", NULL};
        int r;
        _cleanup_free_ char *e = publish_error("type: glance\n", env, &r);
        CHECK_INT(r, ==, -ECONNREFUSED);
        CHECK(e && strstr(e, "Keystone: getting a token"));
        CHECK(e && !strstr(e, "pw-never-shown"));
}

TEST(glance_publish_keystone_v2_refused) {
        char *env[] = {"OS_AUTH_URL=http://127.0.0.1:1/v2.0", "OS_USERNAME=kiln",
                       "OS_PASSWORD=pw-never-shown", NULL};
        int r;
        _cleanup_free_ char *e = publish_error("type: glance\n", env, &r);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(e && strstr(e, "Keystone v2.0 is not supported"));
}
