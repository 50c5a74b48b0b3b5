/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The check kinds: for each, the options it takes (a schema table), what
 * the schema cannot say (validate), and the POSIX sh snippet that checks it
 * inside the target (script).
 *
 * Snippets run with the runner's prelude (run.c): `kiln_r STATUS TEXT...`
 * reports one assertion, `kiln_ftype PATH` names a file's type. They use
 * only what a minimal Debian-family system has (sh, coreutils, grep, dpkg,
 * getent, systemctl when systemd is installed) and read /proc for what
 * needs a running system. Every value from the spec reaches the shell
 * single-quoted (check_sh_quote); messages are assembled from quoted
 * pieces and observed values, so a message can never become code.
 */
#include "check/check.h"

#include <regex.h>

/* ---- helpers -------------------------------------------------------------------------------- */

void check_sh_quote(struct strbuf *out, const char *s) {
        strbuf_addc(out, '\'');
        for (; *s; s++) {
                if (*s == '\'')
                        strbuf_adds(out, "'\\''");
                else
                        strbuf_addc(out, *s);
        }
        strbuf_addc(out, '\'');
}

static const char *opt_str(const struct check *c, const char *key) {
        const struct value *v = value_map_get(c->params, key);
        return v && v->str && v->kind != V_NULL ? v->str : NULL;
}

/* -1 when not given */
static int opt_bool(const struct check *c, const char *key) {
        const struct value *v = value_map_get(c->params, key);
        return v && v->kind == V_BOOL ? v->b : -1;
}

static long long opt_int(const struct check *c, const char *key, long long def) {
        const struct value *v = value_map_get(c->params, key);
        return v && v->kind == V_NUMBER ? (long long)v->num : def;
}

/* The items of a string-or-list option (borrowed; *n = 0 when absent). */
static const struct value *const *opt_strings(const struct check *c, const char *key, size_t *n) {
        const struct value *v = value_map_get(c->params, key);
        static _Thread_local const struct value *one[1];
        if (!v || v->kind == V_NULL) {
                *n = 0;
                return NULL;
        }
        if (v->kind == V_LIST) {
                *n = v->n;
                return (const struct value *const *)v->items;
        }
        one[0] = v;
        *n = 1;
        return one;
}

/* `kiln_r STATUS` followed by the words of a message. */
#define R(out, status) strbuf_adds(out, "kiln_r " status " ")

static void q(struct strbuf *out, const char *s) { check_sh_quote(out, s); }

/* A "/regex/" entry (goss's convention) rather than a literal. */
static bool is_regex(const char *s, const char **ret_re, size_t *ret_len) {
        size_t n = strlen(s);
        if (n < 3 || s[0] != '/' || s[n - 1] != '/')
                return false;
        *ret_re = s + 1;
        *ret_len = n - 2;
        return true;
}

/* Appends `grep -q{F|E} -e PATTERN` for a contains-style entry. */
static void grep_cmd(struct strbuf *out, const char *entry, bool force_regex) {
        const char *re;
        size_t n;
        if (force_regex) {
                strbuf_adds(out, "grep -qE -e ");
                q(out, entry);
        } else if (is_regex(entry, &re, &n)) {
                _cleanup_free_ char *r = xstrndup(re, n);
                strbuf_adds(out, "grep -qE -e ");
                q(out, r);
        } else {
                strbuf_adds(out, "grep -qF -e ");
                q(out, entry);
        }
}

/* Validates contains-style entries: one line each; regexes compile. */
static void validate_patterns(const struct value *params, const char *key, bool all_regex,
                              const char *what, struct diag_list *d) {
        const struct value *v = value_map_get(params, key);
        if (!v)
                return;
        size_t n = v->kind == V_LIST ? v->n : 1;
        for (size_t i = 0; i < n; i++) {
                const struct value *it = v->kind == V_LIST ? v->items[i] : v;
                if (!it->str)
                        continue;
                if (strchr(it->str, '\n')) {
                        struct diag *dg = diag_error(d, &it->mark, value_span(it),
                                                     "%s: %s: an entry is matched against one line; this one has several",
                                                     what, key);
                        diag_hint(dg, "give each line as its own list entry");
                        continue;
                }
                const char *re = it->str;
                size_t len = strlen(re);
                if (!all_regex && !is_regex(it->str, &re, &len))
                        continue;
                _cleanup_free_ char *r = xstrndup(re, len);
                regex_t rx;
                int e = regcomp(&rx, r, REG_EXTENDED | REG_NOSUB);
                if (e != 0) {
                        char msg[128];
                        regerror(e, &rx, msg, sizeof(msg));
                        diag_error(d, &it->mark, value_span(it), "%s: %s: invalid regular expression: %s",
                                   what, key, msg);
                        continue;
                }
                regfree(&rx);
        }
}

