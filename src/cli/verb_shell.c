/* SPDX-License-Identifier: Apache-2.0 */
/* kiln shell: an interactive shell inside a built (or failed) tree. */
#include "cli/cli.h"

#include "provision/build.h"
#include "os/fs.h"
#include "os/sandbox.h"

#include <sys/stat.h>
#include <unistd.h>

static int shell_run(struct cli *cli, int argc, char **argv);

const struct verb verb_shell = {
        .name = "shell",
        .summary = "Open a shell inside a build's tree",
        .usage = "kiln shell [options] SPEC BUILD [-- COMMAND...]",
        /* BUILD: a build's name, or its stable id (NAME-ROLE-ARCH), which does
         * not change when names carry a timestamp */
        .help = "Runs an interactive shell (or COMMAND) in the sandbox on BUILD's finished\n"
                "tree, as the build steps see it. Changes are thrown away when the shell\n"
                "exits. With --failed, opens the tree of the step that failed in the last\n"
                "`kiln build --on-error=abort`: changes made there are kept in it.\n"
                "\n"
                "Options:\n"
                "  --failed           the failed step's tree instead of the finished one\n"
                "  --work-dir DIR     as for kiln build\n"
                "  --cache-dir DIR    as for kiln build\n"
                "  --var, --var-file  as for kiln validate (to name the same builds)\n"
                "\n"
                "Exit status: the shell's.\n",
        .run = shell_run,
};

/* Opens the shell in build b; returns the exit code. */
static int enter(const struct spec_args *a, const struct spec_build *b, char **cmd) {
        _cleanup_free_ char *work = cli_work_dir(a);
        struct build_options bo = {.work_dir = work};
        _cleanup_free_ char *dir = build_dir(&bo, b);
        _cleanup_free_ char *upper = NULL, *workdir = NULL, *scratch = NULL;
        char **layers = NULL;
        size_t nlayers = 0;
        int r;
        if (a->failed) {
                _cleanup_free_ char *lp = xasprintf("%s/failed/parent-layers", dir);
                upper = xasprintf("%s/failed/tree", dir);
                if (access(upper, F_OK) < 0) {
                        fprintf(stderr, "kiln: shell: %s has no failed tree (build it with --on-error=abort)\n",
                                b->name);
                        return EXIT_FAILED;
                }
                if (read_lines(lp, 1u << 20, &layers, &nlayers) < 0) {
                        layers = NULL;
                        nlayers = 0;
                }
                workdir = xasprintf("%s/failed/work", dir);
                rm_rf(workdir);
                if (mkdir(workdir, 0700) < 0) {
                        fprintf(stderr, "kiln: shell: cannot create %s: %m\n", workdir);
                        return EXIT_FAILED;
                }
        } else {
                r = build_layers(&bo, b, &layers, &nlayers);
                if (r < 0) {
                        fprintf(stderr, "kiln: shell: %s has not been built yet (kiln build %s)\n",
                                b->name, a->path);
                        return EXIT_FAILED;
                }
                scratch = xasprintf("%s/run/shell", dir);
                rm_rf(scratch);
                upper = xasprintf("%s/upper", scratch);
                workdir = xasprintf("%s/work", scratch);
                if (mkdir_p(upper, 0755) < 0 || mkdir(workdir, 0700) < 0) {
                        fprintf(stderr, "kiln: shell: cannot create %s: %m\n", scratch);
                        for (size_t i = 0; i < nlayers; i++)
                                free(layers[i]);
                        free(layers);
                        return EXIT_FAILED;
                }
        }
        _cleanup_free_ char *mnt = xasprintf("%s/root", dir);
        mkdir(mnt, 0755);
        _cleanup_free_ char *ps1 = xasprintf("PS1=kiln:%s%s# ", b->name, a->failed ? "(failed)" : "");
        _cleanup_free_ char *term = xasprintf("TERM=%s", getenv("TERM") ? getenv("TERM") : "dumb");
        char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "HOME=/root", "LANG=C.UTF-8", ps1, term, NULL};
        struct sandbox_opts so = {
                .lower = (const char *const *)layers,
                .nlower = nlayers,
                .upper = upper,
                .work = workdir,
                .mountpoint = mnt,
                .mode = SANDBOX_CHROOT,
                .network = true,
                .hostname = b->name,
                .argv = cmd,
                .envp = envp,
                .stdin_fd = STDIN_FILENO,
                .stdout_fd = STDOUT_FILENO,
                .stderr_fd = STDERR_FILENO,
        };
        struct sandbox_result res;
        r = sandbox_run(&so, &res);
        int ret;
        if (r < 0) {
                fprintf(stderr, "kiln: shell: cannot start the sandbox: %s\n", strerror(-r));
                ret = EXIT_FAILED;
        } else {
                ret = res.signal ? 128 + res.signal : res.exit_code;
        }
        if (scratch)
                rm_rf(scratch);
        for (size_t i = 0; i < nlayers; i++)
                free(layers[i]);
        free(layers);
        return ret;
}

static int shell_run(struct cli *cli, int argc, char **argv) {
        /* Everything after "--" is the command. */
        int cmd_at = argc;
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--")) {
                        cmd_at = i;
                        break;
                }
        _cleanup_(spec_args_done) struct spec_args a = {.build_opts = true, .want_extra_arg = true};
        int r = spec_args_parse(&a, &verb_shell, cmd_at, argv);
        if (r != 0)
                return cli_parse_exit(r);
        int ret = EXIT_USAGE;
        _cleanup_(diag_list_done) struct diag_list d = {0};
        _cleanup_(spec_freep) struct spec *s = NULL;
        if (!a.extra_arg) {
                cli_usage_error("shell", "missing BUILD (kiln shell SPEC BUILD)");
        } else if (cli_load_spec(cli, &a, &d, &s) >= 0) {
                const struct spec_build *b = spec_find_build(s, a.extra_arg);
                /* the stable id too: names may carry a timestamp */
                for (size_t i = 0; !b && i < s->nbuilds; i++)
                        if (streq(s->builds[i]->id, a.extra_arg))
                                b = s->builds[i];
                char *default_cmd[] = {"/bin/sh", "-c",
                                       "if [ -x /bin/bash ]; then exec /bin/bash -l; else exec /bin/sh -l; fi",
                                       NULL};
                if (!b)
                        fprintf(stderr, "kiln: shell: no build named '%s' in %s\n", a.extra_arg, a.path);
                else
                        ret = enter(&a, b, cmd_at + 1 < argc ? argv + cmd_at + 1 : default_cmd);
        }
        return ret;
}
