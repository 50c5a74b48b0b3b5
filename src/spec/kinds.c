/* SPDX-License-Identifier: Apache-2.0 */
#include "spec/kinds.h"

#include "base/suggest.h"

/* ---- step kinds --------------------------------------------------------- */

const struct field step_common_fields[] = {
        {"name", FT_STRING, 0, NULL, NULL, "a label shown in progress and logs"},
        {"network", FT_BOOL, 0, NULL, NULL, "false runs the step without network (default true)"},
        {"only", FT_STRINGS, 0, NULL, NULL, "run only in builds whose name matches a glob (or a list)"},
        {"except", FT_STRINGS, 0, NULL, NULL, "skip in builds whose name matches a glob (or a list)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* Reports an error unless exactly one (or, with at_most, at most one) of
 * keys is present. */
static unsigned one_of(const struct value *p, const char *const *keys, bool at_most,
                       const char *what, struct diag_list *d) {
        size_t found = 0;
        const struct value *second = NULL;
        struct strbuf names = STRBUF_INIT;
        for (const char *const *k = keys; *k; k++) {
                if (k != keys)
                        strbuf_adds(&names, k[1] ? ", " : " or ");
                strbuf_addf(&names, "'%s'", *k);
                const struct value *kv = value_map_key(p, *k);
                if (kv && ++found == 2)
                        second = kv;
        }
        unsigned errs = 0;
        if (found == 0 && !at_most) {
                diag_error(d, &p->mark, 1, "%s: needs one of %s", what, strbuf_str(&names));
                errs++;
        } else if (found > 1) {
                diag_error(d, &second->mark, value_span(second),
                           "%s: use only one of %s", what, strbuf_str(&names));
                errs++;
        }
        strbuf_free(&names);
        return errs;
}

/* refresh: of the steps that read package lists (provision/refresh.h) */
static const char *const refresh_allowed[] = {"daily", "weekly", "release", "never", NULL};

static const struct field packages_fields[] = {
        {"install", FT_STRINGS, 0, NULL, NULL, "packages to install"},
        {"remove", FT_STRINGS, 0, NULL, NULL, "packages to remove (purged)"},
        {"recommends", FT_BOOL, 0, NULL, NULL, "install recommended packages (default false)"},
        {"refresh", FT_STRING, 0, NULL, refresh_allowed,
         "fetch fresh package lists and re-run: daily, weekly, release (the mirror's Release changed) or never (default)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static unsigned packages_validate(const struct value *p, const char *what, struct diag_list *d) {
        if (!value_map_get(p, "install") && !value_map_get(p, "remove")) {
                struct diag *dg = diag_error(d, &p->mark, 1, "%s: nothing to do", what);
                diag_hint(dg, "give 'install:' or 'remove:' a list of packages");
                return 1;
        }
        return 0;
}

static const struct step_kind step_packages = {
        "packages", "install or remove distribution packages", packages_fields,
        "install", FT_STRINGS, packages_validate,
};

static const struct field update_fields[] = {
        {"autoremove", FT_BOOL, 0, NULL, NULL, "remove packages no longer needed (default true)"},
        {"refresh", FT_STRING, 0, NULL, refresh_allowed,
         "re-run although nothing changed: daily (default), weekly, release (the mirror's Release changed) or never"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct step_kind step_update = {
        "update", "upgrade every installed package (apt full-upgrade)", update_fields,
        NULL, FT_ANY, NULL,
};

static const struct field file_fields[] = {
        {"path", FT_ABS_PATH, F_REQUIRED, NULL, NULL, "destination in the image"},
        {"content", FT_STRING, 0, NULL, NULL, "inline file content"},
        {"source", FT_STRING, 0, NULL, NULL, "host file or directory, relative to the spec"},
        {"mode", FT_MODE, 0, NULL, NULL, "permissions, e.g. \"0644\""},
        {"owner", FT_STRING, 0, NULL, NULL, "user[:group] in the image (default root:root)"},
        {"template", FT_BOOL, 0, NULL, NULL, "evaluate ${...} in the source file's content"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

bool tree_path_is_safe(const char *path) {
        if (path[0] != '/')
                return false;
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                if (e - p == 2 && p[0] == '.' && p[1] == '.')
                        return false;
                p = e;
        }
        return true;
}

static unsigned file_validate(const struct value *p, const char *what, struct diag_list *d) {
        static const char *const keys[] = {"content", "source", NULL};
        unsigned errs = one_of(p, keys, false, what, d);
        const struct value *path = value_map_get(p, "path");
        if (path && !path->invalid && path->kind == V_STRING && path->str[0] == '/' &&
            !tree_path_is_safe(path->str)) {
                diag_error(d, &path->mark, value_span(path),
                           "%s: path '%s' escapes the image tree ('..')", what, value_shown(path));
                errs++;
        }
        return errs;
}

static const struct step_kind step_file = {
        "file", "copy a file or directory into the image, or write inline content", file_fields,
        NULL, FT_ANY, file_validate,
};

/* shell and host-shell share their parameters but for where workdir is. */
#define SHELL_FIELDS(workdir_type, workdir_doc)                                                  \
        {"inline", FT_STRINGS, 0, NULL, NULL, "commands, run in one shell with -e"},               \
        {"script", FT_STRING, 0, NULL, NULL, "a script file on the host, relative to the spec"},   \
        {"scripts", FT_STRING_LIST, 0, NULL, NULL, "several script files, run in order"},          \
        {"env", FT_SCALAR_MAP, 0, NULL, NULL, "environment variables"},                            \
        {"workdir", workdir_type, 0, NULL, NULL, workdir_doc},                                     \
        {"interpreter", FT_STRING, 0, NULL, NULL, "program that runs the script (default /bin/sh -e)"}, \
        {"timeout", FT_DURATION, 0, NULL, NULL, "kill the step after this long"},                  \
        {"retries", FT_INT, F_RANGE_SMALL, NULL, NULL, "run again this many times on failure, with backoff (0-100)"}, \
        {"valid_exit_codes", FT_INT_LIST, F_RANGE_BYTE, NULL, NULL, "exit codes that count as success (default [0]; 0-255)"}, \
        {NULL, 0, 0, NULL, NULL, NULL}

static const struct field shell_fields[] = {
        SHELL_FIELDS(FT_ABS_PATH, "working directory inside the image (default /)"),
};

static const struct field host_shell_fields[] = {
        SHELL_FIELDS(FT_STRING, "working directory on the host (default: the spec's directory)"),
};

static unsigned shell_validate(const struct value *p, const char *what, struct diag_list *d) {
        static const char *const keys[] = {"inline", "script", "scripts", NULL};
        return one_of(p, keys, false, what, d);
}

static const struct step_kind step_shell = {
        "shell", "run commands inside the image, in the build sandbox", shell_fields,
        "inline", FT_STRINGS, shell_validate,
};

static const struct step_kind step_host_shell = {
        "host-shell", "run commands on the build host (like Packer's shell-local)",
        host_shell_fields, "inline", FT_STRINGS, shell_validate,
};

static const struct field ansible_fields[] = {
        {"playbook", FT_STRING, F_REQUIRED, NULL, NULL, "playbook file, relative to the spec"},
        {"groups", FT_STRING_LIST, 0, NULL, NULL, "inventory groups the image's host is in"},
        {"group_vars", FT_MAP, 0, NULL, NULL, "variables per inventory group"},
        {"extra_vars", FT_MAP, 0, NULL, NULL, "variables passed with --extra-vars"},
        {"tags", FT_STRING_LIST, 0, NULL, NULL, "run only tasks with these tags"},
        {"skip_tags", FT_STRING_LIST, 0, NULL, NULL, "skip tasks with these tags"},
        {"verbosity", FT_INT, F_RANGE_LEVEL, NULL, NULL, "0-4, like -v … -vvvv"},
        {"env", FT_SCALAR_MAP, 0, NULL, NULL, "environment for ansible-playbook (e.g. ANSIBLE_ROLES_PATH)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static unsigned ansible_validate(const struct value *p, const char *what, struct diag_list *d) {
        unsigned errs = 0;
        const struct value *gv = value_map_get(p, "group_vars");
        if (gv && gv->kind == V_MAP && !gv->invalid) {
                for (size_t i = 0; i < gv->n; i++) {
                        if (!gv->items[i]->invalid && gv->items[i]->kind != V_MAP) {
                                diag_error(d, &gv->items[i]->mark, 1,
                                           "%s: group_vars.%s: expected a map of variables, got a %s",
                                           what, gv->keys[i]->str,
                                           value_kind_name(gv->items[i]->kind));
                                errs++;
                        }
                }
        }
        const struct value *vb = value_map_get(p, "verbosity");
        if (vb && vb->kind == V_NUMBER && vb->num > 4) {
                diag_error(d, &vb->mark, value_span(vb), "%s: verbosity must be 0-4", what);
                errs++;
        }
        return errs;
}

static const struct step_kind step_ansible = {
        "ansible", "run an Ansible playbook against the image (chroot connection)",
        ansible_fields, "playbook", FT_STRING, ansible_validate,
};

const struct step_kind *const step_kinds[] = {
        &step_packages, &step_update, &step_file, &step_shell,
        &step_ansible, &step_host_shell, NULL,
};

const struct step_kind *step_kind_find(const char *name) {
        for (const struct step_kind *const *k = step_kinds; *k; k++)
                if (streq((*k)->name, name))
                        return *k;
        return NULL;
}

/* ---- source kinds ------------------------------------------------------- */

static const char *const debian_variants[] = {
        "extract", "custom", "essential", "apt", "required", "minbase",
        "buildd", "important", "debootstrap", "standard", NULL,
};

static const struct field debian_fields[] = {
        {"suite", FT_STRING, F_REQUIRED, NULL, NULL, "release, e.g. bookworm (Ubuntu: jammy)"},
        {"variant", FT_STRING, 0, NULL, debian_variants, "mmdebstrap variant (default apt)"},
        {"components", FT_STRING_LIST, 0, NULL, NULL, "archive components (default [main])"},
        {"packages", FT_STRINGS, 0, NULL, NULL, "packages installed with the base system"},
        {"mirror", FT_STRING, 0, NULL, NULL, "mirror URL (default: the host's apt sources)"},
        {"docs", FT_BOOL, 0, NULL, NULL,
         "keep manual pages, documentation and translations (default false)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct source_kind source_debian = {
        "debian", "a Debian suite, bootstrapped with mmdebstrap", debian_fields, NULL,
};

static const struct source_kind source_ubuntu = {
        "ubuntu", "an Ubuntu suite, bootstrapped with mmdebstrap", debian_fields, NULL,
};

static const struct field tarball_fields[] = {
        {"path", FT_STRING, F_REQUIRED, NULL, NULL, "root filesystem tarball, relative to the spec"},
        {"sha256", FT_STRING, 0, NULL, NULL, "expected checksum of the tarball"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static unsigned tarball_validate(const struct value *p, const char *what, struct diag_list *d) {
        const struct value *h = value_map_get(p, "sha256");
        if (!h || h->invalid || h->kind != V_STRING)
                return 0;
        bool ok = h->len == 64;
        for (size_t i = 0; ok && i < h->len; i++)
                ok = strchr("0123456789abcdef", h->str[i]) != NULL;
        if (!ok) {
                diag_error(d, &h->mark, value_span(h),
                           "%s: sha256 must be 64 lowercase hex digits", what);
                return 1;
        }
        return 0;
}

static const struct source_kind source_tarball = {
        "tarball", "a root filesystem tarball (tar, optionally gzip/xz/zstd)", tarball_fields,
        tarball_validate,
};

const struct source_kind *const source_kinds[] = {
        &source_debian, &source_ubuntu, &source_tarball, NULL,
};

const struct source_kind *source_kind_find(const char *name) {
        for (const struct source_kind *const *k = source_kinds; *k; k++)
                if (streq((*k)->name, name))
                        return *k;
        return NULL;
}
