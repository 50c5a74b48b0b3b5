/* SPDX-License-Identifier: Apache-2.0 */
/* kiln serve-images: the local image store over HTTP until SIGINT/SIGTERM. */
#include "cli/cli.h"

#include "store/store.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#define STR_(x) #x
#define STR(x) STR_(x)
/* Descriptors the server needs besides its connections (listening socket,
 * epoll, the catalog, blobs being opened, stdio). */
#define SERVE_SPARE_FDS 64

static int serve_images_run(struct cli *cli, int argc, char **argv);

const struct verb verb_serve_images = {
        .name = "serve-images",
        .summary = "Serve the local image store over HTTP",
        .usage = "kiln serve-images [--listen HOST:PORT] [--store DIR] [--max-connections N]\n"
                 "                         [--max-per-client N] [--idle-timeout SECONDS] [--quiet]",
        .help = "Serves the store read-only until SIGINT or SIGTERM; prints the URL first.\n"
                "\n"
                "  GET /images                      the catalog as JSON (as images list --json)\n"
                "  GET /images/NAME/VERSION/FILE    a file; VERSION may be 'latest'\n"
                "  GET /blobs/sha256/HEX            a file by its SHA-256\n"
                "\n"
                "Files support HEAD, Range (one range: 206; 416 when unsatisfiable; another\n"
                "unit, invalid syntax or several ranges: the whole file), ETag (the SHA-256)\n"
                "with If-None-Match (304) and If-Range, and carry Content-Length,\n"
                "X-Checksum-Sha256 and Digest: sha-256=BASE64. Only catalogued names and\n"
                "digests resolve; nothing else on disk is reachable. A path with a malformed\n"
                "%-escape or one that decodes to a control character or NUL gets 400.\n"
                "\n"
                "Options:\n"
                "  --listen ADDR   HOST:PORT, [IPV6]:PORT or PORT (default 127.0.0.1:8080;\n"
                "                  port 0 picks a free port)\n"
                "  --store DIR     the store (default $KILN_STORE_DIR, $XDG_DATA_HOME/kiln/store\n"
                "                  or ~/.local/share/kiln/store)\n"
                "  --max-connections N   connections at once, in total (default " STR(STORE_SERVE_MAX_CONNECTIONS) ")\n"
                "  --max-per-client N    connections at once from one client address\n"
                "                        (default " STR(STORE_SERVE_MAX_PER_CLIENT) "): one client cannot lock others out\n"
                "  --idle-timeout SECONDS  close a connection idle that long (default " STR(STORE_SERVE_IDLE_TIMEOUT_S) ")\n"
                "  --quiet         no access log on stderr (lines: TIME CLIENT METHOD PATH\n"
                "                  STATUS BYTES, the path as sent, unprintable bytes as \\xHH)\n",
        .run = serve_images_run,
};

enum { S_HELP = 1, S_LISTEN, S_STORE, S_QUIET, S_MAX_CONN, S_MAX_PER_CLIENT, S_IDLE };

static const struct cli_option serve_opts[] = {
        {"help", 'h', false, S_HELP},
        {"listen", 0, true, S_LISTEN},
        {"store", 0, true, S_STORE},
        {"quiet", 'q', false, S_QUIET},
        {"max-connections", 0, true, S_MAX_CONN},
        {"max-per-client", 0, true, S_MAX_PER_CLIENT},
        {"idle-timeout", 0, true, S_IDLE},
        {NULL, 0, false, 0},
};

static void access_log(void *userdata, const char *line) {
        char when[32];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(stderr, "%s %s\n", when, line);
}

/* A positive decimal number up to max into *ret; prints the usage error. */
static bool parse_limit(const char *opt, const char *arg, unsigned max, unsigned *ret) {
        char *end = NULL;
        errno = 0;
        unsigned long v = arg[0] >= '0' && arg[0] <= '9' ? strtoul(arg, &end, 10) : 0;
        if (errno || !end || *end || v == 0 || v > max) {
                cli_usage_error("serve-images", "%s wants a whole number from 1 to %u, not '%s'",
                                opt, max, arg);
                return false;
        }
        *ret = (unsigned)v;
        return true;
}

/* Raises the soft open-file limit to what max_connections needs (up to the
 * hard limit); -EMFILE with *ret_max set when the hard limit is too low. */