/* A name that reaches the shell quoted anyway, but that must be one word
 * for the tools (systemctl, getent, dpkg-query). */
static bool plain_word(const char *s, const char *extra) {
        if (!*s)
                return false;
        for (const char *c = s; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9') &&
                    !strchr(extra, *c))
                        return false;
        return true;
}

static void validate_word(const struct value *params, const char *key, const char *extra,
                          const char *example, const char *what, struct diag_list *d) {
        const struct value *v = value_map_get(params, key);
        if (v && v->str && !plain_word(v->str, extra))
                diag_error(d, &v->mark, value_span(v), "%s: %s: '%s' is not %s", what, key, v->str,
                           example);
}

/* ---- file ----------------------------------------------------------------------------------- */

static const char *const file_types[] = {"file", "directory", "symlink", NULL};

static const struct field file_fields[] = {
        {"path", FT_ABS_PATH, F_REQUIRED, NULL, NULL, "the file, directory or link"},
        {"exists", FT_BOOL, 0, NULL, NULL, "true (default) or false"},
        {"type", FT_STRING, 0, NULL, file_types, "file, directory or symlink (goss: filetype)"},
        {"mode", FT_MODE, 0, NULL, NULL, "permission bits, \"0644\""},
        {"owner", FT_STRING, 0, NULL, NULL, "user name or uid"},
        {"group", FT_STRING, 0, NULL, NULL, "group name or gid"},
        {"contains", FT_STRINGS, 0, NULL, NULL, "lines to find: literal text, or /regex/"},
        {"matches", FT_STRINGS, 0, NULL, NULL, "extended regular expressions to find"},
        {"sha256", FT_STRING, 0, NULL, NULL, "the content's SHA-256"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static void file_validate(const struct value *p, const char *what, struct diag_list *d) {
        const struct value *ex = value_map_get(p, "exists");
        if (ex && ex->kind == V_BOOL && !ex->b)
                for (size_t i = 0; i < p->n; i++)
                        if (!streq(p->keys[i]->str, "path") && !streq(p->keys[i]->str, "exists"))
                                diag_error(d, &p->keys[i]->mark, value_span(p->keys[i]),
                                           "%s: '%s' cannot be checked on a file that must not exist",
                                           what, p->keys[i]->str);
        validate_patterns(p, "contains", false, what, d);
        validate_patterns(p, "matches", true, what, d);
        const struct value *h = value_map_get(p, "sha256");
        if (h && h->str) {
                bool ok = strlen(h->str) == 64;
                for (const char *c = h->str; ok && *c; c++)
                        ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
                if (!ok)
                        diag_error(d, &h->mark, value_span(h), "%s: sha256: expected 64 lower-case hex digits",
                                   what);
        }
}

static void file_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        strbuf_adds(o, "p=");
        q(o, c->target);
        strbuf_adds(o, "\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then\n");
        if (opt_bool(c, "exists") == 0) {
                R(o, "fail");
                strbuf_adds(o, "'exists (a '\"$(kiln_ftype \"$p\")\"'), expected no such file'\nelse\n");
                R(o, "ok");
                strbuf_adds(o, "'does not exist'\nfi\n");
                return;
        }
        strbuf_adds(o, "t=$(kiln_ftype \"$p\")\n");
        const char *type = opt_str(c, "type");
        if (type) {
                strbuf_addf(o, "if [ \"$t\" = %s ]; then ", type);
                R(o, "ok");
                strbuf_addf(o, "'is a %s'; else ", type);
                R(o, "fail");
                strbuf_addf(o, "'is a '\"$t\"', not a %s'; fi\n", type);
        } else {
                R(o, "ok");
                strbuf_adds(o, "'exists ('\"$t\"')'\n");
        }
        const char *mode = opt_str(c, "mode");
        unsigned m;
        if (mode && parse_mode(mode, &m) == 0) {
                strbuf_addf(o, "m=$(stat -c %%a \"$p\")\nif [ \"$m\" = %o ]; then ", m);
                R(o, "ok");
                strbuf_addf(o, "'mode %04o'; else ", m);
                R(o, "fail");
                strbuf_addf(o, "\"mode is $(printf %%04o 0$m 2>/dev/null || echo $m), expected %04o\"; fi\n", m);
        }
        static const struct {
                const char *key, *fmt;
        } ids[] = {{"owner", "%U %u"}, {"group", "%G %g"}};
        for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
                const char *want = opt_str(c, ids[i].key);
                if (!want)
                        continue;
                strbuf_addf(o, "u=$(stat -c '%s' \"$p\")\ncase \" $u \" in *' '", ids[i].fmt);
                q(o, want);
                strbuf_adds(o, "' '*) ");
                R(o, "ok");
                q(o, ids[i].key);
                strbuf_adds(o, "' '");
                q(o, want);
                strbuf_adds(o, ";; *) ");
                R(o, "fail");
                strbuf_addf(o, "'%s is '\"${u%%%% *}\"', expected '", ids[i].key);
                q(o, want);
                strbuf_adds(o, ";; esac\n");
        }
        static const char *const pats[] = {"contains", "matches"};
        for (size_t k = 0; k < ARRAY_SIZE(pats); k++) {
                size_t n;
                const struct value *const *v = opt_strings(c, pats[k], &n);
                for (size_t i = 0; i < n; i++) {
                        const char *e = v[i]->str;
                        const char *verb = k ? "matches" : "contains";
                        const char *not = k ? "does not match" : "does not contain";
                        strbuf_adds(o, "if [ ! -f \"$p\" ]; then ");
                        R(o, "fail");
                        strbuf_addf(o, "'is a '\"$t\"', cannot check what it %s'; elif ", k ? "matches" : "contains");
                        grep_cmd(o, e, k == 1);
                        strbuf_adds(o, " \"$p\"; then ");
                        R(o, "ok");
                        strbuf_addf(o, "'%s '", verb);
                        q(o, e);
                        strbuf_adds(o, "; else ");
                        R(o, "fail");
                        strbuf_addf(o, "'%s '", not);
                        q(o, e);
                        strbuf_adds(o, "; fi\n");
                }
        }
        const char *sum = opt_str(c, "sha256");
        if (sum) {
                strbuf_addf(o, "h=$(sha256sum < \"$p\" 2>/dev/null | cut -d' ' -f1)\n"
                               "if [ \"$h\" = %s ]; then ", sum);
                R(o, "ok");
                strbuf_adds(o, "'sha256 matches'; else ");
                R(o, "fail");
                strbuf_adds(o, "\"sha256 is ${h:-unreadable}\"; fi\n");
        }
        strbuf_adds(o, "else\n");
        R(o, "fail");
        strbuf_adds(o, "'does not exist'\nfi\n");
}

