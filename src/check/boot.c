/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot's own verdict: a booted guest must not only answer SSH, its boot
 * must have finished with every unit started. systemd says so with
 * `systemctl is-system-running` (vm_boot_state); this file reads a build's
 * `boot_check:` policy and judges the verdict under it.
 *
 * The default is strict, as systemd's own "degraded" is: one failed unit
 * fails the boot check. The opt-outs are explicit and narrow first: an
 * allow-list of units (`allow_failed_units:`, names or globs) keeps every
 * other failure visible; `allow_degraded: true` (or --allow-degraded)
 * accepts any failed unit, and the report still names them.
 */
#include "check/check.h"

#include "vm/vm.h"

#include <fnmatch.h>

static const struct field policy_fields[] = {
        {"enabled", FT_BOOL, 0, NULL, NULL, "boot the image and run the checks in it (default true)"},
        {"allow_degraded", FT_BOOL, 0, NULL, NULL, "a boot with failed units passes (default false)"},
        {"allow_failed_units", FT_STRINGS, 0, NULL, NULL,
         "units that may fail: names or globs (NAME means NAME.service)"},
        {"timeout", FT_DURATION, 0, NULL, NULL, "readiness deadline (default 600s under TCG, 180s with KVM)"},
        {NULL, 0, 0, NULL, NULL, NULL},
};

static bool pattern_char(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr(":-_.\\@*?[]!", c));
}

static void add_unit(struct check_boot_policy *p, const struct value *u, const char *what,
                     struct diag_list *d) {
        if (u->invalid || !u->str)
                return;
        const char *why = NULL;
        char toolong[64];
        snprintf(toolong, sizeof(toolong), "is longer than %d characters (VM_UNIT_NAME_MAX)", VM_UNIT_NAME_MAX);
        size_t n = strlen(u->str);
        if (n == 0)
                why = "is empty";
        else if (n > VM_UNIT_NAME_MAX)
                why = toolong;
        for (size_t i = 0; !why && i < n; i++)
                if (!pattern_char((unsigned char)u->str[i]))
                        why = "has a character no unit name has (letters, digits, ':-_.\\@' and the "
                              "glob characters '*?[]' only)";
        if (why) {
                struct diag *dg = diag_error(d, &u->mark, value_span(u),
                                             "%s: allow_failed_units: '%s' %s", what, value_shown(u), why);
                diag_hint(dg, "e.g. allow_failed_units: [systemd-networkd-wait-online.service, 'ceph-*']");
                return;
        }
        if (p->nallow_units >= CHECK_ALLOW_UNITS_MAX) {
                diag_error(d, &u->mark, value_span(u),
                           "%s: allow_failed_units: more than %d entries (CHECK_ALLOW_UNITS_MAX)", what,
                           CHECK_ALLOW_UNITS_MAX);
                return;
        }
        p->allow_units = xreallocarray(p->allow_units, p->nallow_units + 1, sizeof(char *));
        p->allow_units[p->nallow_units++] = xstrdup(u->str);
}

int check_boot_policy_parse(const struct value *v, const char *what, struct diag_list *d,
                            struct check_boot_policy *ret) {
        *ret = (struct check_boot_policy){0};
        if (!v || v->invalid)
                return 0;
        ret->mark = v->mark;
        size_t errs = d->nerrors;
        if (v->kind == V_BOOL) {
                ret->enabled = v->b;
                return 0;
        }
        if (v->kind == V_STRING || v->kind == V_NUMBER) {
                /* most likely a boolean in YAML 1.1's spelling: say so */
                static const struct field as_bool = {"boot_check", FT_BOOL, 0, NULL, NULL, NULL};
                schema_check_value(v, &as_bool, what, d);
                return -EINVAL;
        }
        if (v->kind != V_MAP) {
                struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                             "%s%sboot_check: expected true, false or a map, got a %s",
                                             what ? what : "", what ? ": " : "", value_kind_name(v->kind));
                diag_hint(dg, "e.g. boot_check: true, or boot_check: {allow_failed_units: [NAME.service]}");
                return -EINVAL;
        }
        ret->enabled = true;
        _cleanup_free_ char *w = what ? xasprintf("%s: boot_check", what) : xstrdup("boot_check");
        schema_check(v, policy_fields, w, d); /* then every key that is right is read */
        const struct value *en = value_map_get(v, "enabled");
        if (en && en->kind == V_BOOL)
                ret->enabled = en->b;
        const struct value *ad = value_map_get(v, "allow_degraded");
        if (ad && ad->kind == V_BOOL)
                ret->allow_degraded = ad->b;
        const struct value *to = value_map_get(v, "timeout");
        uint64_t secs = 0;
        if (to && !to->invalid && (to->kind == V_STRING || to->kind == V_NUMBER) && to->str &&
            parse_duration(to->str, &secs) == 0) {
                if (secs < 1 || secs > CHECK_BOOT_TIMEOUT_MAX_S)
                        diag_error(d, &to->mark, value_span(to),
                                   "%s: timeout: %s is not between 1s and 24h (CHECK_BOOT_TIMEOUT_MAX_S)", w,
                                   value_shown(to));
                else
                        ret->timeout_s = (unsigned)secs;
        }
        const struct value *au = value_map_get(v, "allow_failed_units");
        if (au && au->kind == V_LIST) {
                for (size_t i = 0; i < au->n; i++)
                        add_unit(ret, au->items[i], w, d);
        } else if (au && au->kind != V_NULL) {
                add_unit(ret, au, w, d);
        }
        return d->nerrors > errs ? -EINVAL : 0;
}

