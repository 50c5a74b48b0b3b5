/* SPDX-License-Identifier: Apache-2.0 */
/* kiln cidata: write a cloud-init NoCloud seed ISO. */
#include "cli/cli.h"

#include "vm/cidata.h"
#include "vm/iso9660.h"

#include <sys/stat.h>

static int cidata_verb_run(struct cli *cli, int argc, char **argv);

const struct verb verb_cidata = {
        .name = "cidata",
        .summary = "Write a cloud-init NoCloud seed ISO",
        .usage = "kiln cidata [-o FILE] [--user-data FILE] [--meta-data FILE] [options]",
        .help = "Writes an ISO 9660 image labelled 'cidata' (Rock Ridge and Joliet names)\n"
                "holding user-data, meta-data and optionally network-config and\n"
                "vendor-data in its root: the NoCloud seed cloud-init reads at first boot.\n"
                "Attach it to a VM as a CD-ROM or disk. kiln writes the ISO itself.\n"
                "\n"
                "Options:\n"
                "  -o, --output FILE        the ISO to write (default: seed.iso); written to a\n"
                "                           temporary file and renamed, never half-written\n"
                "  --user-data FILE         user-data as is (e.g. a #cloud-config document)\n"
                "  --meta-data FILE         meta-data as is\n"
                "  --network-config FILE    network-config (netplan-style v1/v2 YAML), optional\n"
                "  --vendor-data FILE       vendor-data, optional\n"
                "\n"
                "Generating the files instead (cannot be combined with the file given as is):\n"
                "  --hostname NAME          meta-data gets local-hostname: NAME\n"
                "  --instance-id ID         meta-data's instance-id (default: iid-<hash of the\n"
                "                           user-data and host name>, so a new seed re-runs\n"
                "                           cloud-init's per-instance modules)\n"
                "  --user NAME              user-data creates user NAME (passwordless sudo,\n"
                "                           /bin/bash, password locked) with the --ssh-key keys\n"
                "  --ssh-key FILE           an OpenSSH public key file (e.g. ~/.ssh/id_ed25519.pub;\n"
                "                           every key line is used); repeatable. Without --user\n"
                "                           the keys go to the image's default user\n"
                "\n"
                "Extra files:\n"
                "  --file PATH=FILE         also put host FILE on the ISO at PATH (e.g.\n"
                "                           scripts/setup.sh=./setup.sh; directories are made as\n"
                "                           needed); mode 0755 when FILE is executable, else\n"
                "                           0644; repeatable. cloud-init ignores these files\n"
                "\n"
                "Without --user-data, user-data is a generated #cloud-config (empty when no\n"
                "--user or --ssh-key is given); without --meta-data, meta-data holds the\n"
                "instance-id and, with --hostname, local-hostname.\n"
                "\n"
                "Every date in the ISO is SOURCE_DATE_EPOCH when set (else now): with it the\n"
                "same inputs give the same bytes. Files may be at most 16 MiB of text.\n"
                "Inspect the result with: isoinfo -d -i FILE; isoinfo -J -l -i FILE\n"
                "\n"
                "Exit codes: 0 written, 1 the ISO could not be written, 2 usage error or an\n"
                "input file that cannot be read or is not valid.\n",
        .run = cidata_verb_run,
};

#define EXTRA_FILES_MAX 4096
#define KEY_FILES_MAX 64

/* Reads a seed file given with --OPT; prints why it cannot and returns
 * -errno. The seed API carries text, so NUL bytes are refused. */
