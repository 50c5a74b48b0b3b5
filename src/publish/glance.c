/* SPDX-License-Identifier: Apache-2.0 */
/*
 * glance.c — the OpenStack Glance publisher (Image API v2).
 *
 * One publish is a small state machine, each step one HTTP request or a
 * bounded poll:
 *
 *   authenticate   trusted headers | static token | Keystone v3 (password or
 *                  application credential: POST /v3/auth/tokens, token from
 *                  X-Subject-Token, image endpoint from the catalog)
 *   look           GET /v2/images?name=NAME — an `active` image whose
 *                  os_hash_algo is sha512 and os_hash_value the artifact's
 *                  sha512 means done: PUBLISH_SKIPPED_IDENTICAL, 0 bytes sent
 *   create         POST /v2/images (formats, visibility, tags, properties)
 *   send           direct:        PUT /v2/images/ID/file
 *                  glance-direct: PUT /v2/images/ID/stage, then
 *                                 POST /v2/images/ID/import and poll the
 *                                 image until `active` (with a deadline)
 *   verify         GET /v2/images/ID: status active, size and os_hash_value
 *                  equal to the local file's
 *
 * Invariant: an image this publisher created is either verified (status
 * active, hash equal to the artifact's) or deleted again before publish
 * returns — a failed upload, import or verification never leaves an image
 * that could pass for a good one. (When even the DELETE fails, the error
 * says so and names the image id.)
 *
 * Responses are parsed by the YAML loader (JSON is YAML's flow style) with
 * bodies capped by the HTTP layer; ids that go back into URLs are checked
 * for their character set and length first. Secrets (passwords, tokens,
 * application credential secrets) go to ctx->add_secret and to the HTTP
 * client's mask before the first request, and every error message is masked
 * again before it is returned.
 */
#include "publish/publish.h"

#include "base/diag.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "base/util.h"
#include "net/http.h"
#include "spec/schema.h"
#include "spec/yaml.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#define GLANCE_MAX_NAME 255          /* Glance's limit for names, tags, property keys */
#define GLANCE_MAX_ID 64             /* image ids are UUIDs (36); anything longer is bogus */
#define GLANCE_LIST_PAGES 20         /* pages of GET /v2/images?name= followed */
#define GLANCE_LIST_BODY (4u << 20)  /* one page of the image list */
#define GLANCE_CATALOG_BODY (4u << 20) /* Keystone's token response with its catalog */
#define GLANCE_DEFAULT_IMPORT_TIMEOUT (30 * 60)
#define GLANCE_MAX_MESSAGE 300       /* server text quoted in an error */

/* ---- settings ---------------------------------------------------------- */

static const char *const auth_kinds[] = {"keystone", "token", "headers", NULL};
static const char *const interfaces[] = {"public", "internal", "admin", NULL};
static const char *const disk_formats[] = {"raw",  "qcow2", "vmdk", "vhd", "vhdx", "vdi",
                                           "iso",  "ploop", "ami",  "ari", "aki",  NULL};
static const char *const container_formats[] = {"bare", "ovf", "ova",    "ami",
                                                "ari",  "aki", "docker", "compressed", NULL};
static const char *const visibilities[] = {"private", "shared", "community", "public", NULL};
static const char *const firmwares[] = {"uefi", "bios", NULL};
static const char *const methods[] = {"direct", "glance-direct", NULL};

