/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Step runners. Each runner builds an argv and a sandbox_opts; user-given
 * values (package names, paths, owners) are passed as separate arguments to
 * a fixed /bin/sh script ("$@", "$1"), never pasted into shell text, so a
 * package called `x; rm -rf /` is just a package apt cannot find.
 *
 * Scratch content built from the spec (a step's script, inline or templated
 * file content, an Ansible inventory and extra vars) may hold a sensitive
 * value, so it never has a name in any file system: it is written to an
 * anonymous memory file (memfd) that the command receives as an open fd and
 * reads as /dev/fd/3 (and 4): when the run ends — also when kiln is killed
 * with SIGKILL — the kernel frees it. (Ansible resolves the paths it is
 * given, so its wrapper copies them into the tree's /run, a tmpfs that
 * exists only in the sandbox's mount namespace.) Host files a step reads (script files,
 * a directory to copy) are bound read-only under /run/kiln inside the
 * sandbox, a tmpfs: they never reach the layer.
 *
 * Environments. A secret reaches only the processes of a step that uses
 * it: steps in the tree get a fixed environment plus their own env:, and
 * steps on the host (host-shell, ansible) and the bootstrappers (mmdebstrap,
 * tar) get kiln's environment without KILN_VAR_* and without any variable
 * whose value holds a sensitive value the step does not use itself
 * (host_env). No secret is ever put in a command line (visible to every
 * user in /proc/PID/cmdline): it travels in a memfd or an environment.
 */
#include "provision/steps.h"

#include "base/arch.h"
#include "base/hash.h"
#include "base/json.h"
#include "os/proc.h"
#include "provision/pkgcache.h"
#include "base/strv.h"
#include "spec/interp.h"
#include "spec/schema.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

/* ---- small helpers ---------------------------------------------------------------- */

/* argv for a fixed /bin/sh script; user values follow as "$1"... ($0 = name). */
static void strv_add_sh(struct strv *argv, const char *script, const char *name) {
        strv_add(argv, "/bin/sh");
        strv_add(argv, "-c");
        strv_add(argv, script);
        strv_add(argv, name);
}

/* Adds "PREFIX a,b,c" as one argument when list is not empty. */
static void strv_add_joined(struct strv *s, const char *prefix, const struct strv *list) {
        if (!list->n)
                return;
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, prefix);
        for (size_t i = 0; i < list->n; i++)
                strbuf_addf(&sb, "%s%s", i ? "," : "", list->v[i]);
        strv_add(s, sb.buf);
        strbuf_free(&sb);
}

/* Adds a string or each string of a list. */
static void strv_add_value(struct strv *s, const struct value *v) {
        if (!v)
                return;
        if (v->kind == V_LIST) {
                for (size_t i = 0; i < v->n; i++)
                        if (v->items[i]->str)
                                strv_add(s, v->items[i]->str);
        } else if (v->str) {
                strv_add(s, v->str);
        }
}

static void logf_(int fd, const char *fmt, ...) _printf_(2, 3);
static void logf_(int fd, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = xvasprintf(fmt, ap);
        va_end(ap);
        if (write(fd, s, strlen(s)) < 0) {
                /* the log is best effort */
        }
}

char *spec_path(const struct spec *s, const char *path) {
        if (path[0] == '/')
                return xstrdup(path);
        return xasprintf("%s/%s", s->dir, path);
}

/* Where a command finds the first and second of its sandbox pass_fds. */
#define PASS_FD_1 "/dev/fd/3"
#define PASS_FD_2 "/dev/fd/4"

/* An anonymous, read-only memory file holding data[0..len), positioned at
 * its start; returns the fd (close-on-exec) or -errno. See the top. */
