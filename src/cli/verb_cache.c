/* SPDX-License-Identifier: Apache-2.0 */
/* kiln cache: look at and trim the step cache. */
#include "cli/cli.h"

#include "base/json.h"
#include "provision/cache.h"
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
                "Options:\n"
                "  --cache-dir DIR   the cache (default $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln\n"
                "                    or ~/.cache/kiln)\n"
                "  --json            machine-readable list\n"
                "\n"
                "Entries in use by a running build are never removed.\n",
        .run = cache_verb_run,
};

enum { C_HELP = 1, C_JSON, C_MAX, C_DIR };

static const struct cli_option cache_opts[] = {
        {"help", 'h', false, C_HELP},
        {"json", 0, false, C_JSON},
        {"max-size", 0, true, C_MAX},
        {"cache-dir", 0, true, C_DIR},
        {NULL, 0, false, 0},
};

static int cache_verb_run(struct cli *cli, int argc, char **argv) {
        struct cli_parser p = {.opts = cache_opts, .argc = argc, .argv = argv, .i = 1, .verb = "cache"};
        const char *arg, *sub = NULL, *max = NULL;
        bool json = false;
        struct spec_args sa = {0};
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2: return EXIT_USAGE;
                case 0:
                        if (sub) {
                                cli_usage_error("cache", "unexpected argument '%s'", arg);
                                return EXIT_USAGE;
                        }
                        sub = arg;
                        break;
                case C_HELP: cli_print_verb_help(&verb_cache, stdout); return EXIT_OK;
                case C_JSON: json = true; break;
                case C_MAX: max = arg; break;
                case C_DIR: sa.cache_dir = arg; break;
                }
        }
        if (!sub || (!streq(sub, "list") && !streq(sub, "prune") && !streq(sub, "dir"))) {
                cli_usage_error("cache", "expected list, prune or dir");
                return EXIT_USAGE;
        }
        _cleanup_free_ char *dir = cli_cache_dir(&sa);
        if (streq(sub, "dir")) {
                printf("%s\n", dir);
                return EXIT_OK;
        }
        uint64_t max_bytes = 0;
        if (streq(sub, "prune")) {
                if (!max) {
                        cli_usage_error("cache", "prune needs --max-size SIZE (e.g. 20G)");
                        return EXIT_USAGE;
                }
                if (parse_size(max, &max_bytes) < 0) {
                        cli_usage_error("cache", "--max-size: '%s' is not a size (e.g. 20G, 512M, 0)", max);
                        return EXIT_USAGE;
                }
        }
        struct cache *c = NULL;
        int r = cache_open(dir, &c);
        if (r < 0) {
                fprintf(stderr, "kiln: cache: cannot open %s: %s\n", dir, strerror(-r));
                return EXIT_FAILED;
        }
        int ret = EXIT_OK;
        if (streq(sub, "prune")) {
                uint64_t freed = 0;
                size_t removed = 0;
                r = cache_prune(c, max_bytes, &freed, &removed);
                if (r < 0) {
                        fprintf(stderr, "kiln: cache prune: %s\n", strerror(-r));
                        ret = EXIT_FAILED;
                } else {
                        char h[32];
                        format_bytes(freed, h, sizeof(h));
                        printf("removed %zu entr%s, %s freed\n", removed, removed == 1 ? "y" : "ies", h);
                }
        } else {
                struct cache_entry_info *v = NULL;
                size_t n = 0;
                r = cache_list(c, &v, &n);
                if (r < 0) {
                        fprintf(stderr, "kiln: cache list: %s\n", strerror(-r));
                        ret = EXIT_FAILED;
                } else if (json) {
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
                        json_end_object(&w);
                        printf("%s\n", out.buf);
                } else {
                        uint64_t total = 0;
                        for (size_t i = 0; i < n; i++) {
                                char h[32], when[32];
                                struct tm tm;
                                format_bytes(v[i].size, h, sizeof(h));
                                localtime_r(&v[i].last_used, &tm);
                                strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
                                printf("%.12s  %10s  %s  %s\n", v[i].key, h, when, v[i].label ? v[i].label : "");
                                total += v[i].size;
                        }
                        char h[32];
                        format_bytes(total, h, sizeof(h));
                        printf("%zu entr%s, %s in %s\n", n, n == 1 ? "y" : "ies", h, dir);
                }
                cache_entry_info_free(v, n);
        }
        cache_close(c);
        return ret;
}
