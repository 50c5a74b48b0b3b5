/* SPDX-License-Identifier: Apache-2.0 */
/* kiln images: the local image store (add, list, show, rm, prune). */
#include "cli/cli.h"

#include "base/json.h"
#include "store/store.h"

#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>

static int images_verb_run(struct cli *cli, int argc, char **argv);

const struct verb verb_images = {
        .name = "images",
        .summary = "Keep built images in the local content-addressed store",
        .usage = "kiln images add|list|show|rm|prune [options] [args]",
        .help = "  kiln images add OUTPUT_DIR...   add builds' output folders (output/NAME/, read\n"
                "                                  from their kiln-manifest.json)\n"
                "  kiln images add --name NAME FILE...  add bare files as one image version\n"
                "  kiln images list                entries, newest first\n"
                "  kiln images show ID|NAME[:VERSION]  one entry, or every file of a version\n"
                "                                  (NAME alone: its newest version)\n"
                "  kiln images rm ID|NAME:VERSION...  remove entries; a blob goes when no\n"
                "                                  entry uses it any more\n"
                "  kiln images prune --keep N      per image name, keep the N newest versions\n"
                "\n"
                "Each file of a build is one entry (an id), stored once by its SHA-256 however\n"
                "often it is added; the files of one build share a version, by default\n"
                "YYYYMMDD.N (the build's UTC date, then 1, 2, ... per image and day).\n"
                "Adding the same build again only sets the labels given (e.g. to promote\n"
                "it: --label channel=release).\n"
                "\n"
                "Options:\n"
                "  --store DIR        the store (default $KILN_STORE_DIR, $XDG_DATA_HOME/kiln/store\n"
                "                     or ~/.local/share/kiln/store)\n"
                "  --json             machine-readable output (list, show, add, rm, prune)\n"
                "add:\n"
                "  --name NAME        image name (required for bare files; overrides the manifest)\n"
                "  --version V        version instead of YYYYMMDD.N (e.g. 1.4.2)\n"
                "  --arch A, --role R, --build-id ID   override or set these fields\n"
                "  --format F         format of bare files (default: the file's extension)\n"
                "  --label KEY=VALUE  add a label (repeatable), e.g. channel=release\n"
                "  --copy             always copy (default: reflink, else hard link on the same\n"
                "                     file system, else a sparse copy)\n"
                "  --sha512           also compute SHA-512 (always when the manifest has one)\n"
                "list, prune filters:\n"
                "  --name NAME  --version V  --arch A  --role R  --format F  --label KEY=VALUE\n"
                "prune:\n"
                "  --keep N           versions to keep per image name (required)\n"
                "  --dry-run          only say what would be removed\n"
                "\n"
                "Every file is hashed on the way in and refused when it does not match the\n"
                "checksum its manifest records. 'kiln serve-images' serves the store over HTTP.\n",
        .run = images_verb_run,
};

enum {
        I_HELP = 1,
        I_STORE,
        I_JSON,
        I_NAME,
        I_VERSION,
        I_ARCH,
        I_ROLE,
        I_BUILD_ID,
        I_FORMAT,
        I_LABEL,
        I_COPY,
        I_SHA512,
        I_KEEP,
        I_DRY_RUN,
};

static const struct cli_option images_opts[] = {
        {"help", 'h', false, I_HELP},
        {"store", 0, true, I_STORE},
        {"json", 0, false, I_JSON},
        {"name", 0, true, I_NAME},
        {"version", 0, true, I_VERSION},
        {"arch", 0, true, I_ARCH},
        {"role", 0, true, I_ROLE},
        {"build-id", 0, true, I_BUILD_ID},
        {"format", 0, true, I_FORMAT},
        {"label", 0, true, I_LABEL},
        {"copy", 0, false, I_COPY},
        {"sha512", 0, false, I_SHA512},
        {"keep", 0, true, I_KEEP},
        {"dry-run", 0, false, I_DRY_RUN},
        {NULL, 0, false, 0},
};

struct images_args {
        const char *sub;
        const char **args;
        size_t nargs;
        const char *store;
        bool json, copy, sha512, dry_run;
        const char *name, *version, *arch, *role, *build_id, *format, *keep;
        struct store_label *labels;
        size_t nlabels;
        /* which options were given, to refuse those a subcommand ignores */
        bool given[I_DRY_RUN + 1];
};

static void images_args_done(struct images_args *a) {
        free(a->args);
        for (size_t i = 0; i < a->nlabels; i++) {
                free(a->labels[i].key);
                free(a->labels[i].value);
        }
        free(a->labels);
}