static int read_seed_file(const char *opt, const char *path, char **ret) {
        size_t len = 0;
        char *buf = NULL;
        struct stat st;
        int r = stat(path, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
        if (r >= 0)
                r = read_file(path, CIDATA_FILE_MAX, &buf, &len);
        if (r == -E2BIG) {
                fprintf(stderr, "kiln: cidata: --%s %s: larger than %u MiB\n", opt, path, CIDATA_FILE_MAX >> 20);
                return r;
        }
        if (r < 0) {
                fprintf(stderr, "kiln: cidata: cannot read --%s %s: %s\n", opt, path, strerror(-r));
                return r;
        }
        if (strlen(buf) != len) {
                fprintf(stderr, "kiln: cidata: --%s %s: contains NUL bytes (binary seed files are not supported)\n",
                        opt, path);
                free(buf);
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

/* What kiln cidata was asked to write. */
struct cidata_args {
        const char *output;
        const char *file[4];          /* user-data, meta-data, network-config, vendor-data */
        const char *hostname, *instance_id, *user;
        const char *key_files[KEY_FILES_MAX];
        size_t nkey_files;
        struct iso9660_entry *extra;  /* --file PATH=FILE; owned array */
        size_t nextra, capextra;
};

/* The order of cidata_args.file, and its options' names. */
enum { F_USER_DATA, F_META_DATA, F_NETWORK_CONFIG, F_VENDOR_DATA, F_N };
static const char *const file_opt[F_N] = {"user-data", "meta-data", "network-config", "vendor-data"};

static int take_key_file(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct cidata_args *a = o->value;
        if (a->nkey_files >= KEY_FILES_MAX)
                return cli_usage_error(verb, "at most %d --ssh-key files", KEY_FILES_MAX);
        a->key_files[a->nkey_files++] = arg;
        return 0;
}

/* --file PATH=FILE: FILE must be a regular file now. */
static int take_extra(const struct cli_opt *o, const char *verb, const char *arg, int argi) {
        struct cidata_args *a = o->value;
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1])
                return cli_usage_error(verb, "--file wants PATH=FILE (path on the ISO, host file), not '%s'", arg);
        if (a->nextra >= EXTRA_FILES_MAX)
                return cli_usage_error(verb, "at most %d --file options", EXTRA_FILES_MAX);
        struct stat st;
        int se = stat(eq + 1, &st) < 0 ? errno : 0;
        if (se || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "kiln: cidata: --file %s: %s\n", arg, se ? strerror(se) : "not a regular file");
                return -EINVAL;
        }
        GROW(a->extra, a->nextra, a->capextra);
        /* The ISO path is the part before '=': argv is ours to cut, and the
         * file name after it stays intact. */
        *(char *)eq = 0;
        a->extra[a->nextra++] = (struct iso9660_entry){
                .path = arg,
                .source = eq + 1,
                .mode = st.st_mode & 0111 ? 0755 : 0644, /* executables stay so */
        };
        return 0;
}

/* The options that cannot go together or are not valid values. */
static int check_args(const struct cidata_args *a) {
        if (!*a->output)
                return cli_usage_error("cidata", "--output needs a file name");
        if (a->file[F_USER_DATA] && (a->user || a->nkey_files))
                return cli_usage_error("cidata", "--user-data cannot be combined with --user or --ssh-key "
                                                 "(put the user and keys in your user-data)");
        if (a->file[F_META_DATA] && (a->hostname || a->instance_id))
                return cli_usage_error("cidata", "--meta-data cannot be combined with --hostname or --instance-id "
                                                 "(put them in your meta-data)");
        if (a->hostname && cidata_check_hostname(a->hostname) < 0)
                return cli_usage_error("cidata", "--hostname '%s' is not a valid host name (letters, digits and '-', "
                                                 "dot-separated labels of at most 63)", a->hostname);
        if (a->instance_id && cidata_check_instance_id(a->instance_id) < 0)
                return cli_usage_error("cidata", "--instance-id '%s': use 1-64 letters, digits, '.', '_' or '-'",
                                       a->instance_id);
        if (a->user && cidata_check_user(a->user) < 0)
                return cli_usage_error("cidata", "--user '%s' is not a valid user name (lower-case letters, digits, "
                                                 "'_' and '-', starting with a letter or '_', at most 32)", a->user);
        return 0;
}

/* Parses argv into *a. True when the verb goes on; else *ret_exit. */
static bool parse_args(struct cidata_args *a, int argc, char **argv, int *ret_exit) {
        const struct cli_opt opts[] = {
                CLI_OPT_HELP(),
                CLI_OPT_STRING("output", 'o', &a->output),
                CLI_OPT_STRING("user-data", 0, &a->file[F_USER_DATA]),
                CLI_OPT_STRING("meta-data", 0, &a->file[F_META_DATA]),
                CLI_OPT_STRING("network-config", 0, &a->file[F_NETWORK_CONFIG]),
                CLI_OPT_STRING("vendor-data", 0, &a->file[F_VENDOR_DATA]),
                CLI_OPT_STRING("hostname", 0, &a->hostname),
                CLI_OPT_STRING("instance-id", 0, &a->instance_id),
                CLI_OPT_STRING("user", 0, &a->user),
                CLI_OPT_CALLBACK("ssh-key", 0, a, true, take_key_file),
                CLI_OPT_CALLBACK("file", 0, a, true, take_extra),
                CLI_OPT_END(),
        };
        int r = cli_parse_options(&verb_cidata, opts, argc, argv);
        if (r == 0)
                r = check_args(a);
        *ret_exit = cli_parse_exit(r);
        return r == 0;
}

