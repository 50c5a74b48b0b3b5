/* SPDX-License-Identifier: Apache-2.0 */
/* kiln cidata: write a cloud-init NoCloud seed ISO. */
#include "cli/cli.h"

#include "base/hash.h"
#include "base/strv.h"
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

enum {
        O_HELP = 1,
        O_OUTPUT,
        O_USER_DATA,
        O_META_DATA,
        O_NETWORK_CONFIG,
        O_VENDOR_DATA,
        O_HOSTNAME,
        O_INSTANCE_ID,
        O_USER,
        O_SSH_KEY,
        O_FILE,
};

#define EXTRA_FILES_MAX 4096

static const struct cli_option cidata_opts[] = {
        {"help", 'h', false, O_HELP},
        {"output", 'o', true, O_OUTPUT},
        {"user-data", 0, true, O_USER_DATA},
        {"meta-data", 0, true, O_META_DATA},
        {"network-config", 0, true, O_NETWORK_CONFIG},
        {"vendor-data", 0, true, O_VENDOR_DATA},
        {"hostname", 0, true, O_HOSTNAME},
        {"instance-id", 0, true, O_INSTANCE_ID},
        {"user", 0, true, O_USER},
        {"ssh-key", 0, true, O_SSH_KEY},
        {"file", 0, true, O_FILE},
        {NULL, 0, false, 0},
};

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

/* Adds the key lines of an OpenSSH public key file (blank lines and
 * #-comments skipped); prints and returns -errno when there is none or one
 * is not a public key. */
static int add_key_file(struct strv *keys, const char *path) {
        _cleanup_free_ char *text = NULL;
        int r = read_seed_file("ssh-key", path, &text);
        if (r < 0)
                return r;
        size_t before = keys->n, lineno = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                lineno++;
                size_t l = strlen(line);
                if (l && line[l - 1] == '\r')
                        line[--l] = 0;
                while (*line == ' ' || *line == '\t')
                        line++;
                if (!*line || *line == '#')
                        continue;
                if (cidata_check_ssh_key(line) < 0) {
                        fprintf(stderr, "kiln: cidata: --ssh-key %s:%zu: not an OpenSSH public key "
                                        "(expected 'ssh-ed25519 AAAA... comment'; is this the private key?)\n",
                                path, lineno);
                        return -EINVAL;
                }
                strv_add(keys, line);
        }
        if (keys->n == before) {
                fprintf(stderr, "kiln: cidata: --ssh-key %s: no public key in the file\n", path);
                return -EINVAL;
        }
        return 0;
}