static int parse_args(struct images_args *a, int argc, char **argv) {
        struct cli_parser p = {.opts = images_opts, .argc = argc, .argv = argv, .i = 1,
                               .verb = "images"};
        const char *arg;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                if (id > 0)
                        a->given[id] = true;
                switch (id) {
                case -2: return -EINVAL;
                case 0:
                        if (!a->sub) {
                                a->sub = arg;
                        } else {
                                a->args = xreallocarray(a->args, a->nargs + 1, sizeof(*a->args));
                                a->args[a->nargs++] = arg;
                        }
                        break;
                case I_HELP: cli_print_verb_help(&verb_images, stdout); return 1;
                case I_STORE: a->store = arg; break;
                case I_JSON: a->json = true; break;
                case I_NAME: a->name = arg; break;
                case I_VERSION: a->version = arg; break;
                case I_ARCH: a->arch = arg; break;
                case I_ROLE: a->role = arg; break;
                case I_BUILD_ID: a->build_id = arg; break;
                case I_FORMAT: a->format = arg; break;
                case I_COPY: a->copy = true; break;
                case I_SHA512: a->sha512 = true; break;
                case I_KEEP: a->keep = arg; break;
                case I_DRY_RUN: a->dry_run = true; break;
                case I_LABEL: {
                        const char *eq = strchr(arg, '=');
                        if (!eq || eq == arg) {
                                cli_usage_error("images", "--label wants KEY=VALUE, not '%s'", arg);
                                return -EINVAL;
                        }
                        a->labels = xreallocarray(a->labels, a->nlabels + 1, sizeof(*a->labels));
                        a->labels[a->nlabels].key = xstrndup(arg, eq - arg);
                        a->labels[a->nlabels].value = xstrdup(eq + 1);
                        a->nlabels++;
                        break;
                }
                }
        }
        return 0;
}

/* Refuses options that sub does not use (allowed: a list of I_* ending in 0). */
static int only_options(const struct images_args *a, const int *allowed) {
        for (int id = I_NAME; id <= I_DRY_RUN; id++) {
                if (!a->given[id])
                        continue;
                bool ok = false;
                for (const int *p = allowed; *p; p++)
                        ok |= *p == id;
                if (!ok) {
                        const char *name = "?";
                        for (const struct cli_option *o = images_opts; o->name; o++)
                                if (o->id == id)
                                        name = o->name;
                        cli_usage_error("images", "%s does not take --%s", a->sub, name);
                        return -EINVAL;
                }
        }
        return 0;
}

static void print_json(struct strbuf *sb) { printf("%s\n", sb->buf); }

static void entries_json_doc(const char *key, const struct store_entry *v, size_t n,
                             const char *extra_key, int64_t extra) {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &sb, true);
        json_begin_object(&w);
        json_key(&w, key);
        store_entries_json(v, n, &w);
        if (extra_key) {
                json_key(&w, extra_key);
                json_int(&w, extra);
        }
        json_end_object(&w);
        print_json(&sb);
}

static const char *dash(const char *s) { return s && *s ? s : "-"; }

static void when(int64_t t, char *buf, size_t n) {
        time_t tt = (time_t)t;
        struct tm tm;
        localtime_r(&tt, &tm);
        strftime(buf, n, "%Y-%m-%d %H:%M", &tm);
}

static void print_table(const struct store_entry *v, size_t n) {
        const char *head[] = {"ID", "NAME", "VERSION", "ARCH", "ROLE", "FORMAT", "SIZE", "SHA256",
                              "CREATED"};
        enum { NCOL = ARRAY_SIZE(head) };
        size_t width[NCOL];
        for (size_t c = 0; c < NCOL; c++)
                width[c] = strlen(head[c]);
        char (*cells)[NCOL][40] = xcalloc(n + 1, sizeof(*cells));
        for (size_t i = 0; i < n; i++) {
                const struct store_entry *e = &v[i];
                snprintf(cells[i][0], 40, "%" PRId64, e->id);
                snprintf(cells[i][1], 40, "%s", e->name);
                snprintf(cells[i][2], 40, "%s", e->version);
                snprintf(cells[i][3], 40, "%s", dash(e->arch));
                snprintf(cells[i][4], 40, "%s", dash(e->role));
                snprintf(cells[i][5], 40, "%s", e->format);
                format_bytes(e->size, cells[i][6], 40);
                snprintf(cells[i][7], 40, "%.12s", e->sha256);
                when(e->created, cells[i][8], 40);
                for (size_t c = 0; c < NCOL; c++)
                        if (strlen(cells[i][c]) > width[c])
                                width[c] = strlen(cells[i][c]);
        }
        for (size_t i = 0; i <= n; i++)
                for (size_t c = 0; c < NCOL; c++) {
                        const char *cell = i == 0 ? head[c] : cells[i - 1][c];
                        if (c + 1 < NCOL)
                                printf("%-*s  ", (int)width[c], cell);
                        else
                                printf("%s\n", cell);
                }
        free(cells);
}