/* Reads the seed files and key files given into text and keys; prints
 * what is wrong and returns -errno. */
static int read_inputs(const struct cidata_args *a, char *text[F_N], char ***keys, size_t *nkeys) {
        for (int i = 0; i < F_N; i++)
                if (a->file[i] && read_seed_file(file_opt[i], a->file[i], &text[i]) < 0)
                        return -EINVAL;
        for (size_t i = 0; i < a->nkey_files; i++) {
                _cleanup_free_ char *t = NULL;
                size_t line = 0;
                const char *path = a->key_files[i];
                int r = read_seed_file("ssh-key", path, &t);
                if (r >= 0)
                        r = cidata_ssh_keys_parse(t, keys, nkeys, &line);
                if (r == -EINVAL && line)
                        fprintf(stderr, "kiln: cidata: --ssh-key %s:%zu: not an OpenSSH public key "
                                        "(expected 'ssh-ed25519 AAAA... comment'; is this the private key?)\n",
                                path, line);
                else if (r == -ENODATA)
                        fprintf(stderr, "kiln: cidata: --ssh-key %s: no public key in the file\n", path);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Writes the seed; prints the outcome and returns the exit code. */
static int write_seed(const struct cidata_args *a, const struct cidata *c) {
        size_t bad = SIZE_MAX;
        int r = cidata_write_extra(a->output, c, a->extra, a->nextra, spec_now(), &bad);
        if (r < 0 && bad != SIZE_MAX) {
                bool usage = r == -EINVAL || r == -E2BIG || r == -EEXIST;
                fprintf(stderr, "kiln: cidata: --file %s=%s: %s\n", a->extra[bad].path, a->extra[bad].source,
                        r == -EINVAL ? "not a valid path on the ISO (relative, '/'-separated; no "
                                       "'.', '..', ';', ':', '*', '?' or '\\' components)"
                        : r == -E2BIG ? "over the ISO limits (64 characters per name, 255 per path, "
                                        "8 directory levels)"
                        : r == -EEXIST ? "the path is given twice, is a seed file, or is also a directory"
                                       : strerror(-r));
                return usage ? EXIT_USAGE : EXIT_FAILED;
        }
        if (r < 0) {
                fprintf(stderr, "kiln: cidata: cannot write %s: %s\n", a->output,
                        r == -E2BIG ? "a seed file is too large" : strerror(-r));
                return EXIT_FAILED;
        }
        struct stat st;
        char h[32] = "?";
        if (stat(a->output, &st) == 0)
                format_bytes((unsigned long long)st.st_size, h, sizeof(h));
        printf("wrote %s (%s, label cidata): meta-data%s, user-data%s\n", a->output, h,
               c->network_config ? ", network-config" : "", c->vendor_data ? ", vendor-data" : "");
        return EXIT_OK;
}

static int cidata_verb_run(struct cli *cli, int argc, char **argv) {
        struct cidata_args a = {.output = "seed.iso"};
        int ret;
        if (!parse_args(&a, argc, argv, &ret)) {
                free(a.extra);
                return ret;
        }
        char *text[F_N] = {0};
        char **keys = NULL;
        size_t nkeys = 0;
        struct cidata_seed seed = {0};
        ret = EXIT_USAGE;
        if (read_inputs(&a, text, &keys, &nkeys) >= 0) {
                struct cidata_parts parts = {
                        .given = {text[F_USER_DATA], text[F_META_DATA], text[F_NETWORK_CONFIG],
                                  text[F_VENDOR_DATA]},
                        .user = a.user,
                        .keys = (const char *const *)keys,
                        .nkeys = nkeys,
                        .hostname = a.hostname,
                        .instance_id = a.instance_id,
                };
                /* -EINVAL is unreachable: every value was checked above */
                int r = cidata_seed_make(&parts, &seed);
                if (r < 0 && r != -EINVAL)
                        fprintf(stderr, "kiln: cidata: cannot hash the instance id\n");
                ret = r == 0 ? write_seed(&a, &seed.files) : r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        }
        cidata_seed_done(&seed);
        for (size_t i = 0; i < nkeys; i++)
                free(keys[i]);
        free(keys);
        for (int i = 0; i < F_N; i++)
                free(text[i]);
        free(a.extra);
        return ret;
}
