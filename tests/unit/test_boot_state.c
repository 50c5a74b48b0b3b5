/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the boot's own verdict: reading systemd's state and failed
 * units from the guest script's output (vm_boot_state_parse, bounded and
 * ignoring noise), the boot_check: policy (check_boot_policy_parse, errors
 * located) and the judgement (check_boot_state_judge): a degraded boot fails
 * by default, naming its failed units, and passes only when allowed. */
#include "harness.h"

#include "check/check.h"
#include "spec/yaml.h"
#include "vm/vm.h"

/* ---- parsing systemd's answer ------------------------------------------------------------------ */

TEST(boot_state_parses_degraded_with_failed_units) {
        struct vm_boot_state s;
        const char *out =
                "Linux kiln-1 6.1.0 #1 SMP\n"                       /* a motd: ignored */
                "kiln-state: degraded\n"
                "kiln-failed: cloud-config.service loaded failed failed Apply the settings specified in cloud-config\n"
                "kiln-failed: \xe2\x97\x8f kiln-fail.service loaded failed failed kiln test unit\n"
                "kiln-failed: * systemd-modules-load.service loaded failed failed Load Kernel Modules\r\n"
                "kiln-failed: cloud-config.service loaded failed failed again\n"; /* listed once */
        CHECK_INT(vm_boot_state_parse(out, &s), ==, 0);
        CHECK_STREQ(s.state, "degraded");
        CHECK_INT(s.nfailed, ==, 3);
        CHECK_STREQ(s.failed[0], "cloud-config.service");
        CHECK_STREQ(s.failed[1], "kiln-fail.service");
        CHECK_STREQ(s.failed[2], "systemd-modules-load.service");
        CHECK(s.failed[3] == NULL);
        vm_boot_state_done(&s);
}

TEST(boot_state_parses_running_and_rejects_garbage) {
        struct vm_boot_state s;
        CHECK_INT(vm_boot_state_parse("kiln-state: running\n", &s), ==, 0);
        CHECK_STREQ(s.state, "running");
        CHECK_INT(s.nfailed, ==, 0);
        vm_boot_state_done(&s);
        /* no state line, or one that is not a word of systemd's */
        CHECK_INT(vm_boot_state_parse("", &s), ==, -EBADMSG);
        CHECK_INT(vm_boot_state_parse("kiln-failed: a.service loaded failed failed x\n", &s), ==, -EBADMSG);
        CHECK_INT(vm_boot_state_parse("kiln-state: \x1b[31mdegraded\n", &s), ==, -EBADMSG);
        CHECK_INT(vm_boot_state_parse("kiln-state: \n", &s), ==, -EBADMSG);
        /* a later state line does not replace the first */
        CHECK_INT(vm_boot_state_parse("kiln-state: degraded\nkiln-state: running\n", &s), ==, 0);
        CHECK_STREQ(s.state, "degraded");
        vm_boot_state_done(&s);
}

TEST(boot_state_ignores_what_is_not_a_unit_name) {
        struct vm_boot_state s;
        char *longname = xmalloc(VM_UNIT_NAME_MAX + 20);
        memset(longname, 'a', VM_UNIT_NAME_MAX + 1);
        strcpy(longname + VM_UNIT_NAME_MAX + 1, ".service");
        _cleanup_free_ char *out = xasprintf("kiln-state: degraded\n"
                                             "kiln-failed: \x1b]0;evil\x07.service loaded failed failed\n"
                                             "kiln-failed: nodot loaded failed failed\n"
                                             "kiln-failed: .service loaded failed failed\n"
                                             "kiln-failed: %s loaded failed failed\n"
                                             "kiln-failed: ok@1.service loaded failed failed\n",
                                             longname);
        free(longname);
        CHECK_INT(vm_boot_state_parse(out, &s), ==, 0);
        CHECK_INT(s.nfailed, ==, 1);
        CHECK_STREQ(s.failed[0], "ok@1.service");
        vm_boot_state_done(&s);
}