/* ---- package -------------------------------------------------------------------------------- */

static const struct field package_fields[] = {
        {"name", FT_STRING, F_REQUIRED, NULL, NULL, "the package"},
        {"installed", FT_BOOL, 0, NULL, NULL, "true (default) or false"},
        {"version", FT_STRINGS, 0, NULL, NULL, "constraints like \">= 1.2\" (dpkg's ordering)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct {
        const char *op, *dpkg;
} version_ops[] = {
        {">=", "ge"}, {"<=", "le"}, {">>", "gt"}, {"<<", "lt"}, {"==", "eq"},
        {"!=", "ne"}, {">", "gt"},  {"<", "lt"},  {"=", "eq"},
};

/* "OP VERSION" or "VERSION" (equal). Returns dpkg's operator name and the
 * version (owned), or NULL when s is not a constraint. */
static const char *parse_constraint(const char *s, char **ret_version) {
        while (*s == ' ')
                s++;
        const char *op = "eq";
        for (size_t i = 0; i < ARRAY_SIZE(version_ops); i++) {
                const char *rest = startswith(s, version_ops[i].op);
                if (rest) {
                        op = version_ops[i].dpkg;
                        s = rest;
                        break;
                }
        }
        while (*s == ' ')
                s++;
        size_t n = strlen(s);
        while (n && s[n - 1] == ' ')
                n--;
        if (!n || !(s[0] >= '0' && s[0] <= '9'))
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!plain_word((char[]){s[i], 0}, ".+~:-"))
                        return NULL;
        *ret_version = xstrndup(s, n);
        return op;
}

static void package_validate(const struct value *p, const char *what, struct diag_list *d) {
        validate_word(p, "name", "+.-:", "a package name", what, d);
        const struct value *v = value_map_get(p, "version");
        const struct value *inst = value_map_get(p, "installed");
        if (v && inst && inst->kind == V_BOOL && !inst->b)
                diag_error(d, &v->mark, value_span(v), "%s: version: a package that must not be installed has no version",
                           what);
        size_t n = v ? (v->kind == V_LIST ? v->n : 1) : 0;
        for (size_t i = 0; i < n; i++) {
                const struct value *it = v->kind == V_LIST ? v->items[i] : v;
                char *ver = NULL;
                if (!it->str || !parse_constraint(it->str, &ver)) {
                        struct diag *dg = diag_error(d, &it->mark, value_span(it),
                                                     "%s: version: '%s' is not a version constraint",
                                                     what, it->str ? it->str : "");
                        diag_hint(dg, "write OPERATOR VERSION, e.g. \">= 1.2\", \"<< 2:0\", \"= 1.2-3\" (operators: >=, <=, >, <, >>, <<, =, !=)");
                }
                free(ver);
        }
}