static void print_entry(const struct store_entry *e, const char *store_dir) {
        char size[32], created[32], added[32];
        format_bytes(e->size, size, sizeof(size));
        when(e->created, created, sizeof(created));
        when(e->added, added, sizeof(added));
        printf("id:       %" PRId64 "\n", e->id);
        printf("image:    %s:%s\n", e->name, e->version);
        printf("file:     %s (%s, %s, %" PRIu64 " bytes)\n", e->file, e->format, size, e->size);
        printf("build:    %s  arch %s  role %s\n", dash(e->build_id), dash(e->arch), dash(e->role));
        printf("created:  %s  (added %s)\n", created, added);
        printf("sha256:   %s\n", e->sha256);
        if (e->sha512[0])
                printf("sha512:   %s\n", e->sha512);
        printf("labels:  ");
        for (size_t k = 0; k < e->nlabels; k++)
                printf(" %s=%s", e->labels[k].key, e->labels[k].value);
        printf("%s\n", e->nlabels ? "" : " -");
        printf("blob:     %s/blobs/sha256/%.2s/%s\n", store_dir, e->sha256, e->sha256);
        printf("url path: /images/%s/%s/%s\n", e->name, e->version, e->file);
}

static bool all_digits(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }

static int fail(struct store *st, const char *what, int r) {
        const char *why = store_error(st);
        fprintf(stderr, "kiln: images %s: %s\n", what, *why ? why : strerror(-r));
        return r == -EINVAL || r == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
}

static void add_progress(void *userdata, const struct store_entry *e, bool already,
                         uint64_t elapsed_ms) {
        const struct images_args *a = userdata;
        if (a->json)
                return;
        char size[32];
        format_bytes(e->size, size, sizeof(size));
        printf("%-7s %s:%s  %-6s %s  %s  sha256 %.16s  id %" PRId64 "  %.1fs\n",
               already ? "present" : "stored", e->name, e->version, e->format, e->file, size,
               e->sha256, e->id, (double)elapsed_ms / 1000.0);
        fflush(stdout);
}

static int do_add(struct store *st, struct images_args *a) {
        static const int allowed[] = {I_JSON, I_NAME, I_VERSION, I_ARCH, I_ROLE, I_BUILD_ID,
                                      I_FORMAT, I_LABEL, I_COPY, I_SHA512, 0};
        if (only_options(a, allowed) < 0)
                return EXIT_USAGE;
        if (!a->nargs) {
                cli_usage_error("images", "add needs OUTPUT_DIR... or --name NAME FILE...");
                return EXIT_USAGE;
        }
        struct store_add_options o = {
                .name = a->name, .version = a->version, .build_id = a->build_id,
                .arch = a->arch, .role = a->role, .format = a->format,
                .labels = a->labels, .nlabels = a->nlabels,
                .flags = (a->copy ? STORE_ADD_COPY : 0) | (a->sha512 ? STORE_ADD_SHA512 : 0),
                .progress = add_progress, .userdata = a,
        };
        /* Folders are builds (one add each); plain files are one version. */
        const char **files = xcalloc(a->nargs + 1, sizeof(*files));
        size_t nfiles = 0, ndirs = 0;
        for (size_t i = 0; i < a->nargs; i++) {
                struct stat s;
                if (stat(a->args[i], &s) < 0) {
                        fprintf(stderr, "kiln: images add: %s: %s\n", a->args[i], strerror(errno));
                        free(files);
                        return EXIT_USAGE;
                }
                if (S_ISDIR(s.st_mode))
                        ndirs++;
                else
                        files[nfiles++] = a->args[i];
        }
        if (ndirs && nfiles) {
                free(files);
                cli_usage_error("images", "add takes output folders or files, not both");
                return EXIT_USAGE;
        }
        if (ndirs && a->format) {
                free(files);
                cli_usage_error("images", "--format is for bare files (a manifest names each "
                                          "file's format)");
                return EXIT_USAGE;
        }
        if (ndirs > 1 && (a->name || a->version)) {
                free(files);
                cli_usage_error("images", "--name/--version apply to one build: add one folder");
                return EXIT_USAGE;
        }
        if (nfiles && !a->name) {
                free(files);
                cli_usage_error("images", "bare files need --name NAME (and --format when "
                                          "their extension does not tell)");
                return EXIT_USAGE;
        }
        struct store_entry *all = NULL;
        size_t nall = 0;
        int ret = EXIT_OK;
        for (size_t i = 0; i < (ndirs ? ndirs : 1); i++) {
                struct store_entry *v = NULL;
                size_t n = 0;
                int r = ndirs ? store_add_output_dir(st, a->args[i], &o, &v, &n)
                              : store_add_files(st, files, nfiles, &o, &v, &n);
                if (r < 0) {
                        ret = fail(st, "add", r);
                        break;
                }
                all = xreallocarray(all, nall + n + 1, sizeof(*all));
                memcpy(all + nall, v, n * sizeof(*v));
                nall += n;
                free(v);
        }
        free(files);
        if (a->json && ret == EXIT_OK)
                entries_json_doc("entries", all, nall, NULL, 0);
        store_entries_free(all, nall);
        return ret;
}

