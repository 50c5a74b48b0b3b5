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

static void access_log(void *userdata, const char *line) {
        char when[32];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(stderr, "%s %s\n", when, line);
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

/* What kiln serve-images was asked for. */
struct serve_args {
        const char *listen, *store;
        bool quiet;
        struct store_serve_options lim;
};

/* Parses argv into *a. True when the verb goes on; else *ret_exit. */
static bool parse_args(struct serve_args *a, int argc, char **argv, int *ret_exit) {
        const struct cli_opt opts[] = {
                CLI_OPT_HELP(),
                CLI_OPT_STRING("listen", 0, &a->listen),
                CLI_OPT_STRING("store", 0, &a->store),
                CLI_OPT_FLAG("quiet", 'q', &a->quiet),
                CLI_OPT_UINT("max-connections", 0, &a->lim.max_connections, 1, STORE_SERVE_MAX_CONNECTIONS_LIMIT,
                             "--max-connections wants a whole number from 1 to " STR(STORE_SERVE_MAX_CONNECTIONS_LIMIT)),
                CLI_OPT_UINT("max-per-client", 0, &a->lim.max_per_client, 1, STORE_SERVE_MAX_CONNECTIONS_LIMIT,
                             "--max-per-client wants a whole number from 1 to " STR(STORE_SERVE_MAX_CONNECTIONS_LIMIT)),
                CLI_OPT_UINT("idle-timeout", 0, &a->lim.idle_timeout_s, 1, STORE_SERVE_IDLE_TIMEOUT_LIMIT_S,
                             "--idle-timeout wants a whole number from 1 to " STR(STORE_SERVE_IDLE_TIMEOUT_LIMIT_S)),
                CLI_OPT_END(),
        };
        int r = cli_parse_options(&verb_serve_images, opts, argc, argv);
        *ret_exit = cli_parse_exit(r);
        if (r != 0)
                return false;
        if (a->lim.max_per_client > a->lim.max_connections) {
                cli_usage_error("serve-images", "--max-per-client %u is above --max-connections %u",
                                a->lim.max_per_client, a->lim.max_connections);
                return false;
        }
        /* Not given (0): the default, but never above --max-connections. */
        if (!a->lim.max_per_client)
                a->lim.max_per_client = a->lim.max_connections < STORE_SERVE_MAX_PER_CLIENT
                                                ? a->lim.max_connections
                                                : STORE_SERVE_MAX_PER_CLIENT;
        return true;
}

/* Makes room for the connections; prints why not and returns -errno. */
static int make_room(unsigned max_connections) {
        unsigned long fd_max = 0;
        int r = ensure_fds(max_connections, &fd_max);
        if (r == -EMFILE)
                fprintf(stderr,
                        "kiln: serve-images: --max-connections %u needs %u open files, the hard "
                        "limit is %lu (ulimit -n)\n",
                        max_connections, max_connections + SERVE_SPARE_FDS, fd_max);
        else if (r < 0)
                fprintf(stderr, "kiln: serve-images: cannot raise the open-file limit: %s\n", strerror(-r));
        return r;
}

static int serve_images_run(struct cli *cli, int argc, char **argv) {
        struct serve_args a = {
                .listen = "127.0.0.1:8080",
                .lim = {.max_connections = STORE_SERVE_MAX_CONNECTIONS,
                        .idle_timeout_s = STORE_SERVE_IDLE_TIMEOUT_S},
        };
        int ret;
        if (!parse_args(&a, argc, argv, &ret))
                return ret;
        if (make_room(a.lim.max_connections) < 0)
                return EXIT_FAILED;
        _cleanup_free_ char *dir = a.store ? xstrdup(a.store) : store_default_dir();
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
        r = store_serve_start(st, a.listen, &a.lim, a.quiet ? NULL : access_log, NULL, &srv);
        if (r < 0) {
                if (r == -EINVAL)
                        cli_usage_error("serve-images", "--listen '%s' is not HOST:PORT", a.listen);
                else
                        fprintf(stderr, "kiln: serve-images: cannot listen on %s: %s\n", a.listen,
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