TEST(boot_state_keeps_a_bounded_number_of_units) {
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "kiln-state: degraded\n");
        for (int i = 0; i < VM_FAILED_UNITS_MAX + 10; i++)
                strbuf_addf(&sb, "kiln-failed: u%d.service loaded failed failed\n", i);
        struct vm_boot_state s;
        CHECK_INT(vm_boot_state_parse(sb.buf, &s), ==, 0);
        CHECK_INT(s.nfailed, ==, VM_FAILED_UNITS_MAX);
        CHECK_INT(s.nomitted, ==, 10);
        char *detail = NULL;
        CHECK_INT(check_boot_state_judge(&s, NULL, &detail), ==, CHECK_FAILED);
        CHECK(strstr(detail, "and 10 more") != NULL);
        free(detail);
        vm_boot_state_done(&s);
        strbuf_free(&sb);
}

/* ---- the policy -------------------------------------------------------------------------------- */

struct pol {
        struct source *src;
        struct value *doc;
        struct diag_list d;
        struct check_boot_policy p;
        int r;
};

static struct pol pol_parse(const char *text) {
        struct pol p = {0};
        p.src = source_new("kiln.yaml", text, strlen(text));
        if (yaml_load(p.src, &p.d, &p.doc) < 0)
                abort();
        p.r = check_boot_policy_parse(value_map_get(p.doc, "boot_check"), NULL, &p.d, &p.p);
        return p;
}

static void pol_done(struct pol *p) {
        check_boot_policy_done(&p->p);
        value_free(p->doc);
        diag_list_done(&p->d);
        source_free(p->src);
}

static bool has_diag(const struct pol *p, unsigned line, unsigned col, const char *needle) {
        for (size_t i = 0; i < p->d.n; i++)
                if (p->d.v[i].mark.line == line && p->d.v[i].mark.col == col && strstr(p->d.v[i].msg, needle))
                        return true;
        return false;
}

TEST(boot_policy_forms) {
        struct pol p = pol_parse("boot_check: true\n");
        CHECK_INT(p.r, ==, 0);
        CHECK(p.p.enabled && !p.p.allow_degraded && p.p.nallow_units == 0);
        pol_done(&p);
        p = pol_parse("boot_check: false\n");
        CHECK(p.r == 0 && !p.p.enabled);
        pol_done(&p);
        p = pol_parse("boot_check:\n  allow_degraded: true\n");
        CHECK(p.r == 0 && p.p.enabled && p.p.allow_degraded);
        CHECK_INT(p.p.mark.line, ==, 2);
        pol_done(&p);
        p = pol_parse("boot_check: {enabled: false, allow_failed_units: [a.service, 'ceph-*', slurmd]}\n");
        CHECK(p.r == 0 && !p.p.enabled && !p.p.allow_degraded);
        CHECK_INT(p.p.nallow_units, ==, 3);
        CHECK(check_boot_policy_allows_unit(&p.p, "a.service"));
        CHECK(check_boot_policy_allows_unit(&p.p, "ceph-osd@1.service"));
        CHECK(check_boot_policy_allows_unit(&p.p, "slurmd.service")); /* NAME means NAME.service */
        CHECK(!check_boot_policy_allows_unit(&p.p, "slurmd.socket"));
        CHECK(!check_boot_policy_allows_unit(&p.p, "b.service"));
        pol_done(&p);
        p = pol_parse("boot_check: {timeout: 30m}\n");
        CHECK(p.r == 0 && p.p.enabled && p.p.timeout_s == 1800);
        pol_done(&p);
        p = pol_parse("boot_check: {timeout: 2d}\n");
        CHECK(p.r == -EINVAL && has_diag(&p, 1, 23, "CHECK_BOOT_TIMEOUT_MAX_S"));
        pol_done(&p);
        p = pol_parse("boot_check: {allow_failed_units: one.mount}\n"); /* one string */
        CHECK(p.r == 0 && p.p.nallow_units == 1 && check_boot_policy_allows_unit(&p.p, "one.mount"));
        pol_done(&p);
        /* absent: defaults, not enabled */
        struct diag_list d = {0};
        struct check_boot_policy none;
        CHECK_INT(check_boot_policy_parse(NULL, NULL, &d, &none), ==, 0);
        CHECK(!none.enabled && !none.allow_degraded);
        check_boot_policy_done(&none);
        diag_list_done(&d);
}

