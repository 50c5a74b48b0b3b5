/* SPDX-License-Identifier: Apache-2.0 */
/* kiln cache: look at and trim the step cache. */
#include "cli/cli.h"

#include "base/json.h"
#include "provision/cache.h"
#include "provision/pkgcache.h"
#include "spec/schema.h"

#include <time.h>

static int cache_verb_run(struct cli *cli, int argc, char **argv);

const struct verb verb_cache = {
        .name = "cache",
        .summary = "List or prune the step cache",
        .usage = "kiln cache list|prune|dir [options]",
        .help = "  kiln cache list [--json]          entries, most recently used first\n"
                "  kiln cache prune --max-size SIZE  remove least recently used entries until\n"
                "                                    the cache is at most SIZE (e.g. 20G, 0)\n"
                "  kiln cache dir                    print the cache directory\n"
                "\n"
                "The package cache (the .debs builds fetched, by SHA-256) lives in the same\n"
                "directory: list shows its total, prune removes its files with the entries,\n"
                "least recently used first.\n"
                "\n"
                "Options:\n"
                "  --cache-dir DIR   the cache (default $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln\n"
                "                    or ~/.cache/kiln)\n"
                "  --json            machine-readable list\n"
                "\n"
                "Entries in use by a running build are never removed.\n",
        .run = cache_verb_run,
};

/* The package cache's file count and bytes. */
struct pkg_total {
        size_t files;
        uint64_t bytes;
};

static struct pkg_total package_total(struct cache *c) {
        struct pkg_total t = {0};
        _cleanup_free_ char *pdir = cache_packages_dir(c);
        _cleanup_free_ struct pkgcache_file *pv = NULL;
        if (pkgcache_list(pdir, &pv, &t.files) < 0)
                return (struct pkg_total){0};
        for (size_t i = 0; i < t.files; i++)
                t.bytes += pv[i].size;
        return t;
}

/* The entries as JSON: {dir, entries: [{key, label, size, created, last_used}],
 * packages: {files, size}}. */
static void print_json(const char *dir, const struct cache_entry_info *v, size_t n,
                       struct pkg_total pt) {
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &out, true);
        json_begin_object(&w);
        json_key(&w, "dir");
        json_string(&w, dir);
        json_key(&w, "entries");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
                json_begin_object(&w);
                json_key(&w, "key");
                json_string(&w, v[i].key);
                json_key(&w, "label");
                json_string(&w, v[i].label);
                json_key(&w, "size");
                json_int(&w, (int64_t)v[i].size);
                json_key(&w, "created");
                json_int(&w, (int64_t)v[i].created);
                json_key(&w, "last_used");
                json_int(&w, (int64_t)v[i].last_used);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "packages");
        json_begin_object(&w);
        json_key(&w, "files");
        json_int(&w, (int64_t)pt.files);
        json_key(&w, "size");
        json_int(&w, (int64_t)pt.bytes);
        json_end_object(&w);
        json_end_object(&w);
        printf("%s\n", out.buf);
}

/* One line per entry (key, size, last use, label), then the total. */
static void print_table(const char *dir, const struct cache_entry_info *v, size_t n,
                        struct pkg_total pt) {
        uint64_t total = 0;
        char h[32];
        for (size_t i = 0; i < n; i++) {
                char when[32];
                struct tm tm;
                format_bytes(v[i].size, h, sizeof(h));
                localtime_r(&v[i].last_used, &tm);
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
                printf("%.12s  %10s  %s  %s\n", v[i].key, h, when, v[i].label ? v[i].label : "");
                total += v[i].size;
        }
        format_bytes(total, h, sizeof(h));
        printf("%zu entr%s, %s in %s\n", n, n == 1 ? "y" : "ies", h, dir);
        format_bytes(pt.bytes, h, sizeof(h));
        printf("packages: %zu file%s, %s\n", pt.files, pt.files == 1 ? "" : "s", h);
}

static int list(struct cache *c, const char *dir, bool json) {
        struct cache_entry_info *v = NULL;
        size_t n = 0;
        int r = cache_list(c, &v, &n);
        if (r < 0) {
                fprintf(stderr, "kiln: cache list: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        struct pkg_total pt = package_total(c);
        if (json)
                print_json(dir, v, n, pt);
        else
                print_table(dir, v, n, pt);
        cache_entry_info_free(v, n);
        return EXIT_OK;
}

static int prune(struct cache *c, uint64_t max_bytes) {
        struct cache_prune_result res = {0};
        int r = cache_prune_all(c, max_bytes, &res);
        if (r < 0) {
                fprintf(stderr, "kiln: cache prune: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        char h[32];
        format_bytes(res.freed, h, sizeof(h));
        printf("removed %zu entr%s and %zu package file%s, %s freed\n", res.removed,
               res.removed == 1 ? "y" : "ies", res.removed_packages,
               res.removed_packages == 1 ? "" : "s", h);
        return EXIT_OK;
}

static int take_sub(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        const char **sub = o->value;
        if (*sub)
                return cli_usage_error(verb, "unexpected argument '%s'", arg);
        *sub = arg;
        return 0;
}

static int cache_verb_run(struct cli *cli, int argc, char **argv) {
        const char *sub = NULL, *max = NULL;
        bool json = false;
        struct spec_args sa = {0};
        const struct cli_opt opts[] = {
                CLI_OPT_HELP(),
                CLI_OPT_FLAG("json", 0, &json),
                CLI_OPT_STRING("max-size", 0, &max),
                CLI_OPT_STRING("cache-dir", 0, &sa.cache_dir),
                CLI_OPT_ARGS(&sub, take_sub),
                CLI_OPT_END(),
        };
        int r = cli_parse_options(&verb_cache, opts, argc, argv);
        if (r != 0)
                return cli_parse_exit(r);
        if (!sub || (!streq(sub, "list") && !streq(sub, "prune") && !streq(sub, "dir")))
                return cli_usage_error("cache", "expected list, prune or dir"), EXIT_USAGE;
        _cleanup_free_ char *dir = cli_cache_dir(&sa);
        if (streq(sub, "dir")) {
                printf("%s\n", dir);
                return EXIT_OK;
        }
        uint64_t max_bytes = 0;
        if (streq(sub, "prune") && !max)
                return cli_usage_error("cache", "prune needs --max-size SIZE (e.g. 20G)"), EXIT_USAGE;
        if (streq(sub, "prune") && parse_size(max, &max_bytes) < 0)
                return cli_usage_error("cache", "--max-size: '%s' is not a size (e.g. 20G, 512M, 0)", max),
                       EXIT_USAGE;
        struct cache *c = NULL;
        r = cache_open(dir, &c);
        if (r < 0) {
                fprintf(stderr, "kiln: cache: cannot open %s: %s\n", dir, strerror(-r));
                return EXIT_FAILED;
        }
        int ret = streq(sub, "prune") ? prune(c, max_bytes) : list(c, dir, json);
        cache_close(c);
        return ret;
}