static int cidata_verb_run(struct cli *cli, int argc, char **argv) {
        struct cli_parser p = {.opts = cidata_opts, .argc = argc, .argv = argv, .i = 1, .verb = "cidata"};
        const char *arg, *output = "seed.iso", *hostname = NULL, *instance_id = NULL, *user = NULL;
        const char *file[O_VENDOR_DATA + 1] = {0};
        const char *key_files[64];
        size_t nkey_files = 0;
        _cleanup_free_ struct iso9660_entry *extra = NULL;
        size_t nextra = 0, capextra = 0;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2: return EXIT_USAGE;
                case 0: cli_usage_error("cidata", "unexpected argument '%s'", arg); return EXIT_USAGE;
                case O_HELP: cli_print_verb_help(&verb_cidata, stdout); return EXIT_OK;
                case O_OUTPUT: output = arg; break;
                case O_USER_DATA:
                case O_META_DATA:
                case O_NETWORK_CONFIG:
                case O_VENDOR_DATA: file[id] = arg; break;
                case O_HOSTNAME: hostname = arg; break;
                case O_INSTANCE_ID: instance_id = arg; break;
                case O_USER: user = arg; break;
                case O_SSH_KEY:
                        if (nkey_files >= ARRAY_SIZE(key_files)) {
                                cli_usage_error("cidata", "at most %zu --ssh-key files", ARRAY_SIZE(key_files));
                                return EXIT_USAGE;
                        }
                        key_files[nkey_files++] = arg;
                        break;
                case O_FILE: {
                        const char *eq = strchr(arg, '=');
                        if (!eq || eq == arg || !eq[1]) {
                                cli_usage_error("cidata", "--file wants PATH=FILE (path on the ISO, host file), not '%s'", arg);
                                return EXIT_USAGE;
                        }
                        if (nextra >= EXTRA_FILES_MAX) {
                                cli_usage_error("cidata", "at most %d --file options", EXTRA_FILES_MAX);
                                return EXIT_USAGE;
                        }
                        struct stat st;
                        int se = stat(eq + 1, &st) < 0 ? errno : 0;
                        if (se || !S_ISREG(st.st_mode)) {
                                fprintf(stderr, "kiln: cidata: --file %s: %s\n", arg,
                                        se ? strerror(se) : "not a regular file");
                                return EXIT_USAGE;
                        }
                        GROW(extra, nextra, capextra);
                        /* The ISO path is the part before '=': argv is ours to
                         * cut, and the file name after it stays intact. */
                        *(char *)eq = 0;
                        extra[nextra++] = (struct iso9660_entry){
                                .path = arg,
                                .source = eq + 1,
                                .mode = st.st_mode & 0111 ? 0755 : 0644, /* executables stay so */
                        };
                        break;
                }
                }
        }
        if (!*output) {
                cli_usage_error("cidata", "--output needs a file name");
                return EXIT_USAGE;
        }
        if (file[O_USER_DATA] && (user || nkey_files)) {
                cli_usage_error("cidata", "--user-data cannot be combined with --user or --ssh-key "
                                          "(put the user and keys in your user-data)");
                return EXIT_USAGE;
        }
        if (file[O_META_DATA] && (hostname || instance_id)) {
                cli_usage_error("cidata", "--meta-data cannot be combined with --hostname or --instance-id "
                                          "(put them in your meta-data)");
                return EXIT_USAGE;
        }
        if (hostname && cidata_check_hostname(hostname) < 0) {
                cli_usage_error("cidata", "--hostname '%s' is not a valid host name (letters, digits and '-', "
                                          "dot-separated labels of at most 63)", hostname);
                return EXIT_USAGE;
        }
        if (instance_id && cidata_check_instance_id(instance_id) < 0) {
                cli_usage_error("cidata", "--instance-id '%s': use 1-64 letters, digits, '.', '_' or '-'",
                                instance_id);
                return EXIT_USAGE;
        }
        if (user && cidata_check_user(user) < 0) {
                cli_usage_error("cidata", "--user '%s' is not a valid user name (lower-case letters, digits, "
                                          "'_' and '-', starting with a letter or '_', at most 32)", user);
                return EXIT_USAGE;
        }

        static const char *const opt_name[] = {
                [O_USER_DATA] = "user-data",
                [O_META_DATA] = "meta-data",
                [O_NETWORK_CONFIG] = "network-config",
                [O_VENDOR_DATA] = "vendor-data",
        };
        char *text[O_VENDOR_DATA + 1] = {0}; /* freed at the end */
        int ret = EXIT_OK;
        for (int i = O_USER_DATA; i <= O_VENDOR_DATA && ret == EXIT_OK; i++)
                if (file[i] && read_seed_file(opt_name[i], file[i], &text[i]) < 0)
                        ret = EXIT_USAGE;
        struct strv keys = STRV_INIT;
        _cleanup_free_ char *gen_user = NULL, *gen_meta = NULL;
        for (size_t i = 0; i < nkey_files && ret == EXIT_OK; i++)
                if (add_key_file(&keys, key_files[i]) < 0)
                        ret = EXIT_USAGE;
        if (ret == EXIT_OK && !text[O_USER_DATA] &&
            cidata_user_data_new(user, (const char *const *)keys.v, keys.n, &gen_user) < 0)
                ret = EXIT_USAGE; /* unreachable: every value was checked above */
        const char *user_data = text[O_USER_DATA] ? text[O_USER_DATA] : gen_user;
        if (ret == EXIT_OK && !text[O_META_DATA]) {
                char iid[SHA256_HEX_LEN + 8] = "";
                if (!instance_id) {
                        _cleanup_free_ char *seed = xasprintf("%s%c%s", user_data, 0, hostname ? hostname : "");
                        char hex[SHA256_HEX_LEN + 1];
                        size_t seedlen = strlen(user_data) + 1 + (hostname ? strlen(hostname) : 0);
                        if (hash_sha256_hex(seed, seedlen, hex) < 0) {
                                fprintf(stderr, "kiln: cidata: cannot hash the instance id\n");
                                ret = EXIT_FAILED;
                        }
                        snprintf(iid, sizeof(iid), "iid-%.16s", hex);
                        instance_id = iid;
                }
                if (ret == EXIT_OK && cidata_meta_data_new(instance_id, hostname, &gen_meta) < 0)
                        ret = EXIT_USAGE;
        }
        if (ret == EXIT_OK) {
                struct cidata c = {
                        .user_data = user_data,
                        .meta_data = text[O_META_DATA] ? text[O_META_DATA] : gen_meta,
                        .network_config = text[O_NETWORK_CONFIG],
                        .vendor_data = text[O_VENDOR_DATA],
                };
                size_t bad = SIZE_MAX;
                int r = cidata_write_extra(output, &c, extra, nextra, spec_now(), &bad);
                if (r < 0 && bad != SIZE_MAX && (r == -EINVAL || r == -E2BIG || r == -EEXIST)) {
                        fprintf(stderr, "kiln: cidata: --file %s=%s: %s\n", extra[bad].path, extra[bad].source,
                                r == -EINVAL ? "not a valid path on the ISO (relative, '/'-separated; no "
                                               "'.', '..', ';', ':', '*', '?' or '\\' components)"
                                : r == -E2BIG ? "over the ISO limits (64 characters per name, 255 per path, "
                                                "8 directory levels)"
                                              : "the path is given twice, is a seed file, or is also a directory");
                        ret = EXIT_USAGE;
                } else if (r < 0 && bad != SIZE_MAX) {
                        fprintf(stderr, "kiln: cidata: --file %s=%s: %s\n", extra[bad].path, extra[bad].source,
                                strerror(-r));
                        ret = EXIT_FAILED;
                } else if (r < 0) {
                        fprintf(stderr, "kiln: cidata: cannot write %s: %s\n", output,
                                r == -E2BIG ? "a seed file is too large" : strerror(-r));
                        ret = EXIT_FAILED;
                } else {
                        struct stat st;
                        char h[32] = "?";
                        if (stat(output, &st) == 0)
                                format_bytes((unsigned long long)st.st_size, h, sizeof(h));
                        printf("wrote %s (%s, label cidata): meta-data%s, user-data%s\n", output, h,
                               c.network_config ? ", network-config" : "", c.vendor_data ? ", vendor-data" : "");
                }
        }
        strv_free(&keys);
        for (int i = O_USER_DATA; i <= O_VENDOR_DATA; i++)
                free(text[i]);
        return ret;
}