static void package_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        strbuf_adds(o, "if ! command -v dpkg-query >/dev/null 2>&1; then ");
        R(o, "fail");
        strbuf_adds(o, "'no dpkg-query in the image: package checks need a Debian-family system'\nelse\n"
                       "s=$(dpkg-query -W -f='${db:Status-Status} ${Version}' ");
        q(o, c->target);
        strbuf_adds(o, " 2>/dev/null)\ncase \"$s\" in\ninstalled\\ *) v=${s#installed }\n");
        if (opt_bool(c, "installed") == 0) {
                R(o, "fail");
                strbuf_adds(o, "\"installed ($v), expected not installed\" ;;\n*) ");
                R(o, "ok");
                strbuf_adds(o, "'not installed' ;;\nesac\nfi\n");
                return;
        }
        R(o, "ok");
        strbuf_adds(o, "\"installed ($v)\"\n");
        size_t n;
        const struct value *const *v = opt_strings(c, "version", &n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *ver = NULL;
                const char *op = parse_constraint(v[i]->str, &ver);
                if (!op)
                        continue;
                strbuf_addf(o, "if dpkg --compare-versions \"$v\" %s ", op);
                q(o, ver);
                strbuf_adds(o, "; then ");
                R(o, "ok");
                strbuf_adds(o, "\"version $v\" ");
                q(o, v[i]->str);
                strbuf_adds(o, "; else ");
                R(o, "fail");
                strbuf_adds(o, "\"version $v is not\" ");
                q(o, v[i]->str);
                strbuf_adds(o, "; fi\n");
        }
        strbuf_adds(o, ";;\n*) ");
        R(o, "fail");
        strbuf_adds(o, "'not installed' ;;\nesac\nfi\n");
}

/* ---- service -------------------------------------------------------------------------------- */