static int ensure_fds(unsigned max_connections, unsigned long *ret_max) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        rlim_t need = (rlim_t)max_connections + SERVE_SPARE_FDS;
        if (rl.rlim_cur >= need)
                return 0;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
                *ret_max = (unsigned long)rl.rlim_max;
                return -EMFILE;
        }
        rl.rlim_cur = need;
        return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

static int serve_images_run(struct cli *cli, int argc, char **argv) {
        struct cli_parser p = {.opts = serve_opts, .argc = argc, .argv = argv, .i = 1,
                               .verb = "serve-images"};
        const char *arg, *listen = "127.0.0.1:8080", *store = NULL;
        bool quiet = false;
        struct store_serve_options lim = {
                .max_connections = STORE_SERVE_MAX_CONNECTIONS,
                .max_per_client = STORE_SERVE_MAX_PER_CLIENT,
                .idle_timeout_s = STORE_SERVE_IDLE_TIMEOUT_S,
        };
        bool per_client_set = false;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2: return EXIT_USAGE;
                case 0: cli_usage_error("serve-images", "unexpected argument '%s'", arg); return EXIT_USAGE;
                case S_HELP: cli_print_verb_help(&verb_serve_images, stdout); return EXIT_OK;
                case S_LISTEN: listen = arg; break;
                case S_STORE: store = arg; break;
                case S_QUIET: quiet = true; break;
                case S_MAX_CONN:
                        if (!parse_limit("--max-connections", arg, STORE_SERVE_MAX_CONNECTIONS_LIMIT,
                                         &lim.max_connections))
                                return EXIT_USAGE;
                        break;
                case S_MAX_PER_CLIENT:
                        if (!parse_limit("--max-per-client", arg, STORE_SERVE_MAX_CONNECTIONS_LIMIT,
                                         &lim.max_per_client))
                                return EXIT_USAGE;
                        per_client_set = true;
                        break;
                case S_IDLE:
                        if (!parse_limit("--idle-timeout", arg, STORE_SERVE_IDLE_TIMEOUT_LIMIT_S,
                                         &lim.idle_timeout_s))
                                return EXIT_USAGE;
                        break;
                }
        }
        if (lim.max_per_client > lim.max_connections) {
                if (per_client_set) {
                        cli_usage_error("serve-images", "--max-per-client %u is above --max-connections %u",
                                        lim.max_per_client, lim.max_connections);
                        return EXIT_USAGE;
                }
                lim.max_per_client = lim.max_connections;
        }
        unsigned long fd_max = 0;
        int fr = ensure_fds(lim.max_connections, &fd_max);
        if (fr == -EMFILE) {
                fprintf(stderr,
                        "kiln: serve-images: --max-connections %u needs %u open files, the hard "
                        "limit is %lu (ulimit -n)\n",
                        lim.max_connections, lim.max_connections + SERVE_SPARE_FDS, fd_max);
                return EXIT_FAILED;
        }
        if (fr < 0) {
                fprintf(stderr, "kiln: serve-images: cannot raise the open-file limit: %s\n",
                        strerror(-fr));
                return EXIT_FAILED;
        }
        _cleanup_free_ char *dir = store ? xstrdup(store) : store_default_dir();
        struct store *st = NULL;
        int r = store_open(dir, &st);
        if (r < 0) {
                fprintf(stderr, "kiln: serve-images: cannot open the store %s: %s\n", dir,
                        strerror(-r));
                return EXIT_FAILED;
        }
        /* Blocked before the server's thread starts, so that it inherits the
         * mask and the signals come to sigwait here. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        struct store_server *srv = NULL;
        r = store_serve_start(st, listen, &lim, quiet ? NULL : access_log, NULL, &srv);
        if (r < 0) {
                if (r == -EINVAL)
                        cli_usage_error("serve-images", "--listen '%s' is not HOST:PORT", listen);
                else
                        fprintf(stderr, "kiln: serve-images: cannot listen on %s: %s\n", listen,
                                strerror(-r));
                store_close(st);
                return r == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
        }
        printf("serving %s on %s\n", store_dir(st), store_server_url(srv));
        fflush(stdout);
        int sig = 0;
        while (sigwait(&set, &sig) != 0)
                ;
        store_serve_stop(srv);
        store_close(st);
        fprintf(stderr, "kiln: serve-images: stopped (%s)\n", strsignal(sig));
        (void)cli;
        return EXIT_OK;
}