static int content_fd(const char *name, const void *data, size_t len) {
        int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = write_all(fd, data, len);
        /* not executable: Ansible would take it for an inventory script */
        if (r >= 0 && fchmod(fd, 0400) < 0)
                r = -errno;
        if (r >= 0 && lseek(fd, 0, SEEK_SET) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/* True when some string of v contains needle. */
static bool value_contains(const struct value *v, const char *needle) {
        if (!v)
                return false;
        if (v->str && strstr(v->str, needle))
                return true;
        for (size_t i = 0; i < v->n; i++)
                if ((v->keys && value_contains(v->keys[i], needle)) || value_contains(v->items[i], needle))
                        return true;
        return false;
}

/* Sensitive values shorter than this are not looked for in the host's
 * environment or in command lines: they would match unrelated text (PATH,
 * a package name) by accident. (Logs mask every sensitive value.) */
#define SECRET_MATCH_MIN_LEN 4

/* kiln's own environment for a process on the host: without KILN_VAR_*
 * (the way sensitive variables are given to kiln), without any variable
 * named in `drop` (prefixes ending in '_' match every name they start),
 * and without any variable whose value holds a sensitive value of the spec
 * that `uses` (the step's or source's parameters; NULL: none) does not
 * contain — a secret reaches only a process that uses it. */
static void host_env(struct strv *env, const struct spec *s, const struct value *uses,
                     const char *const *drop) {
        extern char **environ;
        _cleanup_free_ const char **secrets = spec_secrets(s);
        for (char **e = environ; *e; e++) {
                if (startswith(*e, "KILN_VAR_"))
                        continue;
                bool skip = false;
                for (const char *const *d = drop; d && *d && !skip; d++) {
                        size_t l = strlen(*d);
                        skip = strncmp(*e, *d, l) == 0 && ((*d)[l - 1] == '_' || (*e)[l] == '=');
                }
                const char *val = strchr(*e, '=');
                for (size_t i = 0; val && secrets[i] && !skip; i++)
                        skip = strlen(secrets[i]) >= SECRET_MATCH_MIN_LEN && strstr(val + 1, secrets[i]) &&
                               !value_contains(uses, secrets[i]);
                if (!skip)
                        strv_add(env, *e);
        }
}

static const char *param_str(const struct spec_step *st, const char *key) {
        const struct value *v = value_map_get(st->params, key);
        return v && v->str && v->kind != V_NULL ? v->str : NULL;
}

/* The environment of a step inside the image: a fixed base, the build's
 * identity, and the spec's env: map (which may override the base). */
static void base_env(struct strv *env, const struct step_ctx *ctx) {
        strv_add(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        strv_add(env, "HOME=/root");
        strv_add(env, "LANG=C.UTF-8");
        strv_add(env, "DEBIAN_FRONTEND=noninteractive");
        strv_add(env, "TERM=dumb");
        strv_addf(env, "KILN_BUILD_NAME=%s", ctx->build->name);
        strv_addf(env, "KILN_BUILD_ARCH=%s", ctx->build->arch);
        strv_addf(env, "KILN_BUILD_ROLE=%s", ctx->build->role ? ctx->build->role : "");
}

static void spec_env(struct strv *env, const struct spec_step *st) {
        const struct value *e = value_map_get(st->params, "env");
        if (!e || e->kind != V_MAP)
                return;
        for (size_t i = 0; i < e->n; i++) {
                const char *k = e->keys[i]->str;
                size_t kl = strlen(k);
                /* a later KEY= replaces an earlier one */
                for (size_t j = 0; j < env->n; j++)
                        if (strncmp(env->v[j], k, kl) == 0 && env->v[j][kl] == '=') {
                                strv_remove(env, j);
                                break;
                        }
                strv_addf(env, "%s=%s", k, e->items[i]->str ? e->items[i]->str : "");
        }
}

static struct sandbox_opts base_opts(const struct step_ctx *ctx) {
        return (struct sandbox_opts){
                .lower = ctx->lower,
                .nlower = ctx->nlower,
                .upper = ctx->upper,
                .work = ctx->work,
                .mountpoint = ctx->mountpoint,
                .mode = SANDBOX_CHROOT,
                .network = ctx->step ? ctx->step->network : true,
                .hostname = ctx->build->name,
                .stdin_fd = -1,
                .stdout_fd = ctx->log_fd,
                .stderr_fd = ctx->log_fd,
        };
}

static uint64_t timeout_ms(const struct spec_step *st) {
        const struct value *t = value_map_get(st->params, "timeout");
        uint64_t s = 0;
        if (t && t->str && parse_duration(t->str, &s) == 0)
                return s * 1000;
        return 0;
}

/* Refuses (-EPERM, the reason in the log) a command line holding a
 * sensitive value: every user of the machine can read a process's
 * arguments (/proc/PID/cmdline, ps). Content that may hold one travels in a
 * memfd or an environment instead (see the top). */
static int argv_check(const struct step_ctx *ctx, char *const *argv) {
        _cleanup_free_ const char **secrets = spec_secrets(ctx->spec);
        for (size_t i = 0; argv[i]; i++)
                for (size_t k = 0; secrets[k]; k++)
                        if (strlen(secrets[k]) >= SECRET_MATCH_MIN_LEN && strstr(argv[i], secrets[k])) {
                                logf_(ctx->log_fd,
                                      "kiln: a sensitive value would be a command-line argument of %s "
                                      "(visible to every user in ps); the step's parameters cannot "
                                      "hold one here\n",
                                      argv[0]);
                                return -EPERM;
                        }
        return 0;
}

static int run_sandbox(const struct step_ctx *ctx, struct sandbox_opts *o,
                       struct sandbox_result *res) {
        int r = argv_check(ctx, o->argv);
        if (r < 0)
                return r;
        r = sandbox_run(o, res);
        if (r < 0)
                logf_(ctx->log_fd, "kiln: could not start the sandbox: %s\n", strerror(-r));
        return r;
}

/* ---- one initramfs per package run ------------------------------------------------------ */

/* Installing a kernel builds its initramfs in the kernel's hook
 * (update-initramfs -c), then again in initramfs-tools' trigger
 * (update-initramfs -u) — and again for every package run that activates
 * the trigger. While kiln installs packages (the bootstrap, packages and
 * update steps), `update-initramfs` found first in PATH is a shim that
 * only writes down what was asked; when the run is over, the finisher
 * builds each kernel's initramfs that was asked for once, with the real
 * program (-c for a kernel that has none yet, -u otherwise). Removals
 * (-d) are not deferred. The shim and its notes live in /run/kiln-defer:
 * a tmpfs in the sandbox, emptied by mmdebstrap's cleanup in the
 * bootstrap — never in a layer. */
#define DEFER_DIR "/run/kiln-defer"
/* apt runs dpkg with PATH set to its DPkg::Path (default
 * /usr/sbin:/usr/bin:/sbin:/bin): the shim goes in there. */
#define DEFER_PATH DEFER_DIR ":/usr/sbin:/usr/bin:/sbin:/bin"

static const char initramfs_shim[] =
        "#!/bin/sh\n"
        "# kiln: initramfs builds are deferred to the end of this package run\n"
        "for a in \"$@\"; do\n"
        "  if [ \"$a\" = -d ]; then exec /usr/sbin/update-initramfs \"$@\"; fi\n"
        "done\n"
        "echo \"$*\" >> " DEFER_DIR "/requests\n";

static const char initramfs_finish[] =
        "# kiln: the initramfs builds deferred during this package run, one per kernel\n"
        "set -e\n"
        "q=" DEFER_DIR "/requests\n"
        "[ -s \"$q\" ] && [ -x /usr/sbin/update-initramfs ] || exit 0\n"
        "# the kernels that have an initramfs (what -u and -k all mean)\n"
        "known() { for f in /boot/initrd.img-*; do [ -e \"$f\" ] && echo \"${f#/boot/initrd.img-}\"; done; true; }\n"
        "want= newest=\n"
        "while read -r line; do\n"
        "  set -f; set -- $line; set +f\n"
        "  k=\n"
        "  while [ $# -gt 0 ]; do\n"
        "    case $1 in -k) k=${2:-}; shift ;; -k?*) k=${1#-k} ;; esac\n"
        "    shift\n"
        "  done\n"
        "  case $k in\n"
        "    all) want=\"$want $(known)\" ;;\n"
        "    ''|latest) newest=1 ;;\n"
        "    *) want=\"$want $k\" ;;\n"
        "  esac\n"
        "done < \"$q\"\n"
        "if [ -n \"$newest\" ]; then\n"
        "  n=$( { known; printf '%s\\n' $want; } | grep . | sort -V | tail -n 1)\n"
        "  want=\"$want $n\"\n"
        "fi\n"
        "vs=$(printf '%s\\n' $want | grep . | sort -uV || true)\n"
        "echo \"kiln: $(wc -l < \"$q\") deferred update-initramfs call(s); building once for:\" $vs >&2\n"
        "for v in $vs; do\n"
        "  [ -d \"/lib/modules/$v\" ] || continue\n"
        "  if [ -e \"/boot/initrd.img-$v\" ]; then\n"
        "    /usr/sbin/update-initramfs -u -k \"$v\" >&2\n"
        "  else\n"
        "    /usr/sbin/update-initramfs -c -k \"$v\" >&2\n"
        "  fi\n"
        "done\n"
        "rm -f \"$q\"\n";

/* Shell text that a package step's script starts with: the shim in place
 * (see above), and `$APT`, apt-get with dpkg's unsafe I/O — a build writes
 * into a layer that is synced once when it is stored (cache_commit) or
 * written to an image, so dpkg's fsync of every file buys nothing. */
static void apt_prelude(struct strbuf *sb) {
        strbuf_adds(sb, "set -e\n"
                        "mkdir -p " DEFER_DIR "\n"
                        "cat > " DEFER_DIR "/update-initramfs <<'KILN_EOF'\n");
        strbuf_adds(sb, initramfs_shim);
        strbuf_adds(sb, "KILN_EOF\n"
                        "chmod 755 " DEFER_DIR "/update-initramfs\n"
                        "export PATH=" DEFER_DIR ":$PATH\n"
                        "APT='apt-get -o Dpkg::Options::=--force-unsafe-io -o DPkg::Path=" DEFER_PATH "'\n");
}

/* ... and ends with: the deferred initramfs builds, once. */
static void apt_postlude(struct strbuf *sb) {
        strbuf_adds(sb, "export PATH=${PATH#" DEFER_DIR ":}\n"
                        "cat > " DEFER_DIR "/finish <<'KILN_EOF'\n");
        strbuf_adds(sb, initramfs_finish);
        strbuf_adds(sb, "KILN_EOF\n"
                        "sh " DEFER_DIR "/finish\n");
}

/* ---- packages / update ---------------------------------------------------------------- */

int step_update_initramfs(const struct step_ctx *ctx, struct sandbox_result *res) {
        static const char script[] =
                "if [ -x /usr/sbin/update-initramfs ] && ls /boot/initrd.img-* >/dev/null 2>&1; then\n"
                "  exec /usr/sbin/update-initramfs -u -k all\n"
                "fi\n";
        _cleanup_strv_ struct strv argv = {0}, env = {0};
        strv_add_sh(&argv, script, "kiln-initramfs");
        base_env(&env, ctx);
        struct sandbox_opts o = base_opts(ctx);
        o.argv = argv.v;
        o.envp = env.v;
        o.network = false;
        o.mode = SANDBOX_CHROOT;
        return run_sandbox(ctx, &o, res);
}

/* apt needs package lists; mmdebstrap leaves none behind. */
#define APT_LISTS "if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update; fi\n"

/* The package cache inside a package step: its files bound read-only at
 * /run/kiln/packages, an incoming folder writable at /run/kiln/incoming.
 * kiln_seed links (symlinks) into apt's archives each file the apt
 * command given will fetch whose SHA-256 — from --print-uris when apt
 * prints it (apt 2.6 prints none for packages: then the cached file of
 * that name) — names a cached file that still has that content (apt then
 * checks its size);
 * kiln_keep copies what apt fetched into the incoming folder, which kiln
 * enters into the cache after the step (pkgcache_add_dir). */
#define APT_CACHE_FNS                                                                             \
        "kiln_seed() {\n"                                                                         \
        "  [ -d /run/kiln/packages/sha256 ] || return 0\n"                                        \
        "  apt-get -qq --print-uris \"$@\" | while read -r uri file size hash; do\n"              \
        "    case $hash in SHA256:*) h=${hash#SHA256:} ;; *) h= ;; esac\n"                         \
        "    if [ -z \"$h\" ]; then\n"                                                           \
        "      t=$(readlink \"/run/kiln/packages/by-name/$file\" 2>/dev/null) || continue\n"      \
        "      h=${t##*/}\n"                                                                      \
        "    fi\n"                                                                                \
        "    p=/run/kiln/packages/sha256/$h a=/var/cache/apt/archives/$file\n"                    \
        "    case $file in */*|.*) continue ;; esac\n"                                             \
        "    [ -f \"$p\" ] && [ ! -e \"$a\" ] || continue\n"                                      \
        "    if echo \"$h  $p\" | sha256sum -c --status; then ln -s \"$p\" \"$a\"; fi\n"          \
        "  done\n"                                                                                \
        "}\n"                                                                                     \
        "kiln_keep() {\n"                                                                         \
        "  [ -d /run/kiln/incoming ] || return 0\n"                                               \
        "  for f in /var/cache/apt/archives/*.deb; do\n"                                          \
        "    if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then cp \"$f\" /run/kiln/incoming/; fi\n"       \
        "  done\n"                                                                                \
        "}\n"

/* Runs a package step's script (built by the caller between apt_prelude
 * and apt_postlude) with the package cache bound in, then enters what apt
 * fetched into the cache. */
static int run_apt_script(const struct step_ctx *ctx, char *const *argv, char *const *envp,
                          struct sandbox_result *res) {
        struct sandbox_bind binds[2];
        size_t nb = 0;
        _cleanup_free_ char *incoming = NULL;
        if (ctx->packages_dir) {
                _cleanup_free_ char *sha = xasprintf("%s/sha256", ctx->packages_dir);
                incoming = pkgcache_incoming(ctx->packages_dir);
                if (incoming && access(sha, F_OK) == 0) {
                        binds[nb++] = (struct sandbox_bind){ctx->packages_dir, "/run/kiln/packages", true};
                        binds[nb++] = (struct sandbox_bind){incoming, "/run/kiln/incoming", false};
                }
        }
        struct sandbox_opts o = base_opts(ctx);
        o.argv = argv;
        o.envp = envp;
        o.binds = binds;
        o.nbinds = nb;
        int r = run_sandbox(ctx, &o, res);
        if (incoming) {
                size_t added = 0;
                int k = pkgcache_add_dir(ctx->packages_dir, incoming, &added);
                if (k < 0)
                        logf_(ctx->log_fd, "kiln: package cache: %s\n", strerror(-k));
                else if (added)
                        logf_(ctx->log_fd, "kiln: package cache: %zu new file%s\n", added,
                              added == 1 ? "" : "s");
        }
        return r;
}

static int run_packages(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct spec_step *st = ctx->step;
        const struct value *rec = value_map_get(st->params, "recommends");
        bool recommends = rec && rec->kind == V_BOOL && rec->b;
        _cleanup_strv_ struct strv install = {0}, remove = {0};
        strv_add_value(&install, value_map_get(st->params, "install"));
        strv_add_value(&remove, value_map_get(st->params, "remove"));
        /* One script; the package names arrive as arguments: first the
         * installs, a "--" marker, then the removals. */
        /* with a refresh: policy, fresh lists whenever the step runs */
        const struct value *rf = value_map_get(st->params, "refresh");
        bool refresh = rf && rf->str && !streq(rf->str, "never");
        _cleanup_strbuf_ struct strbuf script = STRBUF_INIT;
        apt_prelude(&script);
        strbuf_adds(&script, refresh ? "apt-get update\n" : APT_LISTS);
        strbuf_adds(&script,
                    APT_CACHE_FNS
                    "inst=; rem=; seen=\n"
                    "for a in \"$@\"; do\n"
                    "  if [ \"$a\" = -- ] && [ -z \"$seen\" ]; then seen=1; continue; fi\n"
                    "  if [ -z \"$seen\" ]; then inst=\"$inst $a\"; else rem=\"$rem $a\"; fi\n"
                    "done\n"
                    "set -f\n"
                    "if [ -n \"$inst\" ]; then\n"
                    "  kiln_seed install -y $KILN_APT_OPTS -- $inst\n"
                    "  $APT install -y $KILN_APT_OPTS -- $inst\n"
                    "fi\n"
                    "if [ -n \"$rem\" ]; then $APT purge -y -- $rem; fi\n"
                    "set +f\n"
                    "kiln_keep\n"
                    "apt-get clean\n");
        apt_postlude(&script);
        _cleanup_strv_ struct strv argv = {0}, env = {0};
        strv_add_sh(&argv, script.buf, "kiln-packages");
        for (size_t i = 0; i < install.n; i++)
                strv_add(&argv, install.v[i]);
        strv_add(&argv, "--");
        for (size_t i = 0; i < remove.n; i++)
                strv_add(&argv, remove.v[i]);
        base_env(&env, ctx);
        strv_addf(&env, "KILN_APT_OPTS=%s", recommends ? "" : "--no-install-recommends");
        return run_apt_script(ctx, argv.v, env.v, res);
}

static int run_update(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct value *ar = value_map_get(ctx->step->params, "autoremove");
        bool autoremove = !(ar && ar->kind == V_BOOL && !ar->b);
        _cleanup_strbuf_ struct strbuf script = STRBUF_INIT;
        apt_prelude(&script);
        strbuf_adds(&script,
                    APT_CACHE_FNS
                    "apt-get update\n"
                    "kiln_seed -y full-upgrade\n"
                    "$APT -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade\n");
        if (autoremove)
                strbuf_adds(&script, "$APT -y autoremove\n");
        strbuf_adds(&script, "kiln_keep\n"
                             "apt-get clean\n");
        apt_postlude(&script);
        _cleanup_strv_ struct strv argv = {0}, env = {0};
        strv_add_sh(&argv, script.buf, "kiln-update");
        base_env(&env, ctx);
        return run_apt_script(ctx, argv.v, env.v, res);
}

/* ---- file ------------------------------------------------------------------------------ */

static void file_inputs(const struct spec *s, const struct spec_step *st, char ***paths, size_t *n) {
        const char *src = param_str(st, "source");
        if (src) {
                *paths = xreallocarray(*paths, *n + 1, sizeof(char *));
                (*paths)[(*n)++] = spec_path(s, src);
        }
}

static int run_file(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct spec_step *st = ctx->step;
        const char *dest = param_str(st, "path");
        const char *content = param_str(st, "content");
        const char *source = param_str(st, "source");
        const char *mode = param_str(st, "mode");
        const char *owner = param_str(st, "owner");
        const struct value *tpl = value_map_get(st->params, "template");
        bool templ = tpl && tpl->kind == V_BOOL && tpl->b;
        _cleanup_free_ char *host = NULL;
        _cleanup_close_ int cfd = -1; /* content or template output, in a memfd */
        bool is_dir = false;
        unsigned default_mode = 0644; /* inline content; a host file's own otherwise */
        int r;
        if (content) {
                /* content from a sensitive value is private unless mode: says otherwise */
                if (value_any_sensitive(value_map_get(st->params, "content")))
                        default_mode = 0600;
                cfd = content_fd("kiln-file", content, strlen(content));
                if (cfd < 0) {
                        logf_(ctx->log_fd, "kiln: cannot hold the file's content: %s\n", strerror(-cfd));
                        return cfd;
                }
        } else {
                host = spec_path(ctx->spec, source);
                struct stat sb;
                if (stat(host, &sb) < 0) {
                        r = -errno;
                        logf_(ctx->log_fd, "kiln: file step: cannot read %s: %s\n", host, strerror(errno));
                        return r;
                }
                is_dir = S_ISDIR(sb.st_mode);
                default_mode = sb.st_mode & 07777;
                if (templ && !is_dir) {
                        /* ${...} in the file, with the build's variables. */
                        _cleanup_free_ char *text = NULL;
                        size_t len;
                        r = read_file(host, 16u << 20, &text, &len);
                        if (r < 0) {
                                logf_(ctx->log_fd, "kiln: cannot read %s: %s\n", host, strerror(-r));
                                return r;
                        }
                        struct source *src = source_new(host, text, len);
                        struct mark m = {src, 1, 1};
                        _cleanup_value_ struct value *in = value_new_stringn(text, len, &m);
                        in->style = STYLE_LITERAL;
                        _cleanup_value_ struct value *scope = spec_build_scope(ctx->spec, ctx->build);
                        struct interp_env env = {.scope = scope, .base_dir = ctx->spec->dir};
                        struct diag_list d = {0};
                        _cleanup_value_ struct value *out = NULL;
                        r = interp_string(in, &env, &d, &out);
                        if (r < 0 || out->kind == V_LIST || out->kind == V_MAP) {
                                diag_sort(&d);
                                struct strbuf sb2 = STRBUF_INIT;
                                diag_render(&d, &sb2, false);
                                logf_(ctx->log_fd, "kiln: template %s:\n%s", host, strbuf_str(&sb2));
                                strbuf_free(&sb2);
                                diag_list_done(&d);
                                source_free(src);
                                return -EINVAL;
                        }
                        diag_list_done(&d);
                        source_free(src);
                        if (value_any_sensitive(out))
                                default_mode &= 0700;
                        cfd = content_fd("kiln-file", out->str ? out->str : "", out->str ? out->len : 0);
                        if (cfd < 0) {
                                logf_(ctx->log_fd, "kiln: cannot hold the file's content: %s\n",
                                      strerror(-cfd));
                                return cfd;
                        }
                }
        }
        /* A file is created empty and private, then given its owner and
         * mode, and only then filled: its content is never readable by
         * anyone the spec did not name, not even for a moment. */
        static const char script[] =
                "set -e\n"
                "dest=$1 kind=$2 mode=$3 owner=$4 src=$6\n"
                "mkdir -p \"$(dirname \"$dest\")\"\n"
                "if [ \"$kind\" = dir ]; then\n"
                "  mkdir -p \"$dest\"\n"
                "  cp -R \"$src\"/. \"$dest\"/\n"
                "  chown -R \"${owner:-root:root}\" \"$dest\"\n"
                "  if [ -n \"$mode\" ]; then chmod \"$mode\" \"$dest\"; fi\n"
                "else\n"
                "  (umask 077; : > \"$dest\")\n"
                "  chown \"${owner:-root:root}\" \"$dest\"\n"
                "  chmod \"${mode:-$5}\" \"$dest\"\n"
                "  cat \"$src\" > \"$dest\"\n"
                "fi\n";
        _cleanup_strv_ struct strv argv = {0}, env = {0};
        strv_add_sh(&argv, script, "kiln-file");
        strv_add(&argv, dest);
        strv_add(&argv, is_dir ? "dir" : "file");
        strv_add(&argv, mode ? mode : "");
        strv_add(&argv, owner ? owner : "");
        strv_addf(&argv, "%o", default_mode);
        strv_add(&argv, cfd >= 0 ? PASS_FD_1 : "/run/kiln/src");
        base_env(&env, ctx);
        struct sandbox_bind bind = {host, "/run/kiln/src", true};
        struct sandbox_opts o = base_opts(ctx);
        o.argv = argv.v;
        o.envp = env.v;
        if (cfd >= 0) {
                o.pass_fds = &cfd;
                o.npass_fds = 1;
        } else {
                o.binds = &bind;
                o.nbinds = 1;
        }
        return run_sandbox(ctx, &o, res);
}

/* ---- shell / host-shell ---------------------------------------------------------------- */

static void shell_inputs(const struct spec *s, const struct spec_step *st, char ***paths, size_t *n) {
        _cleanup_strv_ struct strv files = {0};
        strv_add_value(&files, value_map_get(st->params, "script"));
        strv_add_value(&files, value_map_get(st->params, "scripts"));
        for (size_t i = 0; i < files.n; i++) {
                *paths = xreallocarray(*paths, *n + 1, sizeof(char *));
                (*paths)[(*n)++] = spec_path(s, files.v[i]);
        }
}

/* The script the step runs — inline lines, or a wrapper running each
 * script file (bound at /run/kiln/scripts/N, or their host paths) in turn —
 * in a memfd (see the top); returns its fd or -errno. */
static int make_script(const struct step_ctx *ctx, bool host, struct strv *binds_host,
                       struct strv *binds_tree) {
        const struct spec_step *st = ctx->step;
        struct strbuf sb = STRBUF_INIT;
        const struct value *inl = value_map_get(st->params, "inline");
        if (inl) {
                _cleanup_strv_ struct strv lines = {0};
                strv_add_value(&lines, inl);
                for (size_t i = 0; i < lines.n; i++)
                        strbuf_addf(&sb, "%s\n", lines.v[i]);
        } else {
                _cleanup_strv_ struct strv files = {0};
                strv_add_value(&files, value_map_get(st->params, "script"));
                strv_add_value(&files, value_map_get(st->params, "scripts"));
                const char *interp = param_str(st, "interpreter");
                strbuf_adds(&sb, "set -e\n");
                for (size_t i = 0; i < files.n; i++) {
                        _cleanup_free_ char *hp = spec_path(ctx->spec, files.v[i]);
                        if (host) {
                                strbuf_addf(&sb, "%s '%s'\n", interp ? interp : "/bin/sh -e", hp);
                        } else {
                                _cleanup_free_ char *tp = xasprintf("/run/kiln/scripts/%zu", i + 1);
                                strv_add(binds_host, hp);
                                strv_add(binds_tree, tp);
                                strbuf_addf(&sb, "%s %s\n", interp ? interp : "/bin/sh -e", tp);
                        }
                }
        }
        int fd = content_fd("kiln-script", strbuf_str(&sb), sb.len);
        if (sb.buf)
                explicit_bzero(sb.buf, sb.len);
        strbuf_free(&sb);
        return fd;
}

static void split_interpreter(struct strv *argv, const char *interp) {
        _cleanup_free_ char *copy = xstrdup(interp);
        char *save = NULL;
        for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
                strv_add(argv, t);
}

static int run_shell_common(const struct step_ctx *ctx, bool host, struct sandbox_result *res) {
        const struct spec_step *st = ctx->step;
        _cleanup_strv_ struct strv bh = {0}, bt = {0}, argv = {0}, env = {0};
        _cleanup_close_ int script = make_script(ctx, host, &bh, &bt);
        if (script < 0) {
                logf_(ctx->log_fd, "kiln: cannot write the step's script: %s\n", strerror(-script));
                return script;
        }
        const char *interp = value_map_get(st->params, "inline") ? param_str(st, "interpreter") : NULL;
        split_interpreter(&argv, interp ? interp : "/bin/sh -e");
        strv_add(&argv, PASS_FD_1);
        if (host) {
                /* The host's own environment, plus where the tree is. */
                host_env(&env, ctx->spec, st->params, NULL);
                strv_addf(&env, "KILN_TREE=%s", ctx->mountpoint);
                strv_addf(&env, "KILN_BUILD_NAME=%s", ctx->build->name);
                strv_addf(&env, "KILN_BUILD_ARCH=%s", ctx->build->arch);
                strv_addf(&env, "KILN_BUILD_ROLE=%s", ctx->build->role ? ctx->build->role : "");
        } else {
                base_env(&env, ctx);
        }
        spec_env(&env, st);
        size_t nb = bh.n;
        _cleanup_free_ struct sandbox_bind *binds = xcalloc(nb + 1, sizeof(*binds));
        for (size_t i = 0; i < bh.n; i++)
                binds[i] = (struct sandbox_bind){bh.v[i], bt.v[i], true};
        struct sandbox_opts o = base_opts(ctx);
        o.argv = argv.v;
        o.envp = env.v;
        o.pass_fds = &script;
        o.npass_fds = 1;
        o.timeout_ms = timeout_ms(st);
        const char *wd = param_str(st, "workdir");
        _cleanup_free_ char *hostwd = NULL;
        if (host) {
                o.mode = SANDBOX_HOST;
                o.network = true;
                hostwd = wd ? spec_path(ctx->spec, wd) : xstrdup(ctx->spec->dir);
                o.cwd = hostwd;
                o.nbinds = 0;
        } else {
                o.cwd = wd ? wd : "/";
                o.binds = binds;
                o.nbinds = nb;
        }
        return run_sandbox(ctx, &o, res);
}

static int run_shell(const struct step_ctx *ctx, struct sandbox_result *res) {
        return run_shell_common(ctx, false, res);
}

static int run_host_shell(const struct step_ctx *ctx, struct sandbox_result *res) {
        return run_shell_common(ctx, true, res);
}

/* ---- ansible ------------------------------------------------------------------------------ */

static void ansible_inputs(const struct spec *s, const struct spec_step *st, char ***paths, size_t *n) {
        const char *pb = param_str(st, "playbook");
        if (!pb)
                return;
        /* The playbook's whole directory: roles, group_vars, templates and
         * files next to it change what it does. */
        _cleanup_free_ char *p = spec_path(s, pb);
        char *slash = strrchr(p, '/');
        *paths = xreallocarray(*paths, *n + 1, sizeof(char *));
        (*paths)[(*n)++] = slash ? xstrndup(p, (size_t)(slash - p)) : xstrdup(".");
}

static int run_ansible(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct spec_step *st = ctx->step;
        const struct spec_build *b = ctx->build;
        /* Inventory (JSON, which Ansible's YAML inventory plugin reads): the
         * image is one host, reached with the chroot connection at the
         * sandbox's mount point, in every group the spec lists. */
        struct strbuf inv = STRBUF_INIT;
        struct json_writer w;
        json_init(&w, &inv, true);
        json_begin_object(&w);
        json_key(&w, "all");
        json_begin_object(&w);
        json_key(&w, "vars");
        json_begin_object(&w);
        json_key(&w, "ansible_connection");
        json_string(&w, "community.general.chroot");
        json_key(&w, "ansible_host");
        json_string(&w, ctx->mountpoint);
        json_key(&w, "ansible_remote_tmp");
        json_string(&w, "/tmp/.ansible");
        json_key(&w, "ansible_python_interpreter");
        json_string(&w, "auto_silent");
        json_end_object(&w);
        json_key(&w, "hosts");
        json_begin_object(&w);
        json_key(&w, b->name);
        json_begin_object(&w);
        json_end_object(&w);
        json_end_object(&w);
        json_key(&w, "children");
        json_begin_object(&w);
        const struct value *groups = value_map_get(st->params, "groups");
        const struct value *gv = value_map_get(st->params, "group_vars");
        for (size_t i = 0; groups && groups->kind == V_LIST && i < groups->n; i++) {
                const char *g = groups->items[i]->str;
                json_key(&w, g);
                json_begin_object(&w);
                json_key(&w, "hosts");
                json_begin_object(&w);
                json_key(&w, b->name);
                json_begin_object(&w);
                json_end_object(&w);
                json_end_object(&w);
                const struct value *vars = value_map_get(gv, g);
                if (vars) {
                        json_key(&w, "vars");
                        value_write_json(vars, &w, false);
                }
                json_end_object(&w);
        }
        /* group_vars of groups the host is not in still define the group */
        for (size_t i = 0; gv && gv->kind == V_MAP && i < gv->n; i++) {
                const char *g = gv->keys[i]->str;
                bool listed = streq(g, "all");
                for (size_t j = 0; groups && groups->kind == V_LIST && j < groups->n; j++)
                        listed = listed || streq(groups->items[j]->str, g);
                if (listed)
                        continue;
                json_key(&w, g);
                json_begin_object(&w);
                json_key(&w, "vars");
                value_write_json(gv->items[i], &w, false);
                json_end_object(&w);
        }
        json_end_object(&w);
        json_end_object(&w);
        json_end_object(&w);
        /* The inventory (group_vars) and extra vars may hold secrets: they
         * come in memfds, and since Ansible resolves the paths it is given
         * (a /dev/fd/N becomes "/memfd:... (deleted)"), a wrapper copies them
         * into the tree's /run — a tmpfs that exists only in the sandbox's
         * mount namespace and vanishes with it, also on kill -9 of kiln. */
        int fds[2] = {-1, -1};
        size_t nfds = 0;
        fds[nfds] = content_fd("kiln-inventory", strbuf_str(&inv), inv.len);
        if (inv.buf)
                explicit_bzero(inv.buf, inv.len);
        strbuf_free(&inv);
        if (fds[nfds] < 0)
                return fds[nfds];
        nfds++;
        const struct value *ev = value_map_get(st->params, "extra_vars");
        if (ev && ev->kind == V_MAP) {
                struct strbuf sb = STRBUF_INIT;
                struct json_writer ew;
                json_init(&ew, &sb, false);
                value_write_json(ev, &ew, false);
                fds[nfds] = content_fd("kiln-extra-vars", strbuf_str(&sb), sb.len);
                if (sb.buf)
                        explicit_bzero(sb.buf, sb.len);
                strbuf_free(&sb);
                if (fds[nfds] < 0) {
                        int r = fds[nfds];
                        close(fds[0]);
                        return r;
                }
                nfds++;
        }
        static const char wrapper[] =
                "set -e\n"
                "d=$1 ev=$2; shift 2\n"
                "umask 077\n"
                "mkdir -p \"$d\"\n"
                "cat " PASS_FD_1 " > \"$d/inventory.json\"\n"
                "if [ \"$ev\" = 1 ]; then cat " PASS_FD_2 " > \"$d/extra-vars.json\"; fi\n"
                "exec 3<&- 4<&-\n"
                "exec \"$@\"\n";
        _cleanup_free_ char *vdir = xasprintf("%s/run/kiln-ansible", ctx->mountpoint);
        _cleanup_strv_ struct strv argv = {0}, env = {0};
        strv_add_sh(&argv, wrapper, "kiln-ansible");
        strv_add(&argv, vdir);
        strv_add(&argv, nfds > 1 ? "1" : "0");
        strv_add(&argv, "ansible-playbook");
        strv_add(&argv, "-i");
        strv_addf(&argv, "%s/inventory.json", vdir);
        if (nfds > 1)
                strv_addf(&argv, "--extra-vars=@%s/extra-vars.json", vdir);
        _cleanup_strv_ struct strv tags = {0}, skip = {0};
        strv_add_value(&tags, value_map_get(st->params, "tags"));
        strv_add_value(&skip, value_map_get(st->params, "skip_tags"));
        strv_add_joined(&argv, "--tags=", &tags);
        strv_add_joined(&argv, "--skip-tags=", &skip);
        const struct value *vb = value_map_get(st->params, "verbosity");
        if (vb && vb->kind == V_NUMBER && vb->num >= 1) {
                char v[8] = "-";
                for (int i = 0; i < (int)vb->num && i < 4; i++)
                        strcat(v, "v");
                strv_add(&argv, v);
        }
        _cleanup_free_ char *pb = spec_path(ctx->spec, param_str(st, "playbook"));
        strv_add(&argv, pb);

        static const char *const drop[] = {"ANSIBLE_", NULL};
        host_env(&env, ctx->spec, st->params, drop);
        strv_addf(&env, "ANSIBLE_LOCAL_TEMP=%s/ansible-local", ctx->run_dir);
        strv_addf(&env, "ANSIBLE_HOME=%s/ansible-home", ctx->run_dir);
        strv_add(&env, "ANSIBLE_NOCOLOR=1");
        strv_add(&env, "ANSIBLE_RETRY_FILES_ENABLED=0");
        strv_add(&env, "ANSIBLE_HOST_KEY_CHECKING=0");
        strv_add(&env, "PYTHONUNBUFFERED=1");
        spec_env(&env, st);

        struct sandbox_opts o = base_opts(ctx);
        o.mode = SANDBOX_HOST;
        o.argv = argv.v;
        o.envp = env.v;
        _cleanup_free_ char *pbdir = xstrdup(pb);
        char *slash = strrchr(pbdir, '/');
        if (slash)
                *slash = 0;
        o.cwd = pbdir;
        o.pass_fds = fds;
        o.npass_fds = nfds;
        int r = run_sandbox(ctx, &o, res);
        for (size_t i = 0; i < nfds; i++)
                close(fds[i]);
        return r;
}

/* A file step whose mode others may not read (0400, 0600, 0640) writes a
 * file the spec marks private. */
static bool file_private(const struct value *params) {
        const struct value *mode = value_map_get(params, "mode");
        if (!mode || !mode->str)
                return false;
        char *end = NULL;
        unsigned long m = strtoul(mode->str, &end, 8);
        return end != mode->str && !*end && !(m & S_IROTH);
}

const struct step_runner runner_packages = {"packages", run_packages, NULL, NULL};
const struct step_runner runner_update = {"update", run_update, NULL, NULL};
const struct step_runner runner_file = {"file", run_file, file_inputs, file_private};
const struct step_runner runner_shell = {"shell", run_shell, shell_inputs, NULL};
const struct step_runner runner_host_shell = {"host-shell", run_host_shell, shell_inputs, NULL};
const struct step_runner runner_ansible = {"ansible", run_ansible, ansible_inputs, NULL};

const struct step_runner *const step_runners[] = {
        &runner_packages, &runner_update, &runner_file, &runner_shell,
        &runner_host_shell, &runner_ansible, NULL,
};

const struct step_runner *step_runner_find(const char *kind) {
        for (const struct step_runner *const *r = step_runners; *r; r++)
                if (streq((*r)->kind, kind))
                        return *r;
        return NULL;
}

/* ---- sources --------------------------------------------------------------------------- */

int run_host_isolated(char *const *argv, char *const *envp, const char *cwd, int in_fd, int out_fd,
                      uint64_t timeout_ms_, struct sandbox_result *res) {
        /* Private mounts, own PID namespace: whatever the tool mounts or
         * starts ends with it, also if kiln is killed. */
        struct proc_opts po = {.argv = argv, .envp = envp, .cwd = cwd,
                               .stdin_fd = in_fd >= 0 ? in_fd : PROC_NULL, .stdout_fd = out_fd,
                               .stderr_fd = PROC_STDOUT, .isolate = true, .timeout_ms = timeout_ms_};
        struct proc_status st;
        int r = proc_run(&po, &st);
        if (r < 0)
                return r;
        *res = (struct sandbox_result){.timed_out = st.timed_out, .elapsed_ms = st.elapsed_ms,
                                       .signal = st.signal, .exit_code = st.signal ? 0 : st.exit_code};
        return 0;
}

static void tarball_inputs(const struct spec *s, const struct spec_build *b, char ***paths, size_t *n) {
        const struct value *p = value_map_get(b->source, "path");
        if (p && p->str) {
                *paths = xreallocarray(*paths, *n + 1, sizeof(char *));
                (*paths)[(*n)++] = spec_path(s, p->str);
        }
}

/* The publishers' credentials (docs/publish.md), which no bootstrapper
 * uses: not passed to mmdebstrap or tar. */
static const char *const bootstrap_env_drop[] = {
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OS_PASSWORD", "OS_TOKEN",
        "OS_APPLICATION_CREDENTIAL_SECRET", "KILN_GLANCE_HEADERS", NULL,
};

/* Foreign architectures run through qemu-user via binfmt_misc. */
static int check_arch(const struct step_ctx *ctx) {
        const char *arch = ctx->build->arch;
        const struct arch *host = arch_host();
        const char *host_name = host ? host->name : "unknown";
        if (streq(arch, host_name))
                return 0;
        /* qemu-user's binfmt entries carry kiln's names (qemu-aarch64) */
        _cleanup_free_ char *bf = xasprintf("/proc/sys/fs/binfmt_misc/qemu-%s", arch);
        if (access(bf, F_OK) == 0)
                return 0;
        logf_(ctx->log_fd,
              "kiln: building for %s on a %s host needs qemu-user emulation, which is not set up\n"
              "kiln: (no %s). Install qemu-user-static and binfmt-support, or build on a %s machine\n",
              arch, host_name, bf, arch);
        return -ENOEXEC;
}

/* Without docs: true, dpkg never unpacks manual pages, documentation
 * (copyright files stay: licences must ship) or translations — as mkosi
 * and Debian's cloud images do. The lines go to the tree's
 * /etc/dpkg/dpkg.cfg.d/99mmdebstrap (where mmdebstrap's --dpkgopt put
 * them), so later package steps honour them too. */
static const char *const dpkg_nodocs[] = {
        "path-exclude=/usr/share/man/*",     "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*",  "path-include=/usr/share/locale/locale.alias",
        "path-exclude=/usr/share/groff/*",   "path-exclude=/usr/share/lintian/*",
};

/* The bootstrap's hooks (mmdebstrap runs them on the host, the tree as
 * $1), written as scripts into the step's run dir:
 *
 *   extract   right after the Essential packages are unpacked, before
 *             dpkg installs them: the docs filter as a dpkg config file
 *             and, removed by hand, what the unpacking put where the
 *             filter excludes. (Given as --dpkgopt, the filter makes
 *             mmdebstrap pipe every Essential package through its Python
 *             tar filter: ~1 min of a cold build.) The removal follows
 *             dpkg's rules for these patterns, so the tree is the same:
 *             tests/e2e/test_bootstrap.sh compares them. Also dpkg's
 *             unsafe I/O for the run, and the update-initramfs shim.
 *   customize at the end: the deferred initramfs builds (once per
 *             kernel), the run's helpers removed, and the .debs apt
 *             fetched handed to the package cache (*ret_incoming, entered
 *             by the caller when mmdebstrap is done).
 */
static int bootstrap_hooks(const struct step_ctx *ctx, bool legacy, bool nodocs, struct strv *argv,
                           struct strv *env, char **ret_incoming) {
        _cleanup_free_ char *dir = xasprintf("%s/hooks", ctx->run_dir);
        int r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        _cleanup_free_ char *shim = xasprintf("%s/update-initramfs", dir);
        _cleanup_free_ char *finish = xasprintf("%s/finish", dir);
        if ((r = write_file(shim, initramfs_shim, strlen(initramfs_shim), 0755, 0)) < 0 ||
            (r = write_file(finish, initramfs_finish, strlen(initramfs_finish), 0644, 0)) < 0)
                return r;

        strv_addf(env, "KILN_HOOK_DIR=%s", dir);
        _cleanup_strbuf_ struct strbuf ex = STRBUF_INIT;
        strbuf_adds(&ex, "#!/bin/sh\n"
                         "set -e\n"
                         "r=$1\n"
                         "mkdir -p \"$r" DEFER_DIR "\"\n"
                         "cp \"$KILN_HOOK_DIR/update-initramfs\" \"$KILN_HOOK_DIR/finish\" \"$r" DEFER_DIR "/\"\n"
                         "echo force-unsafe-io > \"$r/etc/dpkg/dpkg.cfg.d/kiln-unsafe-io\"\n");
        if (nodocs) {
                strbuf_adds(&ex, "cat > \"$r/etc/dpkg/dpkg.cfg.d/99mmdebstrap\" <<'EOF'\n");
                for (size_t i = 0; i < ARRAY_SIZE(dpkg_nodocs); i++)
                        strbuf_addf(&ex, "%s\n", dpkg_nodocs[i]);
                /* dpkg matches with fnmatch without FNM_PATHNAME ('*' spans
                 * '/', as find -path does); it keeps an excluded directory
                 * when an include pattern's fixed prefix begins it (every
                 * directory under /usr/share/doc), and no symlink. */
                strbuf_adds(&ex,
                            "EOF\n"
                            "cd \"$r/usr/share\"\n"
                            "for d in man info groff lintian; do\n"
                            "  if [ -d \"$d\" ]; then find \"$d\" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi\n"
                            "done\n"
                            "if [ -d locale ]; then\n"
                            "  find locale -mindepth 1 -maxdepth 1 ! -path locale/locale.alias -exec rm -rf {} +\n"
                            "fi\n"
                            "if [ -d doc ]; then find doc -mindepth 1 ! -type d ! -path 'doc/*/copyright' -delete; fi\n");
        }
        _cleanup_strbuf_ struct strbuf cu = STRBUF_INIT;
        strbuf_adds(&cu, "#!/bin/sh\n"
                         "set -e\n"
                         "r=$1\n");
        if (ctx->packages_dir) {
                *ret_incoming = pkgcache_incoming(ctx->packages_dir);
                if (!*ret_incoming)
                        return -errno;
                strv_addf(env, "KILN_INCOMING=%s", *ret_incoming);
                strbuf_adds(&cu, "for f in \"$r\"/var/cache/apt/archives/*.deb; do\n"
                                 "  if [ -f \"$f\" ]; then ln \"$f\" \"$KILN_INCOMING/\" 2>/dev/null || cp \"$f\" \"$KILN_INCOMING/\"; fi\n"
                                 "done\n");
        }
        if (!legacy)
                strbuf_adds(&cu, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
                                 "  chroot \"$r\" /bin/sh " DEFER_DIR "/finish\n"
                                 "rm -rf \"$r" DEFER_DIR "\" \"$r/etc/dpkg/dpkg.cfg.d/kiln-unsafe-io\" \\\n"
                                 "  \"$r/etc/apt/apt.conf.d/99mmdebstrap\"\n");
        _cleanup_free_ char *exp = xasprintf("%s/extract", dir);
        _cleanup_free_ char *cup = xasprintf("%s/customize", dir);
        if ((!legacy && (r = write_file(exp, ex.buf, ex.len, 0700, 0)) < 0) ||
            (r = write_file(cup, cu.buf, cu.len, 0700, 0)) < 0)
                return r;
        if (!legacy) {
                strv_addf(argv, "--extract-hook=%s", exp);
                /* mmdebstrap writes it to the tree's
                 * /etc/apt/apt.conf.d/99mmdebstrap (kiln gives no other
                 * --aptopt), which the customize hook removes */
                strv_add(argv, "--aptopt=DPkg::Path \"" DEFER_PATH "\"");
        }
        strv_addf(argv, "--customize-hook=%s", cup);
        /* the customize hook hands the fetched .debs to the cache */
        if (ctx->packages_dir)
                strv_add(argv, "--skip=essential/unlink");
        return 0;
}

static int run_debian(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct value *src = ctx->build->source;
        int r = check_arch(ctx);
        if (r < 0)
                return r;
        _cleanup_strv_ struct strv argv = {0};
        strv_add(&argv, "mmdebstrap");
        const struct value *variant = value_map_get(src, "variant");
        strv_addf(&argv, "--variant=%s", variant && variant->str ? variant->str : "apt");
        strv_addf(&argv, "--architectures=%s", arch_find(ctx->build->arch)->debian);
        _cleanup_strv_ struct strv comps = {0}, pkgs = {0};
        strv_add_value(&comps, value_map_get(src, "components"));
        strv_add_value(&pkgs, value_map_get(src, "packages"));
        strv_add_joined(&argv, "--components=", &comps);
        for (size_t i = 0; i < pkgs.n; i++)
                strv_addf(&argv, "--include=%s", pkgs.v[i]);
        const struct value *docs = value_map_get(src, "docs");
        bool nodocs = !docs || docs->kind != V_BOOL || !docs->b;
        const char *vname = variant && variant->str ? variant->str : "apt";
        /* The old command line (the filter given to mmdebstrap, one
         * initramfs per trigger, safe I/O), kept for tests/e2e/test_bootstrap.sh
         * to compare trees with; the package cache works the same. */
        const char *legacy_env = getenv("KILN_BOOTSTRAP_LEGACY");
        bool legacy = (legacy_env && streq(legacy_env, "1")) || streq(vname, "extract") ||
                      streq(vname, "custom");
        if (nodocs && legacy) {
                for (size_t i = 0; i < ARRAY_SIZE(dpkg_nodocs); i++)
                        strv_addf(&argv, "--dpkgopt=%s", dpkg_nodocs[i]);
        }
        _cleanup_free_ char *incoming = NULL;
        _cleanup_strv_ struct strv env = {0};
        host_env(&env, ctx->spec, NULL, bootstrap_env_drop);
        if ((r = bootstrap_hooks(ctx, legacy, nodocs, &argv, &env, &incoming)) < 0)
                return r;
        if (ctx->packages_dir) {
                /* Packages fetched before: in apt's archives before the
                 * download (mmdebstrap then uses them and leaves them to
                 * its final apt-get clean), so the tree is not empty. */
                _cleanup_free_ char *arch_dir = xasprintf("%s/var/cache/apt/archives", ctx->upper);
                size_t seeded = 0;
                r = mkdir_p(arch_dir, 0755);
                if (r == 0)
                        r = pkgcache_seed(ctx->packages_dir, arch_dir, &seeded);
                if (r < 0) {
                        logf_(ctx->log_fd, "kiln: package cache: %s\n", strerror(-r));
                        return r;
                }
                logf_(ctx->log_fd, "kiln: package cache: %zu file%s at hand\n", seeded,
                      seeded == 1 ? "" : "s");
                strv_add(&argv, "--skip=check/empty");
        }
        strv_add(&argv, "--mode=root");
        const char *suite = value_map_get(src, "suite")->str;
        strv_add(&argv, suite);
        strv_add(&argv, ctx->upper);
        /* A mirror holding a secret (https://user:${var.password}@host/...)
         * goes in as a sources.list line on stdin ("-"), not as an
         * argument: arguments are visible to every user. */
        const struct value *mirror = value_map_get(src, "mirror");
        _cleanup_close_ int in_fd = -1;
        if (mirror && mirror->str && value_any_sensitive(mirror)) {
                struct strbuf line = STRBUF_INIT;
                if (startswith(mirror->str, "deb ") || startswith(mirror->str, "deb-src "))
                        strbuf_adds(&line, mirror->str);
                else
                        strbuf_addf(&line, "deb %s %s %s", mirror->str, suite,
                                    comps.n ? "" : "main");
                for (size_t i = 0; i < comps.n && !startswith(mirror->str, "deb"); i++)
                        strbuf_addf(&line, "%s%s", i ? " " : "", comps.v[i]);
                strbuf_addc(&line, '\n');
                in_fd = content_fd("kiln-sources", line.buf, line.len);
                explicit_bzero(line.buf, line.len);
                strbuf_free(&line);
                if (in_fd < 0)
                        return in_fd;
                strv_add(&argv, "-");
        } else if (mirror && mirror->str) {
                strv_add(&argv, mirror->str);
        }
        logf_(ctx->log_fd, "kiln: mmdebstrap");
        for (size_t i = 1; i < argv.n; i++)
                logf_(ctx->log_fd, " %s", argv.v[i]);
        logf_(ctx->log_fd, "\n");
        if ((r = argv_check(ctx, argv.v)) < 0)
                return r;
        /* The shim first in PATH inside the tree (see "one initramfs per
         * package run"); on the host no such folder exists. */
        if (!legacy) {
                const char *path = getenv("PATH");
                for (size_t i = env.n; i-- > 0;)
                        if (startswith(env.v[i], "PATH="))
                                strv_remove(&env, i);
                strv_addf(&env, "PATH=" DEFER_DIR ":%s",
                          path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
        }
        r = run_host_isolated(argv.v, env.v, NULL, in_fd, ctx->log_fd, 0, res);
        if (r == -ENOENT)
                logf_(ctx->log_fd, "kiln: mmdebstrap is not installed (apt-get install mmdebstrap)\n");
        if (incoming) {
                size_t added = 0;
                int k = pkgcache_add_dir(ctx->packages_dir, incoming, &added);
                if (k < 0)
                        logf_(ctx->log_fd, "kiln: package cache: %s\n", strerror(-k));
                else
                        logf_(ctx->log_fd, "kiln: package cache: %zu new file%s\n", added,
                              added == 1 ? "" : "s");
        }
        return r;
}

static int run_tarball(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct value *src = ctx->build->source;
        _cleanup_free_ char *path = spec_path(ctx->spec, value_map_get(src, "path")->str);
        const struct value *want = value_map_get(src, "sha256");
        if (want && want->str) {
                char got[SHA256_HEX_LEN + 1];
                int r = hash_sha256_file(path, got);
                if (r < 0) {
                        logf_(ctx->log_fd, "kiln: cannot read %s: %s\n", path, strerror(-r));
                        return r;
                }
                if (!streq(got, want->str)) {
                        logf_(ctx->log_fd, "kiln: %s: sha256 is %s, the spec expects %s\n", path, got,
                              want->str);
                        return -EBADMSG;
                }
        }
        _cleanup_strv_ struct strv argv = {0};
        strv_add(&argv, "tar");
        strv_add(&argv, "--extract");
        strv_add(&argv, "--preserve-permissions");
        strv_add(&argv, "--numeric-owner");
        strv_add(&argv, "--xattrs");
        strv_add(&argv, "--xattrs-include=*");
        strv_addf(&argv, "--file=%s", path);
        strv_addf(&argv, "--directory=%s", ctx->upper);
        int r = argv_check(ctx, argv.v);
        if (r < 0)
                return r;
        _cleanup_strv_ struct strv env = {0};
        host_env(&env, ctx->spec, NULL, bootstrap_env_drop);
        return run_host_isolated(argv.v, env.v, NULL, -1, ctx->log_fd, 0, res);
}

/* Source kinds. An RPM-family source fits here the same way: `dnf
 * --installroot=UPPER --releasever=N install @core ...` run through
 * run_host_isolated, with its kind and fields added to spec/kinds.c. It is
 * not included because no RPM repository is reachable from where kiln is
 * developed and tested, and an untested bootstrapper would be a stub. */
static const struct source_runner source_runner_debian = {"debian", run_debian, NULL};
static const struct source_runner source_runner_ubuntu = {"ubuntu", run_debian, NULL};
static const struct source_runner source_runner_tarball = {"tarball", run_tarball, tarball_inputs};

const struct source_runner *const source_runners[] = {
        &source_runner_debian, &source_runner_ubuntu, &source_runner_tarball, NULL,
};

const struct source_runner *source_runner_find(const char *kind) {
        for (const struct source_runner *const *r = source_runners; kind && *r; r++)
                if (streq((*r)->kind, kind))
                        return *r;
        return NULL;
}

/* The runner of b's source (its `type:`); NULL when it has none. */
static const struct source_runner *source_runner_of(const struct spec_build *b) {
        const struct value *type = value_map_get(b->source, "type");
        return type && type->str ? source_runner_find(type->str) : NULL;
}

int source_run(const struct step_ctx *ctx, struct sandbox_result *res) {
        const struct value *type = value_map_get(ctx->build->source, "type");
        if (!type || !type->str)
                return -EINVAL;
        const struct source_runner *r = source_runner_of(ctx->build);
        if (!r) {
                logf_(ctx->log_fd, "kiln: source type %s cannot be built\n", type->str);
                return -EOPNOTSUPP;
        }
        return r->run(ctx, res);
}

void source_inputs(const struct spec *s, const struct spec_build *b, char ***paths, size_t *n) {
        const struct source_runner *r = source_runner_of(b);
        if (r && r->inputs)
                r->inputs(s, b, paths, n);
}