static const struct field service_fields[] = {
        {"name", FT_STRING, F_REQUIRED, NULL, NULL, "the systemd unit (.service may be left out)"},
        {"enabled", FT_BOOL, 0, NULL, NULL, "starts at boot (default true)"},
        {"running", FT_BOOL, 0, NULL, NULL, "active now (default true; needs a booted guest)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static void service_validate(const struct value *p, const char *what, struct diag_list *d) {
        validate_word(p, "name", "@._:-\\", "a unit name", what, d);
}

static void service_script(const struct check *c, bool booted, struct strbuf *o) {
        int enabled = opt_bool(c, "enabled"), running = opt_bool(c, "running");
        if (enabled < 0 && running < 0)
                enabled = running = 1; /* the short form: enabled, and running when booted */
        strbuf_adds(o, "u=");
        q(o, c->target);
        strbuf_adds(o, "\nif ! command -v systemctl >/dev/null 2>&1; then ");
        R(o, "fail");
        strbuf_adds(o, "'no systemctl in the image: service checks need systemd'\nelse\n");
        if (enabled >= 0) {
                strbuf_adds(o, "st=$(systemctl is-enabled \"$u\" 2>/dev/null); rc=$?\n");
                if (enabled) {
                        strbuf_adds(o, "if [ $rc = 0 ]; then ");
                        R(o, "ok");
                        strbuf_adds(o, "\"enabled ($st)\"; else ");
                        R(o, "fail");
                        strbuf_adds(o, "\"not enabled (${st:-no such unit})\"; fi\n");
                } else {
                        strbuf_adds(o, "if [ $rc != 0 ]; then ");
                        R(o, "ok");
                        strbuf_adds(o, "\"not enabled (${st:-no such unit})\"; else ");
                        R(o, "fail");
                        strbuf_adds(o, "\"enabled ($st), expected disabled\"; fi\n");
                }
        }
        if (running >= 0 && !booted) {
                R(o, "skip");
                strbuf_adds(o, "'running: needs a booted guest'\n");
        } else if (running >= 0) {
                strbuf_adds(o, "st=$(systemctl is-active \"$u\" 2>/dev/null)\n");
                strbuf_addf(o, "if [ \"$st\" %s active ]; then ", running ? "=" : "!=");
                R(o, "ok");
                strbuf_adds(o, "\"$st\"; else ");
                R(o, "fail");
                strbuf_addf(o, "\"%s (${st:-unknown})\"; fi\n", running ? "not running" : "running, expected stopped");
        }
        strbuf_adds(o, "fi\n");
}

/* ---- user and group ------------------------------------------------------------------------- */

static const struct field user_fields[] = {
        {"name", FT_STRING, F_REQUIRED, NULL, NULL, "the user"},
        {"exists", FT_BOOL, 0, NULL, NULL, "true (default) or false"},
        {"uid", FT_INT, F_RANGE_ID, NULL, NULL, "the user id"},
        {"gid", FT_INT, F_RANGE_ID, NULL, NULL, "the primary group id"},
        {"groups", FT_STRING_LIST, 0, NULL, NULL, "groups the user is in (at least)"},
        {"home", FT_ABS_PATH, 0, NULL, NULL, "home directory"},
        {"shell", FT_STRING, 0, NULL, NULL, "login shell"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static const struct field group_fields[] = {
        {"name", FT_STRING, F_REQUIRED, NULL, NULL, "the group"},
        {"exists", FT_BOOL, 0, NULL, NULL, "true (default) or false"},
        {"gid", FT_INT, F_RANGE_ID, NULL, NULL, "the group id"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static void account_validate(const struct value *p, const char *what, struct diag_list *d) {
        validate_word(p, "name", "._-$", "a user or group name", what, d);
        const struct value *ex = value_map_get(p, "exists");
        if (ex && ex->kind == V_BOOL && !ex->b)
                for (size_t i = 0; i < p->n; i++)
                        if (!streq(p->keys[i]->str, "name") && !streq(p->keys[i]->str, "exists"))
                                diag_error(d, &p->keys[i]->mark, value_span(p->keys[i]),
                                           "%s: '%s' cannot be checked on an account that must not exist",
                                           what, p->keys[i]->str);
}

/* Field N of the getent entry in $e against an expected value. */
static void entry_field(struct strbuf *o, const char *label, int field, const char *want) {
        strbuf_addf(o, "x=$(printf '%%s' \"$e\" | cut -d: -f%d)\nif [ \"$x\" = ", field);
        q(o, want);
        strbuf_adds(o, " ]; then ");
        R(o, "ok");
        strbuf_addf(o, "'%s '\"$x\"; else ", label);
        R(o, "fail");
        strbuf_addf(o, "'%s is '\"$x\"', expected '", label);
        q(o, want);
        strbuf_adds(o, "; fi\n");
}

static void account_script(const struct check *c, const char *db, struct strbuf *o) {
        strbuf_addf(o, "e=$(getent %s ", db);
        q(o, c->target);
        strbuf_adds(o, " 2>/dev/null)\nif [ -n \"$e\" ]; then\n");
        if (opt_bool(c, "exists") == 0) {
                R(o, "fail");
                strbuf_adds(o, "'exists, expected no such account'\nelse ");
                R(o, "ok");
                strbuf_adds(o, "'does not exist'\nfi\n");
                return;
        }
        R(o, "ok");
        strbuf_adds(o, "'exists'\n");
        bool user = streq(db, "passwd");
        char num[32];
        if (user && opt_int(c, "uid", -1) >= 0) {
                snprintf(num, sizeof(num), "%lld", opt_int(c, "uid", -1));
                entry_field(o, "uid", 3, num);
        }
        if (opt_int(c, "gid", -1) >= 0) {
                snprintf(num, sizeof(num), "%lld", opt_int(c, "gid", -1));
                entry_field(o, "gid", user ? 4 : 3, num);
        }
        if (user && opt_str(c, "home"))
                entry_field(o, "home", 6, opt_str(c, "home"));
        if (user && opt_str(c, "shell"))
                entry_field(o, "shell", 7, opt_str(c, "shell"));
        size_t n;
        const struct value *const *g = user ? opt_strings(c, "groups", &n) : NULL;
        if (g && n) {
                strbuf_adds(o, "gs=\" $(id -Gn ");
                q(o, c->target);
                strbuf_adds(o, " 2>/dev/null) \"\n");
                for (size_t i = 0; i < n; i++) {
                        strbuf_adds(o, "case \"$gs\" in *' '");
                        q(o, g[i]->str);
                        strbuf_adds(o, "' '*) ");
                        R(o, "ok");
                        strbuf_adds(o, "'in group '");
                        q(o, g[i]->str);
                        strbuf_adds(o, ";; *) ");
                        R(o, "fail");
                        strbuf_adds(o, "'not in group '");
                        q(o, g[i]->str);
                        strbuf_adds(o, "\" (groups:$gs)\";; esac\n");
                }
        }
        strbuf_adds(o, "else ");
        R(o, "fail");
        strbuf_adds(o, "'does not exist'\nfi\n");
}

static void user_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        account_script(c, "passwd", o);
}

static void group_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        account_script(c, "group", o);
}

/* ---- command -------------------------------------------------------------------------------- */

static const struct field command_fields[] = {
        {"run", FT_STRING, F_REQUIRED, NULL, NULL, "the command (run by /bin/sh -c)"},
        {"exit_status", FT_INT, F_RANGE_BYTE, NULL, NULL, "expected exit status (default 0)"},
        {"stdout", FT_STRINGS, 0, NULL, NULL, "text its output contains, or /regex/"},
        {"stderr", FT_STRINGS, 0, NULL, NULL, "text its error output contains, or /regex/"},
        {"timeout", FT_DURATION, 0, NULL, NULL, "kill it after this long (default 5m)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static void command_validate(const struct value *p, const char *what, struct diag_list *d) {
        validate_patterns(p, "stdout", false, what, d);
        validate_patterns(p, "stderr", false, what, d);
        const struct value *es = value_map_get(p, "exit_status");
        if (es && es->kind == V_NUMBER && es->num > 255)
                diag_error(d, &es->mark, value_span(es), "%s: exit_status: %s is not an exit status (0-255)",
                           what, es->str);
}

static void command_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        uint64_t timeout = CHECK_COMMAND_TIMEOUT_S;
        const char *t = opt_str(c, "timeout");
        if (t)
                parse_duration(t, &timeout);
        long long want = opt_int(c, "exit_status", 0);
        strbuf_adds(o, "o=$(mktemp) && e=$(mktemp) || { ");
        R(o, "fail");
        strbuf_adds(o, "'cannot create temporary files'; exit 0; }\nc=");
        q(o, c->target);
        strbuf_addf(o, "\nif command -v timeout >/dev/null 2>&1; then\n"
                       "(cd / && timeout -k 5 %llu /bin/sh -c \"$c\") >\"$o\" 2>\"$e\" </dev/null; rc=$?\n"
                       "else (cd / && /bin/sh -c \"$c\") >\"$o\" 2>\"$e\" </dev/null; rc=$?; fi\n",
                    (unsigned long long)timeout);
        strbuf_addf(o, "if [ $rc = %lld ]; then ", want);
        R(o, "ok");
        strbuf_adds(o, "\"exit status $rc\"; ");
        if (want != 124) {
                strbuf_adds(o, "elif [ $rc = 124 ] && command -v timeout >/dev/null 2>&1; then ");
                R(o, "fail");
                strbuf_addf(o, "'timed out after %llus'; ", (unsigned long long)timeout);
        }
        strbuf_adds(o, "else ");
        R(o, "fail");
        strbuf_addf(o, "\"exit status $rc, expected %lld; stderr: $(head -c 300 \"$e\")\"; fi\n", want);
        static const char *const streams[] = {"stdout", "stderr"};
        for (size_t k = 0; k < ARRAY_SIZE(streams); k++) {
                size_t n;
                const struct value *const *v = opt_strings(c, streams[k], &n);
                const char *f = k ? "$e" : "$o";
                for (size_t i = 0; i < n; i++) {
                        strbuf_adds(o, "if ");
                        grep_cmd(o, v[i]->str, false);
                        strbuf_addf(o, " \"%s\"; then ", f);
                        R(o, "ok");
                        strbuf_addf(o, "'%s contains '", streams[k]);
                        q(o, v[i]->str);
                        strbuf_adds(o, "; else ");
                        R(o, "fail");
                        strbuf_addf(o, "'%s does not contain '", streams[k]);
                        q(o, v[i]->str);
                        strbuf_addf(o, "\" (%s: $(head -c 300 \"%s\"))\"; fi\n", streams[k], f);
                }
        }
        strbuf_adds(o, "rm -f \"$o\" \"$e\"\n");
}

/* ---- kernel_param --------------------------------------------------------------------------- */

static const struct field kernel_param_fields[] = {
        {"key", FT_STRING, F_REQUIRED, NULL, NULL, "the sysctl name, e.g. net.ipv4.ip_forward"},
        {"value", FT_STRING, F_REQUIRED, NULL, NULL, "its expected value (whitespace-insensitive)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static void kernel_param_validate(const struct value *p, const char *what, struct diag_list *d) {
        const struct value *k = value_map_get(p, "key");
        if (k && k->str && (!plain_word(k->str, "._-/") || strstr(k->str, "..") || k->str[0] == '.' ||
                            k->str[0] == '/'))
                diag_error(d, &k->mark, value_span(k), "%s: key: '%s' is not a sysctl name", what, k->str);
}

/* Collapses runs of blanks to one space and trims: how values compare. */
static char *squeeze(const char *s) {
        struct strbuf sb = STRBUF_INIT;
        for (; *s; s++) {
                bool blank = *s == ' ' || *s == '\t' || *s == '\n';
                if (blank) {
                        if (sb.len && sb.buf[sb.len - 1] != ' ')
                                strbuf_addc(&sb, ' ');
                } else {
                        strbuf_addc(&sb, *s);
                }
        }
        if (sb.len && sb.buf[sb.len - 1] == ' ')
                sb.buf[--sb.len] = 0;
        return strbuf_detach(&sb);
}

static void kernel_param_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        _cleanup_free_ char *path = xasprintf("/proc/sys/%s", c->target);
        for (char *p = path + 10; *p; p++)
                if (*p == '.')
                        *p = '/';
        _cleanup_free_ char *want = squeeze(opt_str(c, "value") ? opt_str(c, "value") : "");
        strbuf_adds(o, "f=");
        q(o, path);
        strbuf_adds(o, "\nif [ -r \"$f\" ]; then v=$(tr '\\t\\n' '  ' < \"$f\" | tr -s ' ' | sed 's/^ //; s/ $//')\n"
                       "if [ \"$v\" = ");
        q(o, want);
        strbuf_adds(o, " ]; then ");
        R(o, "ok");
        strbuf_adds(o, "\"= $v\"; else ");
        R(o, "fail");
        strbuf_adds(o, "\"is $v, expected \"");
        q(o, want);
        strbuf_adds(o, "; fi\nelse ");
        R(o, "fail");
        strbuf_adds(o, "'no such kernel parameter'; fi\n");
}

/* ---- port ----------------------------------------------------------------------------------- */

static const struct field port_fields[] = {
        {"port", FT_STRING, F_REQUIRED, NULL, NULL, "22, tcp:22, udp:53, tcp6:22 or udp6:53"},
        {"listening", FT_BOOL, 0, NULL, NULL, "true (default) or false"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* "tcp:22" -> proto ("tcp", "tcp6", "udp", "udp6", or "tcp" for both
 * families when just a number) and port. */
static bool parse_port(const char *s, char proto[8], unsigned *port, bool *both) {
        const char *colon = strchr(s, ':');
        *both = !colon;
        if (colon) {
                size_t n = (size_t)(colon - s);
                if (n >= 8)
                        return false;
                memcpy(proto, s, n);
                proto[n] = 0;
                if (!streq(proto, "tcp") && !streq(proto, "udp") && !streq(proto, "tcp6") &&
                    !streq(proto, "udp6"))
                        return false;
                s = colon + 1;
        } else {
                strcpy(proto, "tcp");
        }
        char *end;
        unsigned long p = strtoul(s, &end, 10);
        if (!*s || *end || p < 1 || p > 65535)
                return false;
        *port = (unsigned)p;
        return true;
}

static void port_validate(const struct value *p, const char *what, struct diag_list *d) {
        const struct value *v = value_map_get(p, "port");
        char proto[8];
        unsigned port;
        bool both;
        if (v && v->str && !parse_port(v->str, proto, &port, &both)) {
                struct diag *dg = diag_error(d, &v->mark, value_span(v), "%s: port: '%s' is not a port",
                                             what, v->str);
                diag_hint(dg, "write a number from 1 to 65535, optionally after tcp:, udp:, tcp6: or udp6:");
        }
}

static void port_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        char proto[8];
        unsigned port;
        bool both;
        if (!parse_port(c->target, proto, &port, &both))
                return;
        bool udp = proto[0] == 'u';
        const char *files = both ? (udp ? "/proc/net/udp /proc/net/udp6" : "/proc/net/tcp /proc/net/tcp6")
                                 : streq(proto, "tcp")  ? "/proc/net/tcp"
                                 : streq(proto, "tcp6") ? "/proc/net/tcp6"
                                 : streq(proto, "udp")  ? "/proc/net/udp"
                                                        : "/proc/net/udp6";
        strbuf_addf(o, "found=\nfor f in %s; do [ -r \"$f\" ] || continue\n"
                       "while read -r sl l r st rest; do case \"$l\" in *:%04X) [ \"$st\" = %s ] && found=1;; esac; done < \"$f\"\n"
                       "done\n",
                    files, port, udp ? "07" : "0A");
        bool want = opt_bool(c, "listening") != 0;
        strbuf_addf(o, "if [ %s\"$found\" ]; then ", want ? "-n " : "-z ");
        R(o, "ok");
        strbuf_addf(o, "'%s on %s port %u'; else ", want ? "listening" : "not listening", proto, port);
        R(o, "fail");
        strbuf_addf(o, "'%s on %s port %u'; fi\n", want ? "nothing listens" : "something listens", proto, port);
}

/* ---- mount ---------------------------------------------------------------------------------- */

static const struct field mount_fields[] = {
        {"path", FT_ABS_PATH, F_REQUIRED, NULL, NULL, "the mount point"},
        {"exists", FT_BOOL, 0, NULL, NULL, "mounted (default true) or not"},
        {"filesystem", FT_STRING, 0, NULL, NULL, "ext4, tmpfs, ..."},
        {"options", FT_STRING_LIST, 0, NULL, NULL, "mount options that must be set (goss: opts)"},
        {"source", FT_STRING, 0, NULL, NULL, "the mounted device or source"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

/* A path as /proc/mounts writes it (space, tab, newline, backslash octal). */
static char *mounts_escape(const char *s) {
        struct strbuf sb = STRBUF_INIT;
        for (; *s; s++) {
                if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
                        strbuf_addf(&sb, "\\%03o", (unsigned char)*s);
                else
                        strbuf_addc(&sb, *s);
        }
        return strbuf_detach(&sb);
}

static void mount_script(const struct check *c, bool booted, struct strbuf *o) {
        (void)booted;
        _cleanup_free_ char *mp = mounts_escape(c->target);
        strbuf_adds(o, "want=");
        q(o, mp);
        strbuf_adds(o, "\nm=\nwhile read -r dev mp fs opts rest; do [ \"$mp\" = \"$want\" ] && m=\"$dev $fs $opts\"; done < /proc/mounts\n"
                       "if [ -n \"$m\" ]; then set -- $m\n");
        if (opt_bool(c, "exists") == 0) {
                R(o, "fail");
                strbuf_adds(o, "\"mounted ($2 from $1), expected not mounted\"\nelse ");
                R(o, "ok");
                strbuf_adds(o, "'not mounted'\nfi\n");
                return;
        }
        R(o, "ok");
        strbuf_adds(o, "\"mounted ($2)\"\n");
        const char *fs = opt_str(c, "filesystem");
        if (fs) {
                strbuf_adds(o, "if [ \"$2\" = ");
                q(o, fs);
                strbuf_adds(o, " ]; then ");
                R(o, "ok");
                strbuf_adds(o, "\"filesystem $2\"; else ");
                R(o, "fail");
                strbuf_adds(o, "\"filesystem is $2, expected \"");
                q(o, fs);
                strbuf_adds(o, "; fi\n");
        }
        const char *src = opt_str(c, "source");
        if (src) {
                strbuf_adds(o, "if [ \"$1\" = ");
                q(o, src);
                strbuf_adds(o, " ]; then ");
                R(o, "ok");
                strbuf_adds(o, "\"source $1\"; else ");
                R(o, "fail");
                strbuf_adds(o, "\"source is $1, expected \"");
                q(o, src);
                strbuf_adds(o, "; fi\n");
        }
        size_t n;
        const struct value *const *v = opt_strings(c, "options", &n);
        for (size_t i = 0; i < n; i++) {
                strbuf_adds(o, "case \",$3,\" in *,");
                q(o, v[i]->str);
                strbuf_adds(o, ",*) ");
                R(o, "ok");
                strbuf_adds(o, "'option '");
                q(o, v[i]->str);
                strbuf_adds(o, ";; *) ");
                R(o, "fail");
                strbuf_adds(o, "'option '");
                q(o, v[i]->str);
                strbuf_adds(o, "\" not set ($3)\";; esac\n");
        }
        strbuf_adds(o, "else ");
        R(o, "fail");
        strbuf_adds(o, "'not mounted'\nfi\n");
}

/* ---- the table ------------------------------------------------------------------------------ */

static const struct check_kind kind_file = {
        .name = "file", .target = "path", .fields = file_fields,
        .validate = file_validate, .script = file_script,
};
static const struct check_kind kind_package = {
        .name = "package", .target = "name", .fields = package_fields,
        .validate = package_validate, .script = package_script,
};
static const struct check_kind kind_service = {
        .name = "service", .target = "name", .fields = service_fields,
        .validate = service_validate, .script = service_script,
};
static const struct check_kind kind_user = {
        .name = "user", .target = "name", .fields = user_fields,
        .validate = account_validate, .script = user_script,
};
static const struct check_kind kind_group = {
        .name = "group", .target = "name", .fields = group_fields,
        .validate = account_validate, .script = group_script,
};
static const struct check_kind kind_command = {
        .name = "command", .target = "run", .fields = command_fields,
        .validate = command_validate, .script = command_script,
};
static const struct check_kind kind_kernel_param = {
        .name = "kernel_param", .alias = "kernel-param", .target = "key",
        .fields = kernel_param_fields, .boot_only = true,
        .validate = kernel_param_validate, .script = kernel_param_script,
};
static const struct check_kind kind_port = {
        .name = "port", .target = "port", .fields = port_fields, .boot_only = true,
        .validate = port_validate, .script = port_script,
};
static const struct check_kind kind_mount = {
        .name = "mount", .target = "path", .fields = mount_fields, .boot_only = true,
        .script = mount_script,
};

const struct check_kind *const check_kinds[] = {
        &kind_file, &kind_package, &kind_service, &kind_user, &kind_group,
        &kind_command, &kind_kernel_param, &kind_port, &kind_mount, NULL,
};

const struct check_kind *check_kind_find(const char *name) {
        for (const struct check_kind *const *k = check_kinds; *k; k++)
                if (streq((*k)->name, name) || ((*k)->alias && streq((*k)->alias, name)))
                        return *k;
        return NULL;
}