static const struct field glance_fields[] = {
        {"type", FT_STRING, F_REQUIRED, NULL, NULL, "glance"},
        {"name", FT_STRING, 0, NULL, NULL, "name of this target in messages"},
        {"format", FT_STRING, 0, NULL, NULL, "which artifact (outputs: entry) to publish"},
        {"endpoint", FT_STRING, 0, NULL, NULL,
         "image service URL (default: $OS_IMAGE_URL, else Keystone's catalog)"},
        {"auth", FT_STRING, 0, NULL, auth_kinds,
         "keystone, token or headers (default: chosen from what is set)"},
        {"auth_url", FT_STRING, 0, NULL, NULL, "Keystone URL (default: $OS_AUTH_URL)"},
        {"region", FT_STRING, 0, NULL, NULL, "catalog region (default: $OS_REGION_NAME)"},
        {"interface", FT_STRING, 0, NULL, interfaces,
         "catalog interface (default: $OS_INTERFACE, else public)"},
        {"headers", FT_SCALAR_MAP, 0, NULL, NULL,
         "extra request headers, e.g. trusted identity headers of a test server"},
        {"image_name", FT_STRING, 0, NULL, NULL, "Glance image name (default: the build's name)"},
        {"disk_format", FT_STRING, 0, NULL, disk_formats,
         "disk format (default: the artifact's format)"},
        {"container_format", FT_STRING, 0, NULL, container_formats, "default bare"},
        {"visibility", FT_STRING, 0, NULL, visibilities, "default: Glance's (shared)"},
        {"tags", FT_STRING_LIST, 0, NULL, NULL, "image tags"},
        {"hw_firmware_type", FT_STRING, 0, NULL, firmwares, "uefi or bios"},
        {"hw_machine_type", FT_STRING, 0, NULL, NULL, "e.g. q35"},
        {"os_distro", FT_STRING, 0, NULL, NULL, "e.g. debian"},
        {"os_version", FT_STRING, 0, NULL, NULL, "e.g. 12"},
        {"architecture", FT_STRING, 0, NULL, NULL, "default: the artifact's arch"},
        {"min_disk", FT_INT, 0, NULL, NULL, "GiB"},
        {"min_ram", FT_INT, 0, NULL, NULL, "MiB"},
        {"properties", FT_SCALAR_MAP, 0, NULL, NULL, "further image properties"},
        {"method", FT_STRING, 0, NULL, methods, "direct (default) or glance-direct"},
        {"import_timeout", FT_DURATION, 0, NULL, NULL, "glance-direct import deadline (30m)"},
        {"insecure", FT_BOOL, 0, NULL, NULL, "do not verify TLS certificates"},
        {"ca_file", FT_ABS_PATH, 0, NULL, NULL, "extra CA bundle"},
        {"enabled", FT_BOOL, 0, NULL, NULL, "false: skip this target (default true)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* Image attributes Glance sets itself or that have their own setting: a
 * `properties:` entry may not name them. */
static const char *const reserved_properties[] = {
        "id",         "name",          "status",      "visibility", "protected",
        "checksum",   "os_hash_algo",  "os_hash_value", "size",     "virtual_size",
        "owner",      "created_at",    "updated_at",  "file",       "schema",
        "self",       "locations",     "direct_url",  "tags",       "disk_format",
        "container_format", "min_disk", "min_ram",    "os_hidden",  "stores",
        "hw_firmware_type", "hw_machine_type", "os_distro", "os_version", "architecture",
        NULL,
};

static bool valid_header_name(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') ||
                      ('0' <= *s && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
                        return false;
        return true;
}

static bool has_ctl(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static void check_url(const struct value *v, const char *key, struct diag_list *d) {
        if (!v || v->invalid || !value_is_scalar(v) || !v->str)
                return;
        if (!startswith(v->str, "http://") && !startswith(v->str, "https://"))
                diag_error(d, &v->mark, value_span(v),
                           "glance: %s: '%s' is not an http:// or https:// URL", key,
                           value_shown(v));
        else if (has_ctl(v->str) || strchr(v->str, ' '))
                diag_error(d, &v->mark, value_span(v), "glance: %s: the URL contains spaces or control characters", key);
}

static void check_length(const struct value *v, const char *key, struct diag_list *d) {
        if (v && !v->invalid && value_is_scalar(v) && v->str && v->len > GLANCE_MAX_NAME)
                diag_error(d, &v->mark, value_span(v), "glance: %s: longer than %d characters",
                           key, GLANCE_MAX_NAME);
}

static int glance_validate(const struct value *settings, struct diag_list *d) {
        size_t before = d->nerrors;
        if (!settings || settings->kind != V_MAP) {
                diag_error(d, settings ? &settings->mark : NULL, 1,
                           "glance: a publish target must be a map");
                return -EINVAL;
        }
        schema_check(settings, glance_fields, "glance", d);

        check_url(value_map_get(settings, "endpoint"), "endpoint", d);
        check_url(value_map_get(settings, "auth_url"), "auth_url", d);
        check_length(value_map_get(settings, "image_name"), "image_name", d);
        const struct value *name = value_map_get(settings, "image_name");
        if (name && value_is_scalar(name) && name->str && !*name->str)
                diag_error(d, &name->mark, 1, "glance: image_name: must not be empty");

        const struct value *tags = value_map_get(settings, "tags");
        if (tags && tags->kind == V_LIST)
                for (size_t i = 0; i < tags->n; i++)
                        check_length(tags->items[i], "tags", d);

        const struct value *props = value_map_get(settings, "properties");
        if (props && props->kind == V_MAP)
                for (size_t i = 0; i < props->n; i++) {
                        const struct value *k = props->keys[i];
                        for (const char *const *r = reserved_properties; *r; r++)
                                if (streq(*r, k->str)) {
                                        struct diag *dg = diag_error(
                                                d, &k->mark, value_span(k),
                                                "glance: properties: '%s' is not a free "
                                                "property", k->str);
                                        diag_hint(dg, "%s",
                                                  "image attributes Glance owns, and the ones "
                                                  "kiln has a setting for (disk_format, "
                                                  "hw_firmware_type, ...), cannot be set here");
                                        break;
                                }
                        check_length(k, "properties", d);
                }

        const struct value *hdrs = value_map_get(settings, "headers");
        if (hdrs && hdrs->kind == V_MAP)
                for (size_t i = 0; i < hdrs->n; i++) {
                        const struct value *k = hdrs->keys[i], *v = hdrs->items[i];
                        if (!valid_header_name(k->str))
                                diag_error(d, &k->mark, value_span(k),
                                           "glance: headers: '%s' is not a valid HTTP header name",
                                           k->str);
                        if (v && value_is_scalar(v) && v->str && has_ctl(v->str))
                                diag_error(d, &v->mark, value_span(v),
                                           "glance: headers: %s: the value contains control "
                                           "characters", k->str);
                }
        return d->nerrors > before ? -EINVAL : 0;
}

/* The settings of one publish, read once validation passed. Strings borrow
 * from the target's value tree. */
struct settings {
        const char *endpoint, *auth, *auth_url, *region, *interface;
        const struct value *headers, *tags, *properties, *min_disk, *min_ram;
        const char *image_name, *disk_format, *container_format, *visibility, *method;
        const char *hw_firmware_type, *hw_machine_type, *os_distro, *os_version, *architecture;
        uint64_t import_timeout_s;
        bool insecure;
        const char *ca_file;
};

static const char *get_str(const struct value *m, const char *key) {
        const struct value *v = value_map_get(m, key);
        return v && value_is_scalar(v) && v->kind != V_NULL ? v->str : NULL;
}

static void read_settings(const struct value *m, struct settings *s) {
        *s = (struct settings){
                .endpoint = get_str(m, "endpoint"),
                .auth = get_str(m, "auth"),
                .auth_url = get_str(m, "auth_url"),
                .region = get_str(m, "region"),
                .interface = get_str(m, "interface"),
                .headers = value_map_get(m, "headers"),
                .tags = value_map_get(m, "tags"),
                .properties = value_map_get(m, "properties"),
                .min_disk = value_map_get(m, "min_disk"),
                .min_ram = value_map_get(m, "min_ram"),
                .image_name = get_str(m, "image_name"),
                .disk_format = get_str(m, "disk_format"),
                .container_format = get_str(m, "container_format"),
                .visibility = get_str(m, "visibility"),
                .method = get_str(m, "method"),
                .hw_firmware_type = get_str(m, "hw_firmware_type"),
                .hw_machine_type = get_str(m, "hw_machine_type"),
                .os_distro = get_str(m, "os_distro"),
                .os_version = get_str(m, "os_version"),
                .architecture = get_str(m, "architecture"),
                .import_timeout_s = GLANCE_DEFAULT_IMPORT_TIMEOUT,
                .ca_file = get_str(m, "ca_file"),
        };
        const char *t = get_str(m, "import_timeout");
        if (t)
                (void)parse_duration(t, &s->import_timeout_s);
        const struct value *ins = value_map_get(m, "insecure");
        s->insecure = ins && ins->kind == V_BOOL && ins->b;
}

/* ---- one publish ------------------------------------------------------- */

struct glance {
        const struct publish_ctx *ctx;
        struct http_client *http;
        char *endpoint;          /* image service root, no trailing '/' or '/v2' */
        char **headers;          /* "Name: value" sent with every request; owned */
        size_t nheaders, headers_cap;
        char **secrets;          /* masked in every message; owned */
        size_t nsecrets, secrets_cap;
        struct strbuf err;       /* the failure message */
        /* upload progress */
        uint64_t sent, total;
};

/* An environment variable of the publish context; set but empty counts as
 * unset (OS_* variables are often exported empty by openrc files). */
static const char *env_get(const struct glance *g, const char *name) {
        const char *v = publish_getenv(g->ctx->environ, name);
        return v && *v ? v : NULL;
}

static void add_secret(struct glance *g, const char *s) {
        if (!s || !*s)
                return;
        if (g->ctx->add_secret)
                g->ctx->add_secret(g->ctx->userdata, s);
        if (g->http)
                http_client_add_secret(g->http, s);
        GROW(g->secrets, g->nsecrets, g->secrets_cap);
        g->secrets[g->nsecrets++] = xstrdup(s);
}

static void add_header(struct glance *g, const char *name, const char *value) {
        GROW(g->headers, g->nheaders, g->headers_cap);
        g->headers[g->nheaders++] = xasprintf("%s: %s", name, value);
}

/* Sets the failure message (replacing an earlier one) and returns r. */
static int fail(struct glance *g, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(struct glance *g, int r, const char *fmt, ...) {
        va_list ap;
        strbuf_reset(&g->err);
        va_start(ap, fmt);
        strbuf_vaddf(&g->err, fmt, ap);
        va_end(ap);
        return r;
}

/* Returns msg with every registered secret replaced; owned by the caller. */
static char *mask_secrets(const struct glance *g, const char *msg) {
        struct strbuf out = STRBUF_INIT;
        strbuf_adds(&out, msg);
        for (size_t i = 0; i < g->nsecrets; i++) {
                const char *sec = g->secrets[i];
                size_t sl = strlen(sec);
                if (sl < DIAG_SECRET_MIN)
                        continue;
                struct strbuf next = STRBUF_INIT;
                const char *p = strbuf_str(&out), *hit;
                while ((hit = strstr(p, sec))) {
                        strbuf_add(&next, p, (size_t)(hit - p));
                        strbuf_adds(&next, SENSITIVE_PLACEHOLDER);
                        p = hit + sl;
                }
                strbuf_adds(&next, p);
                strbuf_free(&out);
                out = next;
        }
        return strbuf_detach(&out);
}

static void http_log(void *userdata, const char *line) {
        const struct glance *g = userdata;
        if (g->ctx->log_fd < 0)
                return;
        _cleanup_free_ char *l = xasprintf("glance: %s\n", line);
        (void)write_all(g->ctx->log_fd, l, strlen(l));
}

static void on_sent(void *userdata, uint64_t n) {
        struct glance *g = userdata;
        g->sent += n;
        if (g->ctx->progress)
                g->ctx->progress(g->ctx->userdata, g->sent, g->total);
}

/* Sends req (its url already complete) with the session's headers plus
 * `extra` (NULL-terminated, may be NULL). */
static int send_request(struct glance *g, struct http_request *req, const char *const *extra,
                        struct http_response *resp) {
        _cleanup_free_ const char **hdrs = NULL;
        size_t n = 0, nextra = 0;
        while (extra && extra[nextra])
                nextra++;
        hdrs = xcalloc(g->nheaders + nextra + 2, sizeof(*hdrs));
        for (size_t i = 0; i < g->nheaders; i++)
                hdrs[n++] = g->headers[i];
        for (size_t i = 0; i < nextra; i++)
                hdrs[n++] = extra[i];
        hdrs[n++] = "Accept: application/json";
        req->headers = hdrs;
        int r = http_request(g->http, req, resp);
        req->headers = NULL;
        return r;
}

/* A parsed JSON body: the value tree and the source its marks point into. */
struct jdoc {
        struct source *src;
        struct value *root;
};

static void jdoc_done(struct jdoc *j) {
        value_free(j->root);
        source_free(j->src);
        *j = (struct jdoc){0};
}

static int parse_json(const struct http_response *resp, struct jdoc *ret) {
        if (!resp->body || !resp->body_len)
                return -EBADMSG;
        struct diag_list d = {0};
        struct source *src = source_new("response", resp->body, resp->body_len);
        struct value *root = NULL;
        int r = yaml_load(src, &d, &root);
        bool bad = r < 0 || d.nerrors > 0 || !root || root->kind != V_MAP;
        diag_list_done(&d);
        if (bad) {
                value_free(root);
                source_free(src);
                return -EBADMSG;
        }
        *ret = (struct jdoc){src, root};
        return 0;
}

/* A string member of a JSON object, or NULL. */
static const char *jstr(const struct value *obj, const char *key) {
        const struct value *v = value_map_get(obj, key);
        return v && v->kind == V_STRING ? v->str : NULL;
}

/* Appends text with HTML tags dropped, whitespace folded and anything but
 * printable ASCII replaced, at most GLANCE_MAX_MESSAGE characters. */
static void add_plain_text(struct strbuf *out, const char *text, size_t len) {
        bool in_tag = false, space = false;
        size_t start = out->len;
        for (size_t i = 0; i < len && out->len - start < GLANCE_MAX_MESSAGE; i++) {
                char c = text[i];
                if (c == '<') {
                        in_tag = true;
                        continue;
                }
                if (in_tag) {
                        in_tag = c != '>';
                        space = space || !in_tag;
                        continue;
                }
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                        space = true;
                        continue;
                }
                if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                        c = '?';
                if (space && out->len > start)
                        strbuf_addc(out, ' ');
                space = false;
                strbuf_addc(out, c);
        }
}

/* The server's explanation of an error response, made safe to quote: the
 * message of a JSON error (Keystone's {"error": {"message"}}, Glance's
 * {"message"}), else the body's text. */
static void server_message(const struct http_response *resp, struct strbuf *out) {
        if (!resp->body || !resp->body_len)
                return;
        struct jdoc j = {0};
        if (parse_json(resp, &j) == 0) {
                const struct value *e = value_map_get(j.root, "error");
                const char *m = e ? jstr(e, "message") : NULL;
                if (!m)
                        m = jstr(j.root, "message");
                if (m)
                        add_plain_text(out, m, strlen(m));
                jdoc_done(&j);
                if (m)
                        return;
        }
        add_plain_text(out, resp->body, resp->body_len);
}

static const char *reason_phrase(long status) {
        static const struct {
                long status;
                const char *text;
        } t[] = {
                {300, "Multiple Choices"}, {400, "Bad Request"},  {401, "Unauthorized"},
                {403, "Forbidden"},        {404, "Not Found"},    {409, "Conflict"},
                {410, "Gone"},             {413, "Request Entity Too Large"},
                {415, "Unsupported Media Type"},                  {500, "Internal Server Error"},
                {502, "Bad Gateway"},      {503, "Service Unavailable"},
                {504, "Gateway Timeout"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(t); i++)
                if (t[i].status == status)
                        return t[i].text;
        return "";
}

/* Records an HTTP-level failure of step `what`: a transport error from
 * http_request (r < 0) or an unexpected status. */
static int fail_http(struct glance *g, const char *what, int r, const struct http_response *resp) {
        if (r < 0)
                return fail(g, r, "%s: %s", what, resp->error[0] ? resp->error : strerror(-r));
        _cleanup_strbuf_ struct strbuf msg = STRBUF_INIT;
        server_message(resp, &msg);
        const char *hint = "";
        if (resp->status == 401)
                hint = " (check the credentials)";
        else if (resp->status == 403)
                hint = " (the account may not do this)";
        else if (resp->status == 404)
                hint = " (check the endpoint)";
        const char *reason = reason_phrase(resp->status);
        return fail(g, resp->status == 401 || resp->status == 403 ? -EACCES : -EPROTO,
                    "%s: HTTP %ld%s%s%s%s%s", what, resp->status, *reason ? " " : "", reason,
                    msg.len ? ": " : "", strbuf_str(&msg), hint);
}

static char *url_for(const struct glance *g, const char *path) {
        return xasprintf("%s%s", g->endpoint, path);
}

/* An image id as Glance sends it (a UUID): checked before it goes into a
 * URL. */
static bool valid_id(const char *id) {
        size_t l = id ? strlen(id) : 0;
        if (l == 0 || l > GLANCE_MAX_ID)
                return false;
        for (; *id; id++)
                if (!(('0' <= *id && *id <= '9') || ('a' <= *id && *id <= 'f') ||
                      ('A' <= *id && *id <= 'F') || *id == '-'))
                        return false;
        return true;
}

/* Strips a trailing '/' and a trailing "/v2" from an endpoint URL. */
static char *normalize_endpoint(const char *url) {
        char *e = xstrdup(url);
        size_t l = strlen(e);
        while (l && e[l - 1] == '/')
                e[--l] = 0;
        if (endswith(e, "/v2"))
                e[l -= 3] = 0;
        while (l && e[l - 1] == '/')
                e[--l] = 0;
        return e;
}

/* ---- authentication ---------------------------------------------------- */

/* Parses "Name: value;Name: value" (KILN_GLANCE_HEADERS) into headers. */
static int headers_from_env(struct glance *g, const char *spec) {
        _cleanup_free_ char *copy = xstrdup(spec);
        char *save = NULL;
        for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
                while (*item == ' ')
                        item++;
                if (!*item)
                        continue;
                char *colon = strchr(item, ':');
                if (!colon)
                        return fail(g, -EINVAL,
                                    "KILN_GLANCE_HEADERS: '%s' is not 'Name: value'", item);
                *colon = 0;
                const char *v = colon + 1;
                while (*v == ' ')
                        v++;
                if (!valid_header_name(item) || has_ctl(v))
                        return fail(g, -EINVAL,
                                    "KILN_GLANCE_HEADERS: '%s' is not a valid header", item);
                add_header(g, item, v);
        }
        return 0;
}

/* The Keystone v3 token URL for an auth URL with or without "/v3". */
static int keystone_tokens_url(struct glance *g, const char *auth_url, char **ret) {
        _cleanup_free_ char *base = xstrdup(auth_url);
        size_t l = strlen(base);
        while (l && base[l - 1] == '/')
                base[--l] = 0;
        if (endswith(base, "/v2.0"))
                return fail(g, -EINVAL, "auth_url %s: Keystone v2.0 is not supported, use v3",
                            auth_url);
        *ret = endswith(base, "/v3") ? xasprintf("%s/auth/tokens", base)
                                     : xasprintf("%s/v3/auth/tokens", base);
        return 0;
}

/* Writes {"name": NAME, "domain": {...}} or {"id": ID} for a user or project. */
static void keystone_named(struct json_writer *w, const char *id, const char *name,
                           const char *domain_id, const char *domain_name) {
        if (id) {
                json_key(w, "id");
                json_string(w, id);
                return;
        }
        json_key(w, "name");
        json_string(w, name);
        json_key(w, "domain");
        json_begin_object(w);
        json_key(w, domain_id ? "id" : "name");
        json_string(w, domain_id ? domain_id : domain_name ? domain_name : "Default");
        json_end_object(w);
}

/* Finds the image endpoint in a token's catalog. */
static int catalog_image_url(struct glance *g, const struct value *token, const char *region,
                             const char *interface, char **ret) {
        const struct value *cat = value_map_get(token, "catalog");
        if (!cat || cat->kind != V_LIST)
                return fail(g, -EBADMSG, "Keystone: the token has no service catalog");
        for (size_t i = 0; i < cat->n; i++) {
                const struct value *svc = cat->items[i];
                if (svc->kind != V_MAP || !streq_null(jstr(svc, "type"), "image"))
                        continue;
                const struct value *eps = value_map_get(svc, "endpoints");
                for (size_t k = 0; eps && eps->kind == V_LIST && k < eps->n; k++) {
                        const struct value *ep = eps->items[k];
                        const char *url = jstr(ep, "url");
                        if (!url || !streq_null(jstr(ep, "interface"), interface))
                                continue;
                        if (region && !streq_null(jstr(ep, "region_id"), region) &&
                            !streq_null(jstr(ep, "region"), region))
                                continue;
                        if (!startswith(url, "http://") && !startswith(url, "https://"))
                                continue;
                        *ret = xstrdup(url);
                        return 0;
                }
        }
        return fail(g, -ENOENT,
                    "Keystone: no %s image endpoint%s%s in the catalog (set endpoint:)",
                    interface, region ? " in region " : "", region ? region : "");
}

/* Keystone v3: password or application credential from the environment.
 * Tested against Debian's Keystone (tests/servers/keystone.sh). */
static int keystone_auth(struct glance *g, const struct settings *s) {
        const char *auth_url = s->auth_url ? s->auth_url : env_get(g, "OS_AUTH_URL");
        if (!auth_url)
                return fail(g, -EINVAL, "Keystone: no auth_url (set auth_url: or OS_AUTH_URL)");
        const char *ac_id = env_get(g, "OS_APPLICATION_CREDENTIAL_ID");
        const char *ac_secret = env_get(g, "OS_APPLICATION_CREDENTIAL_SECRET");
        const char *user = env_get(g, "OS_USERNAME"), *user_id = env_get(g, "OS_USER_ID");
        const char *password = env_get(g, "OS_PASSWORD");
        const char *project = env_get(g, "OS_PROJECT_NAME");
        const char *project_id = env_get(g, "OS_PROJECT_ID");
        add_secret(g, ac_secret);
        add_secret(g, password);

        _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &body, false);
        json_begin_object(&w);
        json_key(&w, "auth");
        json_begin_object(&w);
        json_key(&w, "identity");
        json_begin_object(&w);
        json_key(&w, "methods");
        json_begin_array(&w);
        if (ac_id && ac_secret) {
                json_string(&w, "application_credential");
                json_end_array(&w);
                json_key(&w, "application_credential");
                json_begin_object(&w);
                json_key(&w, "id");
                json_string(&w, ac_id);
                json_key(&w, "secret");
                json_string(&w, ac_secret);
                json_end_object(&w);
                json_end_object(&w); /* identity; an application credential is scoped already */
        } else if ((user || user_id) && password) {
                json_string(&w, "password");
                json_end_array(&w);
                json_key(&w, "password");
                json_begin_object(&w);
                json_key(&w, "user");
                json_begin_object(&w);
                keystone_named(&w, user_id, user, env_get(g, "OS_USER_DOMAIN_ID"),
                               env_get(g, "OS_USER_DOMAIN_NAME"));
                json_key(&w, "password");
                json_string(&w, password);
                json_end_object(&w);
                json_end_object(&w);
                json_end_object(&w); /* identity */
                if (project || project_id) {
                        json_key(&w, "scope");
                        json_begin_object(&w);
                        json_key(&w, "project");
                        json_begin_object(&w);
                        keystone_named(&w, project_id, project,
                                       env_get(g, "OS_PROJECT_DOMAIN_ID"),
                                       env_get(g, "OS_PROJECT_DOMAIN_NAME"));
                        json_end_object(&w);
                        json_end_object(&w);
                }
        } else
                return fail(g, -EINVAL,
                            "Keystone: no credentials (set OS_USERNAME and OS_PASSWORD, or "
                            "OS_APPLICATION_CREDENTIAL_ID and OS_APPLICATION_CREDENTIAL_SECRET)");
        json_end_object(&w); /* auth */
        json_end_object(&w);

        _cleanup_free_ char *url = NULL;
        int r = keystone_tokens_url(g, auth_url, &url);
        if (r < 0)
                return r;
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = url;
        req.body = body.buf;
        req.body_len = body.len;
        req.max_body = GLANCE_CATALOG_BODY;
        const char *extra[] = {"Content-Type: application/json", NULL};
        struct http_response resp = {0};
        r = send_request(g, &req, extra, &resp);
        if (r >= 0 && (resp.status == 300 || resp.status == 404 || resp.status == 405)) {
                r = fail(g, -EPROTO,
                         "Keystone: %s does not answer like Keystone v3 (HTTP %ld from POST "
                         "%s); check auth_url / OS_AUTH_URL",
                         auth_url, resp.status, url);
                http_response_done(&resp);
                return r;
        }
        if (r < 0 || resp.status != 201) {
                r = fail_http(g, "Keystone: getting a token", r, &resp);
                http_response_done(&resp);
                return r;
        }
        const char *token = http_response_header(&resp, "X-Subject-Token");
        if (!token || !*token || has_ctl(token)) {
                http_response_done(&resp);
                return fail(g, -EBADMSG, "Keystone: the response has no X-Subject-Token");
        }
        add_secret(g, token);
        add_header(g, "X-Auth-Token", token);
        if (!g->endpoint) {
                struct jdoc j = {0};
                if (parse_json(&resp, &j) < 0) {
                        http_response_done(&resp);
                        return fail(g, -EBADMSG, "Keystone: the token response is not JSON");
                }
                _cleanup_free_ char *ep = NULL;
                const char *iface = s->interface ? s->interface : env_get(g, "OS_INTERFACE");
                /* OS_INTERFACE=publicURL (Keystone v2 style) means public, as
                 * the OpenStack clients accept it. */
                _cleanup_free_ char *interface = xstrdup(iface ? iface : "public");
                if (endswith(interface, "URL"))
                        interface[strlen(interface) - 3] = 0;
                r = catalog_image_url(g, value_map_get(j.root, "token"),
                                      s->region ? s->region : env_get(g, "OS_REGION_NAME"),
                                      interface, &ep);
                jdoc_done(&j);
                if (r >= 0)
                        g->endpoint = normalize_endpoint(ep);
        }
        http_response_done(&resp);
        return r;
}

/* Chooses and sets up authentication: explicit `auth:`, else headers when
 * some are configured, a static token when OS_TOKEN is set, Keystone when
 * an auth URL is. */
static int authenticate(struct glance *g, const struct settings *s) {
        const char *env_headers = env_get(g, "KILN_GLANCE_HEADERS");
        const char *token = env_get(g, "OS_TOKEN");
        const char *auth = s->auth;
        if (!auth) {
                if (s->headers || env_headers)
                        auth = "headers";
                else if (token)
                        auth = "token";
                else if (s->auth_url || env_get(g, "OS_AUTH_URL"))
                        auth = "keystone";
                else
                        return fail(g, -EINVAL,
                                    "no credentials for Glance: set OS_AUTH_URL and OS_USERNAME/"
                                    "OS_PASSWORD (or an application credential), OS_TOKEN, or "
                                    "headers:");
        }
        /* headers: from the settings go with every kind of auth (a proxy may
         * want them); KILN_GLANCE_HEADERS only with auth: headers. */
        for (size_t i = 0; s->headers && s->headers->kind == V_MAP && i < s->headers->n; i++) {
                const struct value *v = s->headers->items[i];
                if (v->sensitive)
                        add_secret(g, v->str);
                add_header(g, s->headers->keys[i]->str, v->str ? v->str : "");
        }
        if (streq(auth, "headers")) {
                if (env_headers) {
                        int r = headers_from_env(g, env_headers);
                        if (r < 0)
                                return r;
                }
                if (!g->nheaders)
                        return fail(g, -EINVAL,
                                    "auth: headers, but no headers: and no KILN_GLANCE_HEADERS");
        } else if (streq(auth, "token")) {
                if (!token)
                        return fail(g, -EINVAL, "auth: token, but OS_TOKEN is not set");
                add_secret(g, token);
                add_header(g, "X-Auth-Token", token);
        } else {
                int r = keystone_auth(g, s);
                if (r < 0)
                        return r;
        }
        if (!g->endpoint)
                return fail(g, -EINVAL,
                            "no Glance endpoint: set endpoint: (or OS_IMAGE_URL)%s",
                            streq(auth, "keystone") ? "" : "; only Keystone has a catalog");
        return 0;
}

/* ---- the image API ----------------------------------------------------- */

/* Sends req (see send_request) and parses the JSON object the server
 * answers with status `ok` into *ret. Any other outcome fails step `what`. */
static int request_json(struct glance *g, struct http_request *req, const char *const *extra,
                        long ok, const char *what, struct jdoc *ret) {
        struct http_response resp = {0};
        int r = send_request(g, req, extra, &resp);
        if (r < 0 || resp.status != ok)
                r = fail_http(g, what, r, &resp);
        else if (parse_json(&resp, ret) < 0)
                r = fail(g, -EBADMSG, "%s: the response is not a JSON object", what);
        http_response_done(&resp);
        return r;
}

/* GETs path (below the endpoint) as a JSON object into *ret; max_body as in
 * struct http_request. */
static int get_json(struct glance *g, const char *path, const char *what, size_t max_body,
                    struct jdoc *ret) {
        _cleanup_free_ char *url = url_for(g, path);
        struct http_request req = HTTP_REQUEST_INIT;
        req.url = url;
        req.max_body = max_body;
        return request_json(g, &req, NULL, 200, what, ret);
}

/* GETs one image into *ret. */
static int get_image(struct glance *g, const char *id, struct jdoc *ret) {
        _cleanup_free_ char *path = xasprintf("/v2/images/%s", id);
        return get_json(g, path, "reading the image", 0, ret);
}

static bool image_matches(const struct value *img, const struct publish_artifact *a) {
        return streq_null(jstr(img, "status"), "active") &&
               streq_null(jstr(img, "os_hash_algo"), "sha512") &&
               streq_null(jstr(img, "os_hash_value"), a->sha512);
}

/* Looks for an active image named name holding the artifact's content.
 * Returns 1 with its id in *ret_id, 0 when there is none. */
static int find_identical(struct glance *g, const char *name, const struct publish_artifact *a,
                          char **ret_id) {
        _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
        strbuf_adds(&path, "/v2/images?limit=100&name=");
        http_uri_encode(&path, name, strlen(name), false);
        _cleanup_free_ char *next = strbuf_detach(&path);
        for (unsigned page = 0; next && page < GLANCE_LIST_PAGES; page++) {
                struct jdoc j = {0};
                int r = get_json(g, next, "listing images", GLANCE_LIST_BODY, &j);
                if (r < 0)
                        return r;
                const struct value *imgs = value_map_get(j.root, "images");
                for (size_t i = 0; imgs && imgs->kind == V_LIST && i < imgs->n; i++) {
                        const struct value *img = imgs->items[i];
                        const char *id = jstr(img, "id");
                        if (img->kind == V_MAP && streq_null(jstr(img, "name"), name) &&
                            image_matches(img, a) && valid_id(id)) {
                                *ret_id = xstrdup(id);
                                jdoc_done(&j);
                                return 1;
                        }
                }
                /* "next" is a path below the endpoint: follow only that. */
                const char *n = jstr(j.root, "next");
                free(next);
                next = n && startswith(n, "/v2/images?") && !has_ctl(n) && !strchr(n, ' ')
                               ? xstrdup(n)
                               : NULL;
                jdoc_done(&j);
        }
        return 0;
}

static void json_prop(struct json_writer *w, const char *key, const char *v) {
        if (!v)
                return;
        json_key(w, key);
        json_string(w, v);
}

/* The disk format Glance is told: the setting, else the artifact's. */
static const char *default_disk_format(const char *format) {
        if (!format)
                return NULL;
        for (const char *const *f = disk_formats; *f; f++)
                if (streq(*f, format))
                        return *f;
        if (streq(format, "ova"))
                return "vmdk";
        return NULL;
}

static int create_image(struct glance *g, const struct settings *s, const char *name,
                        const struct publish_artifact *a, char **ret_id) {
        const char *disk_format = s->disk_format ? s->disk_format : default_disk_format(a->format);
        if (!disk_format)
                return fail(g, -EINVAL,
                            "the artifact's format '%s' has no Glance disk format: set disk_format:",
                            a->format ? a->format : "(unknown)");
        const char *container = s->container_format ? s->container_format
                                : streq_null(a->format, "ova") ? "ova"
                                                               : "bare";
        _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &body, false);
        json_begin_object(&w);
        json_prop(&w, "name", name);
        json_prop(&w, "disk_format", disk_format);
        json_prop(&w, "container_format", container);
        json_prop(&w, "visibility", s->visibility);
        if (s->min_disk && s->min_disk->kind == V_NUMBER) {
                json_key(&w, "min_disk");
                json_int(&w, (int64_t)s->min_disk->num);
        }
        if (s->min_ram && s->min_ram->kind == V_NUMBER) {
                json_key(&w, "min_ram");
                json_int(&w, (int64_t)s->min_ram->num);
        }
        if (s->tags && s->tags->kind == V_LIST) {
                json_key(&w, "tags");
                json_begin_array(&w);
                for (size_t i = 0; i < s->tags->n; i++)
                        json_string(&w, s->tags->items[i]->str);
                json_end_array(&w);
        }
        json_prop(&w, "hw_firmware_type", s->hw_firmware_type);
        json_prop(&w, "hw_machine_type", s->hw_machine_type);
        json_prop(&w, "os_distro", s->os_distro);
        json_prop(&w, "os_version", s->os_version);
        json_prop(&w, "architecture", s->architecture ? s->architecture : a->arch);
        /* Glance v2 takes extra properties as top-level string members. */
        for (size_t i = 0; s->properties && s->properties->kind == V_MAP && i < s->properties->n;
             i++) {
                const struct value *v = s->properties->items[i];
                json_prop(&w, s->properties->keys[i]->str, v->kind == V_NULL ? "" : v->str);
        }
        json_end_object(&w);

        _cleanup_free_ char *url = url_for(g, "/v2/images");
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = url;
        req.body = body.buf;
        req.body_len = body.len;
        const char *extra[] = {"Content-Type: application/json", NULL};
        struct jdoc j = {0};
        int r = request_json(g, &req, extra, 201, "creating the image", &j);
        if (r < 0)
                return r;
        const char *id = jstr(j.root, "id");
        if (!valid_id(id)) {
                jdoc_done(&j);
                return fail(g, -EBADMSG, "creating the image: the response has no valid id");
        }
        *ret_id = xstrdup(id);
        jdoc_done(&j);
        return 0;
}

/* PUTs the artifact's bytes to /v2/images/ID/<what> ("file" or "stage").
 * The bytes of a PUT that succeeded count in ret->bytes_sent, those of one
 * that failed in ret->bytes_retried. */
static int put_data(struct glance *g, const char *id, const char *what,
                    const struct publish_artifact *a, struct publish_result *ret) {
        strbuf_reset(&g->err);
        _cleanup_close_ int fd = publish_open_file(a->path, a->size, NULL, &g->err);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *path = xasprintf("/v2/images/%s/%s", id, what);
        _cleanup_free_ char *url = url_for(g, path);
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "PUT";
        req.url = url;
        req.body_fd = fd;
        req.body_offset = 0;
        req.body_size = a->size;
        req.on_sent = on_sent;
        req.userdata = g;
        const char *extra[] = {"Content-Type: application/octet-stream", NULL};
        g->sent = 0;
        g->total = a->size;
        struct http_response resp = {0};
        int r = send_request(g, &req, extra, &resp);
        if (r >= 0 && resp.status == 204)
                ret->bytes_sent += resp.bytes_sent;
        else
                ret->bytes_retried += resp.bytes_sent;
        if (r < 0 || resp.status != 204)
                r = fail_http(g, streq(what, "file") ? "uploading the image data"
                                                      : "staging the image data",
                              r, &resp);
        http_response_done(&resp);
        return r;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Is glance-direct among the server's import methods? */
static int check_import_method(struct glance *g) {
        struct jdoc j = {0};
        int r = get_json(g, "/v2/info/import", "asking for the import methods", 0, &j);
        if (r < 0)
                return r;
        const struct value *m = value_map_get(j.root, "import-methods");
        const struct value *list = value_map_get(m, "value");
        bool found = false;
        for (size_t i = 0; list && list->kind == V_LIST && i < list->n; i++)
                found = found || streq_null(list->items[i]->str, "glance-direct");
        jdoc_done(&j);
        return found ? 0
                     : fail(g, -EOPNOTSUPP,
                            "this Glance does not offer the glance-direct import method "
                            "(use method: direct)");
}

/* Starts the import of the staged data and polls the image until it is
 * active, fails, or the deadline passes. */
static int import_and_wait(struct glance *g, const char *id, uint64_t timeout_s) {
        _cleanup_free_ char *path = xasprintf("/v2/images/%s/import", id);
        _cleanup_free_ char *url = url_for(g, path);
        static const char body[] = "{\"method\": {\"name\": \"glance-direct\"}}";
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = url;
        req.body = body;
        req.body_len = sizeof(body) - 1;
        const char *extra[] = {"Content-Type: application/json", NULL};
        struct http_response resp = {0};
        int r = send_request(g, &req, extra, &resp);
        if (r < 0 || resp.status != 202) {
                r = fail_http(g, "starting the import", r, &resp);
                http_response_done(&resp);
                return r;
        }
        http_response_done(&resp);

        uint64_t deadline = now_ms() + timeout_s * 1000, wait_ms = 100;
        for (;;) {
                struct jdoc j = {0};
                r = get_image(g, id, &j);
                if (r < 0)
                        return r;
                const char *status = jstr(j.root, "status");
                const char *failed = jstr(j.root, "os_glance_failed_import");
                _cleanup_free_ char *st = xstrdup(status ? status : "(none)");
                bool failed_import = failed && *failed;
                jdoc_done(&j);
                if (streq(st, "active"))
                        return 0;
                if (failed_import || streq(st, "killed") || streq(st, "deleted") ||
                    streq(st, "deactivated"))
                        return fail(g, -EIO, "the import failed (image status %s)%s", st,
                                    failed_import ? " and Glance marked the import failed" : "");
                if (now_ms() >= deadline)
                        return fail(g, -ETIMEDOUT,
                                    "the import did not finish within %llu s (image status %s)",
                                    (unsigned long long)timeout_s, st);
                /* Poll: 0.1 s doubling to 2 s, never past the deadline. */
                uint64_t left = deadline - now_ms();
                uint64_t ms = wait_ms < left ? wait_ms : left;
                struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
                nanosleep(&ts, NULL);
                if (wait_ms < 2000)
                        wait_ms *= 2;
        }
}

/* The image is what we sent: active, same size, same sha512. */
static int verify_image(struct glance *g, const char *id, const struct publish_artifact *a) {
        struct jdoc j = {0};
        int r = get_image(g, id, &j);
        if (r < 0)
                return r;
        const char *status = jstr(j.root, "status");
        const char *algo = jstr(j.root, "os_hash_algo");
        const char *hash = jstr(j.root, "os_hash_value");
        const struct value *size = value_map_get(j.root, "size");
        if (!streq_null(status, "active"))
                r = fail(g, -EIO, "after the upload the image is %s, not active",
                         status ? status : "(no status)");
        else if (!streq_null(algo, "sha512"))
                r = fail(g, -EOPNOTSUPP,
                         "Glance hashes images with %s; kiln verifies uploads by sha512",
                         algo ? algo : "(nothing)");
        else if (!streq_null(hash, a->sha512))
                r = fail(g, -EIO, "the image's os_hash_value differs from the local sha512 "
                                  "(data corrupted in transit?)");
        else if (!size || size->kind != V_NUMBER || !size->str ||
                 strtoull(size->str, NULL, 10) != a->size)
                r = fail(g, -EIO, "the image's size differs from the local file's %llu bytes",
                         (unsigned long long)a->size);
        jdoc_done(&j);
        return r;
}

/* Deletes an image this publish created and could not finish. Adds to the
 * failure message when that fails too. */
static void delete_image(struct glance *g, const char *id) {
        _cleanup_free_ char *path = xasprintf("/v2/images/%s", id);
        _cleanup_free_ char *url = url_for(g, path);
        struct http_request req = HTTP_REQUEST_INIT;
        req.method = "DELETE";
        req.url = url;
        struct http_response resp = {0};
        int r = send_request(g, &req, NULL, &resp);
        if (r < 0 || (resp.status != 204 && resp.status != 404))
                strbuf_addf(&g->err,
                            "; deleting the unfinished image %s failed too (HTTP %ld): "
                            "delete it by hand",
                            id, resp.status);
        else
                strbuf_addf(&g->err, "; the unfinished image %s was deleted", id);
        http_response_done(&resp);
}

/* A line for the verbose log (-v), beside the HTTP client's. */
static void log_note(struct glance *g, const char *fmt, ...) _printf_(2, 3);
static void log_note(struct glance *g, const char *fmt, ...) {
        if (!g->ctx->verbose || g->ctx->log_fd < 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *m = xvasprintf(fmt, ap);
        va_end(ap);
        _cleanup_free_ char *l = xasprintf("glance: %s\n", m);
        (void)write_all(g->ctx->log_fd, l, strlen(l));
}

/* The image name: the setting, else the build's name, else the file name
 * without its extension. Owned. */
static char *image_name_for(const struct settings *s, const struct publish_artifact *a) {
        if (s->image_name)
                return xstrdup(s->image_name);
        if (a->image_name && *a->image_name)
                return xstrdup(a->image_name);
        const char *dot = strrchr(a->file_name, '.');
        return dot && dot != a->file_name ? xstrndup(a->file_name, (size_t)(dot - a->file_name))
                                          : xstrdup(a->file_name);
}

static int do_publish(struct glance *g, const struct publish_target *t,
                      const struct publish_artifact *a, struct publish_result *ret) {
        struct diag_list d = {0};
        int r = glance_validate(t->settings, &d);
        if (r < 0) {
                const struct diag *first = d.n ? &d.v[0] : NULL;
                if (first && first->mark.src)
                        fail(g, r, "%s:%u:%u: %s", first->mark.src->path, first->mark.line,
                             first->mark.col, first->msg);
                else
                        fail(g, r, "%s", first ? first->msg : "invalid settings");
                diag_list_done(&d);
                return r;
        }
        diag_list_done(&d);
        if (!a->sha512 || strlen(a->sha512) != 128)
                return fail(g, -EINVAL, "%s: no sha512 for the artifact", a->file_name);

        struct settings s;
        read_settings(t->settings, &s);
        struct http_options opts = {
                .insecure = s.insecure,
                .ca_file = s.ca_file,
                .log = g->ctx->verbose && g->ctx->log_fd >= 0 ? http_log : NULL,
                .log_userdata = g,
        };
        r = http_client_new(&opts, &g->http);
        if (r < 0)
                return fail(g, r, "cannot set up HTTP: %s", strerror(-r));
        const char *endpoint = s.endpoint ? s.endpoint : env_get(g, "OS_IMAGE_URL");
        if (endpoint)
                g->endpoint = normalize_endpoint(endpoint);
        r = authenticate(g, &s);
        if (r < 0)
                return r;

        _cleanup_free_ char *name = image_name_for(&s, a);
        _cleanup_free_ char *existing = NULL;
        r = find_identical(g, name, a, &existing);
        if (r < 0)
                return r;
        if (r > 0) {
                _cleanup_free_ char *path = xasprintf("/v2/images/%s", existing);
                ret->status = PUBLISH_SKIPPED_IDENTICAL;
                ret->location = url_for(g, path);
                return 0;
        }

        bool staged = streq_null(s.method, "glance-direct");
        if (staged) {
                r = check_import_method(g);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *id = NULL;
        r = create_image(g, &s, name, a, &id);
        if (r < 0)
                return r;
        log_note(g, "created image %s (%s)", id, name);
        r = put_data(g, id, staged ? "stage" : "file", a, ret);
        if (r >= 0 && staged)
                r = import_and_wait(g, id, s.import_timeout_s);
        if (r >= 0)
                r = verify_image(g, id, a);
        if (r < 0) {
                delete_image(g, id);
                return r;
        }
        _cleanup_free_ char *path = xasprintf("/v2/images/%s", id);
        ret->status = PUBLISH_UPLOADED;
        ret->location = url_for(g, path);
        return 0;
}

static int glance_publish(const struct publish_target *t, const struct publish_artifact *a,
                          const struct publish_ctx *ctx, struct publish_result *ret) {
        struct glance g = {.ctx = ctx};
        uint64_t t0 = now_ms();
        *ret = (struct publish_result){0};
        int r = do_publish(&g, t, a, ret);
        ret->elapsed_ms = now_ms() - t0;
        if (r < 0) {
                ret->status = PUBLISH_FAILED;
                free(ret->location);
                ret->location = NULL;
                _cleanup_free_ char *m = xasprintf("glance: %s", strbuf_str(&g.err));
                ret->error = mask_secrets(&g, m);
        }
        http_client_free(g.http);
        free(g.endpoint);
        for (size_t i = 0; i < g.nheaders; i++)
                free(g.headers[i]);
        free(g.headers);
        for (size_t i = 0; i < g.nsecrets; i++)
                free(g.secrets[i]);
        free(g.secrets);
        strbuf_free(&g.err);
        return r;
}

const struct publisher publisher_glance = {
        .type = "glance",
        .summary = "OpenStack Glance (Image API v2): direct upload or glance-direct import",
        .validate = glance_validate,
        .publish = glance_publish,
};