void check_boot_policy_done(struct check_boot_policy *p) {
        for (size_t i = 0; i < p->nallow_units; i++)
                free(p->allow_units[i]);
        free(p->allow_units);
        *p = (struct check_boot_policy){0};
}

bool check_boot_policy_allows_unit(const struct check_boot_policy *p, const char *unit) {
        for (size_t i = 0; p && i < p->nallow_units; i++) {
                const char *pat = p->allow_units[i];
                if (fnmatch(pat, unit, 0) == 0)
                        return true;
                /* "foo" (no type) means foo.service, as systemctl reads it */
                if (!strchr(pat, '.')) {
                        _cleanup_free_ char *svc = xasprintf("%s.service", pat);
                        if (fnmatch(svc, unit, 0) == 0)
                                return true;
                }
        }
        return false;
}

/* "a.service, b.mount" for the units of s that the policy does (allowed)
 * or does not allow, plus "and N more" for what vm_boot_state left out. */
static void unit_list(const struct vm_boot_state *s, const struct check_boot_policy *p, bool allowed,
                      struct strbuf *out, size_t *ret_n) {
        size_t n = 0;
        for (size_t i = 0; i < s->nfailed; i++) {
                if (check_boot_policy_allows_unit(p, s->failed[i]) != allowed)
                        continue;
                strbuf_addf(out, "%s%s", n ? ", " : "", s->failed[i]);
                n++;
        }
        if (!allowed && s->nomitted) {
                strbuf_addf(out, "%sand %zu more", n ? ", " : "", s->nomitted);
                n += s->nomitted;
        }
        *ret_n = n;
}

enum check_status check_boot_state_judge(const struct vm_boot_state *s, const struct check_boot_policy *p,
                                         char **ret_detail) {
        if (streq(s->state, "running")) {
                *ret_detail = xstrdup("running: every unit started");
                return CHECK_PASSED;
        }
        if (streq(s->state, "none")) {
                *ret_detail = xstrdup("no systemctl in the guest: systemd's state not checked");
                return CHECK_SKIPPED;
        }
        _cleanup_strbuf_ struct strbuf bad = STRBUF_INIT, ok = STRBUF_INIT;
        size_t nbad = 0, nok = 0;
        unit_list(s, p, false, &bad, &nbad);
        unit_list(s, p, true, &ok, &nok);
        struct strbuf d = STRBUF_INIT;
        enum check_status st = CHECK_FAILED;
        if (streq(s->state, "degraded")) {
                if (nbad)
                        strbuf_addf(&d, "degraded: failed unit%s: %s", nbad == 1 ? "" : "s", bad.buf);
                else if (nok)
                        strbuf_adds(&d, "degraded");
                else
                        strbuf_adds(&d, "degraded (systemctl --failed lists no unit)");
                if (nok)
                        strbuf_addf(&d, "%sallowed by allow_failed_units: %s", nbad ? "; " : ": ", ok.buf);
                if ((nbad == 0 && nok > 0) || (p && p->allow_degraded)) {
                        st = CHECK_PASSED;
                        if (nbad || !nok)
                                strbuf_adds(&d, " (allowed: allow_degraded)");
                } else if (nbad) {
                        strbuf_addf(&d, " (see systemctl status %s in the guest)",
                                    s->nfailed ? s->failed[0] : "UNIT");
                }
        } else {
                /* starting (the wait ran out), maintenance, stopping, ... */
                strbuf_addf(&d, "systemd's state is '%s', not running", s->state);
                if (streq(s->state, "starting") || streq(s->state, "initializing"))
                        strbuf_adds(&d, ": the boot did not finish in time (systemctl list-jobs shows what waits)");
                if (nbad + nok)
                        strbuf_addf(&d, "; failed units: %s%s%s", bad.len ? bad.buf : "", bad.len && ok.len ? ", " : "",
                                    ok.len ? ok.buf : "");
        }
        *ret_detail = strbuf_detach(&d);
        return st;
}
