/* SPDX-License-Identifier: Apache-2.0 */
/* kiln serve-images: the local image store over HTTP until SIGINT/SIGTERM. */
#include "cli/cli.h"

#include "store/store.h"

#include <signal.h>
#include <time.h>

static int serve_images_run(struct cli *cli, int argc, char **argv);

const struct verb verb_serve_images = {
        .name = "serve-images",
        .summary = "Serve the local image store over HTTP",
        .usage = "kiln serve-images [--listen HOST:PORT] [--store DIR]",
        .help = "Serves the store read-only until SIGINT or SIGTERM; prints the URL first.\n"
                "\n"
                "  GET /images                      the catalog as JSON (as images list --json)\n"
                "  GET /images/NAME/VERSION/FILE    a file; VERSION may be 'latest'\n"
                "  GET /blobs/sha256/HEX            a file by its SHA-256\n"
                "\n"
                "Files support HEAD, Range (one range: 206; 416 when unsatisfiable), ETag (the\n"
                "SHA-256) with If-None-Match (304) and If-Range, and carry Content-Length,\n"
                "X-Checksum-Sha256 and Digest: sha-256=BASE64. Only catalogued names and\n"
                "digests resolve; nothing else on disk is reachable.\n"
                "\n"
                "Options:\n"
                "  --listen ADDR   HOST:PORT, [IPV6]:PORT or PORT (default 127.0.0.1:8080;\n"
                "                  port 0 picks a free port)\n"
                "  --store DIR     the store (default $KILN_STORE_DIR, $XDG_DATA_HOME/kiln/store\n"
                "                  or ~/.local/share/kiln/store)\n"
                "  --quiet         no access log on stderr\n",
        .run = serve_images_run,
};

enum { S_HELP = 1, S_LISTEN, S_STORE, S_QUIET };

static const struct cli_option serve_opts[] = {
        {"help", 'h', false, S_HELP},
        {"listen", 0, true, S_LISTEN},
        {"store", 0, true, S_STORE},
        {"quiet", 'q', false, S_QUIET},
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

static int serve_images_run(struct cli *cli, int argc, char **argv) {
        struct cli_parser p = {.opts = serve_opts, .argc = argc, .argv = argv, .i = 1,
                               .verb = "serve-images"};
        const char *arg, *listen = "127.0.0.1:8080", *store = NULL;
        bool quiet = false;
        int id;
        while ((id = cli_next(&p, &arg)) != -1) {
                switch (id) {
                case -2: return EXIT_USAGE;
                case 0: cli_usage_error("serve-images", "unexpected argument '%s'", arg); return EXIT_USAGE;
                case S_HELP: cli_print_verb_help(&verb_serve_images, stdout); return EXIT_OK;
                case S_LISTEN: listen = arg; break;
                case S_STORE: store = arg; break;
                case S_QUIET: quiet = true; break;
                }
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
        r = store_serve_start(st, listen, quiet ? NULL : access_log, NULL, &srv);
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