static int make_filter(const struct images_args *a, struct store_filter *f) {
        *f = (struct store_filter){
                .name = a->name, .version = a->version, .arch = a->arch, .role = a->role,
                .format = a->format, .labels = a->labels, .nlabels = a->nlabels,
        };
        return 0;
}

static int do_list(struct store *st, struct images_args *a) {
        static const int allowed[] = {I_JSON, I_NAME, I_VERSION, I_ARCH, I_ROLE, I_FORMAT,
                                      I_LABEL, 0};
        if (only_options(a, allowed) < 0)
                return EXIT_USAGE;
        if (a->nargs) {
                cli_usage_error("images", "list takes no arguments (filters: --name, --label, ...)");
                return EXIT_USAGE;
        }
        struct store_filter f;
        make_filter(a, &f);
        struct store_entry *v = NULL;
        size_t n = 0;
        int r = store_list(st, &f, &v, &n);
        if (r < 0)
                return fail(st, "list", r);
        if (a->json) {
                entries_json_doc("images", v, n, NULL, 0);
        } else if (n) {
                print_table(v, n);
        } else {
                printf("no images in %s%s\n", store_dir(st),
                       a->name || a->version || a->arch || a->role || a->format || a->nlabels
                               ? " match" : "");
        }
        store_entries_free(v, n);
        return EXIT_OK;
}

/* ID or NAME[:VERSION] -> entries. */
static int lookup(struct store *st, const char *ref, struct store_entry **ret, size_t *ret_n) {
        if (all_digits(ref)) {
                struct store_entry e;
                int r = store_get(st, strtoll(ref, NULL, 10), &e);
                if (r < 0)
                        return r;
                *ret = xmalloc(sizeof(e));
                **ret = e;
                *ret_n = 1;
                return 0;
        }
        return store_resolve(st, ref, ret, ret_n);
}

static int do_show(struct store *st, struct images_args *a) {
        static const int allowed[] = {I_JSON, 0};
        if (only_options(a, allowed) < 0)
                return EXIT_USAGE;
        if (a->nargs != 1) {
                cli_usage_error("images", "show takes one ID or NAME[:VERSION]");
                return EXIT_USAGE;
        }
        struct store_entry *v = NULL;
        size_t n = 0;
        int r = lookup(st, a->args[0], &v, &n);
        if (r < 0)
                return fail(st, "show", r);
        if (a->json)
                entries_json_doc("entries", v, n, NULL, 0);
        else
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                putchar('\n');
                        print_entry(&v[i], store_dir(st));
                }
        store_entries_free(v, n);
        return EXIT_OK;
}