TEST(boot_policy_errors_are_located) {
        struct pol p = pol_parse("boot_check: yes\n");
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK(has_diag(&p, 1, 13, "boot_check: expected a boolean"));
        pol_done(&p);
        p = pol_parse("boot_check: [a.service]\n");
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK(has_diag(&p, 1, 13, "expected true, false or a map, got a list"));
        pol_done(&p);
        p = pol_parse("boot_check:\n  allow_degradd: true\n");
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK(has_diag(&p, 2, 3, "allow_degradd"));
        pol_done(&p);
        p = pol_parse("boot_check:\n  allow_degraded: yes\n");
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK(has_diag(&p, 2, 19, "allow_degraded"));
        pol_done(&p);
        p = pol_parse("boot_check:\n  allow_failed_units: [ok.service, 'bad unit', '']\n");
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK(has_diag(&p, 2, 36, "'bad unit' has a character"));
        CHECK(has_diag(&p, 2, 48, "is empty"));
        pol_done(&p);
        struct strbuf sb = STRBUF_INIT;
        strbuf_adds(&sb, "boot_check:\n  allow_failed_units:\n");
        for (int i = 0; i <= CHECK_ALLOW_UNITS_MAX; i++)
                strbuf_addf(&sb, "    - u%d.service\n", i);
        p = pol_parse(sb.buf);
        CHECK_INT(p.r, ==, -EINVAL);
        CHECK(has_diag(&p, 3 + CHECK_ALLOW_UNITS_MAX, 7, "CHECK_ALLOW_UNITS_MAX"));
        pol_done(&p);
        strbuf_free(&sb);
}

/* ---- the judgement ----------------------------------------------------------------------------- */

static enum check_status judge(const char *out, const struct check_boot_policy *p, char **detail) {
        struct vm_boot_state s;
        if (vm_boot_state_parse(out, &s) < 0)
                abort();
        enum check_status st = check_boot_state_judge(&s, p, detail);
        vm_boot_state_done(&s);
        return st;
}

TEST(boot_judge_degraded_fails_by_default_naming_units) {
        const char *out = "kiln-state: degraded\n"
                          "kiln-failed: cloud-config.service loaded failed failed x\n"
                          "kiln-failed: kiln-fail.service loaded failed failed y\n";
        char *d = NULL;
        CHECK_INT(judge(out, NULL, &d), ==, CHECK_FAILED);
        CHECK(strstr(d, "degraded: failed units: cloud-config.service, kiln-fail.service") != NULL);
        free(d);
        struct check_boot_policy p = {.enabled = true};
        CHECK_INT(judge(out, &p, &d), ==, CHECK_FAILED);
        free(d);

        /* allow_degraded: passes, still names them */
        p.allow_degraded = true;
        CHECK_INT(judge(out, &p, &d), ==, CHECK_PASSED);
        CHECK(strstr(d, "cloud-config.service, kiln-fail.service") != NULL);
        CHECK(strstr(d, "allow_degraded") != NULL);
        free(d);

        /* an allow-list that covers one unit: the other still fails */
        char *one[] = {"kiln-fail"};
        p = (struct check_boot_policy){.allow_units = one, .nallow_units = 1};
        CHECK_INT(judge(out, &p, &d), ==, CHECK_FAILED);
        CHECK(strstr(d, "failed unit: cloud-config.service") != NULL);
        CHECK(strstr(d, "allowed by allow_failed_units: kiln-fail.service") != NULL);
        free(d);
        /* ... and one that covers both passes */
        char *both[] = {"kiln-fail", "cloud-*"};
        p = (struct check_boot_policy){.allow_units = both, .nallow_units = 2};
        CHECK_INT(judge(out, &p, &d), ==, CHECK_PASSED);
        free(d);
}

TEST(boot_judge_other_states) {
        char *d = NULL;
        CHECK_INT(judge("kiln-state: running\n", NULL, &d), ==, CHECK_PASSED);
        free(d);
        CHECK_INT(judge("kiln-state: none\n", NULL, &d), ==, CHECK_SKIPPED);
        free(d);
        /* the boot never finished: allow_degraded does not cover it */
        struct check_boot_policy p = {.allow_degraded = true};
        CHECK_INT(judge("kiln-state: starting\n", &p, &d), ==, CHECK_FAILED);
        CHECK(strstr(d, "did not finish") != NULL);
        free(d);
        CHECK_INT(judge("kiln-state: maintenance\n", NULL, &d), ==, CHECK_FAILED);
        CHECK(strstr(d, "'maintenance'") != NULL);
        free(d);
        /* degraded with no unit listed (reset meanwhile) still fails */
        CHECK_INT(judge("kiln-state: degraded\n", NULL, &d), ==, CHECK_FAILED);
        free(d);
}