static int do_rm(struct store *st, struct images_args *a) {
        static const int allowed[] = {I_JSON, 0};
        if (only_options(a, allowed) < 0)
                return EXIT_USAGE;
        if (!a->nargs) {
                cli_usage_error("images", "rm needs ID... or NAME:VERSION...");
                return EXIT_USAGE;
        }
        int64_t *ids = NULL;
        size_t nids = 0;
        for (size_t i = 0; i < a->nargs; i++) {
                const char *ref = a->args[i];
                if (!all_digits(ref) && !strchr(ref, ':')) {
                        free(ids);
                        cli_usage_error("images", "rm: '%s': give an ID or NAME:VERSION (a bare "
                                                  "name would pick its newest version)", ref);
                        return EXIT_USAGE;
                }
                struct store_entry *v = NULL;
                size_t n = 0;
                int r = lookup(st, ref, &v, &n);
                if (r < 0) {
                        free(ids);
                        return fail(st, "rm", r);
                }
                ids = xreallocarray(ids, nids + n + 1, sizeof(*ids));
                for (size_t k = 0; k < n; k++)
                        ids[nids++] = v[k].id;
                store_entries_free(v, n);
        }
        size_t blobs = 0;
        uint64_t freed = 0;
        int r = store_remove(st, ids, nids, &blobs, &freed);
        free(ids);
        if (r < 0)
                return fail(st, "rm", r);
        if (a->json) {
                printf("{\"removed\": %zu, \"blobs_removed\": %zu, \"freed\": %" PRIu64 "}\n", nids,
                       blobs, freed);
        } else {
                char h[32];
                format_bytes(freed, h, sizeof(h));
                printf("removed %zu entr%s; %zu blob%s freed (%s)\n", nids, nids == 1 ? "y" : "ies",
                       blobs, blobs == 1 ? "" : "s", h);
        }
        return EXIT_OK;
}

static int do_prune(struct store *st, struct images_args *a) {
        static const int allowed[] = {I_JSON, I_NAME, I_ARCH, I_ROLE, I_FORMAT, I_LABEL, I_KEEP,
                                      I_DRY_RUN, 0};
        if (only_options(a, allowed) < 0)
                return EXIT_USAGE;
        if (!a->keep || !all_digits(a->keep) || strlen(a->keep) > 6) {
                cli_usage_error("images", "prune needs --keep N (a whole number of versions)");
                return EXIT_USAGE;
        }
        if (a->nargs) {
                cli_usage_error("images", "prune takes no arguments");
                return EXIT_USAGE;
        }
        struct store_filter f;
        make_filter(a, &f);
        struct store_entry *v = NULL;
        size_t n = 0;
        uint64_t freed = 0;
        int r = store_prune(st, &f, (unsigned)atoi(a->keep), a->dry_run, &v, &n, &freed);
        if (r < 0)
                return fail(st, "prune", r);
        if (a->json) {
                entries_json_doc(a->dry_run ? "would_remove" : "removed", v, n, "freed",
                                 (int64_t)freed);
        } else {
                for (size_t i = 0; i < n; i++)
                        printf("%s %s:%s  %s  (id %" PRId64 ")\n",
                               a->dry_run ? "would remove" : "removed", v[i].name, v[i].version,
                               v[i].file, v[i].id);
                char h[32];
                format_bytes(freed, h, sizeof(h));
                printf("%s%zu entr%s, %s %s\n", a->dry_run ? "dry run: " : "", n,
                       n == 1 ? "y" : "ies", h, a->dry_run ? "would be freed" : "freed");
        }
        store_entries_free(v, n);
        return EXIT_OK;
}

static int images_verb_run(struct cli *cli, int argc, char **argv) {
        struct images_args a = {0};
        int r = parse_args(&a, argc, argv);
        if (r != 0) {
                images_args_done(&a);
                return r > 0 ? EXIT_OK : EXIT_USAGE;
        }
        static const struct {
                const char *name;
                int (*run)(struct store *st, struct images_args *a);
        } subs[] = {
                {"add", do_add}, {"list", do_list}, {"show", do_show},
                {"rm", do_rm}, {"prune", do_prune},
        };
        int (*run)(struct store *, struct images_args *) = NULL;
        for (size_t i = 0; a.sub && i < ARRAY_SIZE(subs); i++)
                if (streq(a.sub, subs[i].name))
                        run = subs[i].run;
        if (!run) {
                cli_usage_error("images", "expected add, list, show, rm or prune%s%s%s",
                                a.sub ? " (not '" : "", a.sub ? a.sub : "", a.sub ? "')" : "");
                images_args_done(&a);
                return EXIT_USAGE;
        }
        _cleanup_free_ char *dir = a.store ? xstrdup(a.store) : store_default_dir();
        struct store *st = NULL;
        r = store_open(dir, &st);
        if (r < 0) {
                fprintf(stderr, "kiln: images: cannot open the store %s: %s\n", dir,
                        r == -EPROTONOSUPPORT ? "its catalog was written by a newer kiln"
                                              : strerror(-r));
                images_args_done(&a);
                return EXIT_FAILED;
        }
        int ret = run(st, &a);
        store_close(st);
        images_args_done(&a);
        (void)cli;
        return ret;
}
