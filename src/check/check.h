/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.h — declarative checks of a built image: the model, its parser, the
 * table of check kinds, the runner and the reports.
 *
 * A check list is read from a build's `checks:` section (a list, a
 * goss-style map, or the name of a YAML file holding either). Each check has
 * one kind (file, package, service, ...) with its options; kinds are a table
 * (`check_kinds`): the fields the kind takes, whether it needs a booted
 * guest, and the function that writes the POSIX sh snippet performing it.
 *
 * The same snippets run everywhere through one execution interface
 * (`struct check_exec`): chrooted into the built tree in a sandbox whose
 * writable layer is thrown away (check_exec_tree), or inside a booted guest.
 * So each kind is implemented once. A snippet reports each assertion on a
 * result line tagged with a per-run random marker; the runner turns those
 * lines into one result per check: passed, failed (with the reasons) or
 * skipped (with the reason, e.g. "needs a booted guest" offline).
 *
 * Reports: a table for people, JSON, and JUnit XML for CI systems.
 * Reference for users: docs/spec.md (checks) and docs/validate.md.
 */
#pragma once

#include "base/json.h"
#include "spec/schema.h"
#include "spec/spec.h"

#include <signal.h>
#include <stdint.h>

#define CHECK_MAX 10000                 /* checks in one list */
#define CHECK_OUTPUT_MAX (8u << 20)     /* output of one run we read */
#define CHECK_RUN_TIMEOUT_MS (30 * 60 * 1000ull)
#define CHECK_COMMAND_TIMEOUT_S 300     /* default timeout of a command check */

struct check;
struct check_report;
struct strbuf;

struct check_kind {
        const char *name;            /* "file", "kernel_param" */
        const char *alias;           /* goss's spelling ("kernel-param") or NULL */
        const char *target;          /* the field the short form sets ("path") */
        const struct field *fields;  /* NULL-terminated; includes target */
        bool boot_only;              /* every assertion needs a running system */
        /* Checks what the schema cannot (value forms, combinations); adds
         * errors to d. May be NULL. */
        void (*validate)(const struct value *params, const char *what, struct diag_list *d);
        /* Appends the sh snippet that performs the check. It reports with
         * `kiln_r ok|fail|skip TEXT...` (defined by the runner's prelude);
         * assertions that need a booted system report skip unless booted. */
        void (*script)(const struct check *c, bool booted, struct strbuf *out);
};

extern const struct check_kind *const check_kinds[]; /* NULL-terminated */
const struct check_kind *check_kind_find(const char *name);

struct check {
        unsigned index;                 /* 1-based position in its list */
        const struct check_kind *kind;
        char *name;                     /* `name:`, or NULL */
        char *target;                   /* the target field's text (path, package, ...) */
        struct value *params;           /* normalised options (goss spellings mapped); owned */
        bool boot_only;                 /* the kind's flag, or `boot_only: true` */
        struct mark mark;               /* where the check was written (borrowed source) */
};

struct check_list {
        struct check *v;
        size_t n;
        struct source *src;             /* a checks file's text (owned), or NULL */
        struct value *doc;              /* that file's document (owned), or NULL */
};

/* Parses a `checks:` value (list, map or file name). Relative file names
 * resolve against base_dir (check_base_dir; NULL: the current directory). Every problem goes to d
 * with its position; returns 0, or -EINVAL when an error was reported
 * (*ret is still filled with the checks that parsed), or -errno when a
 * checks file could not be read (also reported). The sources that marks
 * point into must outlive d (spec sources do; a checks file's source is
 * adopted by d when there are diagnostics in it). */
int check_list_parse(const struct value *v, const char *base_dir, struct diag_list *d,
                     struct check_list *ret);
/* The directory checks files of s are relative to, spelt the way the user
 * named the spec (so messages say "examples/x/checks.yaml", not an
 * absolute path); NULL when that is the current directory. Owned. */
char *check_base_dir(const struct spec *s);
/* Reads a checks file named on the command line (path as given). */
int check_list_load(const char *path, struct diag_list *d, struct check_list *ret);
void check_list_done(struct check_list *l);

/* ---- the check engine's spec sections (section.c) ----
 * `checks:` and `boot_check:` are registered with the spec layer
 * (spec/section.h; the pipeline assembles the table) and parsed once, when
 * the spec loads, for every needed build. */
struct spec_section;
extern const struct spec_section check_checks_section, check_boot_section;
/* b's parsed checks: NULL when b has none (or was not needed). Borrowed
 * from the spec. */
const struct check_list *check_list_of(const struct spec_build *b);

/* One-line description of what a check looks at: "/etc/ssh/sshd_config",
 * "openssh-server >= 1:9", followed by " (NAME)" when it has a name:.
 * Owned by the caller. */
char *check_describe(const struct check *c);

/* ---- running ------------------------------------------------------------------------------- */

/* Where checks run. run() executes an sh script (given on stdin to
 * /bin/sh -s) in the target, returns 0 with its combined stdout/stderr
 * (NUL-terminated, owned by the caller, truncated to max bytes) and exit
 * status (-1 when killed or timed out), or -errno when it could not run. */
struct check_exec {
        const char *where;           /* "tree", "guest": shown in reports */
        bool booted;                 /* a running system: boot-only checks run */
        void *userdata;
        int (*run)(void *userdata, const char *script, uint64_t timeout_ms, size_t max,
                   char **ret_output, int *ret_status);
};

/* The built tree (overlay layers, topmost first) as a target: checks run
 * chrooted in a sandbox with no network, on a throwaway writable layer made
 * under scratch_dir (created; removed afterwards), so the tree and the step
 * cache never change. The struct must outlive the exec. */
struct check_tree {
        const char *const *layers;
        size_t nlayers;
        const char *scratch_dir;
        const char *hostname;        /* NULL: the sandbox default ("kiln") */
};
void check_exec_tree(struct check_exec *x, const struct check_tree *t);

/* Runs the checks of l against build b's finished tree as `kiln build` left
 * it in work_dir (provision/build.h: its layer stack from the step cache,
 * read-only, with a throwaway layer under the build's run/ folder) through
 * check_exec_tree. Returns 0 with *ret filled, or -errno with an explanation
 * in *ret_error (owned; it names the kiln command that helps): -ENOENT when
 * b has no finished tree in work_dir, the stat(2) error of a layer no longer
 * in the cache, or check_run's error. */
int check_run_finished_tree(const struct check_list *l, const char *work_dir, const struct spec_build *b,
                            struct check_report *ret, char **ret_error);

/* A booted guest (vm.h, started and ready) as a target: the script runs as
 * root over SSH. The VM must outlive the exec. */
struct vm;
void check_exec_guest(struct check_exec *x, struct vm *vm);

enum check_status { CHECK_PASSED, CHECK_FAILED, CHECK_SKIPPED };

/* ---- the boot's own verdict (boot.c) ----------------------------------------------------------- */

/* Every boot check also asks systemd how the boot ended (vm_boot_state): a
 * guest whose boot finished "degraded" — some unit failed — fails the boot
 * check, naming the failed units, unless the policy allows it. The policy is
 * a build's `boot_check:` map (`allow_degraded: true`, `allow_failed_units:
 * [NAME-OR-GLOB, ...]`) and the CLI's --allow-degraded. */
#define CHECK_ALLOW_UNITS_MAX 256       /* entries of allow_failed_units */
#define CHECK_BOOT_TIMEOUT_MAX_S 86400  /* boot_check: timeout: at most a day */

struct check_boot_policy {
        bool enabled;                /* boot_check: true or a map (without enabled: false) */
        bool allow_degraded;         /* a degraded boot passes (its failed units are still named) */
        char **allow_units;          /* failed units that do not count: unit names or fnmatch
                                        globs; a name without '.' means NAME.service; owned */
        size_t nallow_units;
        unsigned timeout_s;          /* `timeout:` readiness deadline; 0: the vm module's default */
        struct mark mark;            /* where boot_check: is written; no src when not written */
};

/* Reads a build's `boot_check:` value — true/false or a map of enabled,
 * allow_degraded and allow_failed_units — into *ret (defaults when v is
 * NULL). `what` ("build 'x'", or NULL) starts messages. Problems go to d with their position; returns 0 or -EINVAL (*ret
 * then holds what parsed). Free with check_boot_policy_done. */
int check_boot_policy_parse(const struct value *v, const char *what, struct diag_list *d,
                            struct check_boot_policy *ret);
void check_boot_policy_done(struct check_boot_policy *p);

/* b's parsed boot_check: policy, or the defaults when b has none: a copy
 * that borrows from the spec (never check_boot_policy_done it). */
void check_boot_policy_of(const struct spec_build *b, struct check_boot_policy *ret);

/* Whether the policy lets failed unit `unit` pass. */
bool check_boot_policy_allows_unit(const struct check_boot_policy *p, const char *unit);

/* Judges systemd's verdict under policy p (NULL: nothing allowed): passed
 * for "running" (or a degraded boot whose failed units are all allowed, or
 * with allow_degraded), skipped when the guest has no systemd, failed
 * otherwise; *ret_detail (owned) says why, naming the failed units. */
struct vm_boot_state;
enum check_status check_boot_state_judge(const struct vm_boot_state *s, const struct check_boot_policy *p,
                                         char **ret_detail);

struct check_boot_options {
        const char *image;           /* raw or qcow2; never written (QEMU -snapshot) */
        bool uefi;                   /* OVMF instead of SeaBIOS */
        const char *accel;           /* "auto" (NULL), "kvm" or "tcg" */
        const char *console_log;     /* keep the serial console here; NULL: not kept */
        const char *tmp_parent;      /* the VM's temp dir goes here; NULL: $TMPDIR */
        unsigned timeout_s;          /* readiness deadline; 0: the vm module's default */
        const volatile sig_atomic_t *cancel; /* optional: a signal arrived */
        const struct check_boot_policy *policy; /* what systemd may report; NULL: only "running" */
};

/* Boots an image, waits until the guest is ready, asks systemd how the boot
 * ended (a first result, kind "system", target "running": see
 * check_boot_state_judge), runs the checks of l in it and stops it again
 * (always). Returns 0 with *ret filled, or -errno
 * with an explanation in *ret_error (owned; includes the end of the serial
 * console when the guest did not come up; -EINVAL for an unknown accel). */
int check_run_booted(const struct check_list *l, const struct check_boot_options *o,
                     const char *build, struct check_report *ret, char **ret_error);

const char *check_status_name(enum check_status s); /* "passed", "failed", "skipped" */

struct check_result {
        const struct check *check;   /* borrowed from the list */
        enum check_status status;
        char *detail;                /* failed: the reasons; skipped: why; passed: what held */
};

struct check_report {
        char *build;                 /* build name (owned) */
        char *where;                 /* "tree", "guest" (owned) */
        struct check_result *v;
        size_t n;
        unsigned passed, failed, skipped;
        uint64_t elapsed_ms;
        struct check *builtin;       /* the "system" check of a boot (owned), or NULL */
};

/* Runs every check of l through x. Checks that need a booted guest are
 * skipped when !x->booted. Returns 0 with *ret filled (whatever the
 * outcome of the checks), or -errno when the target could not run the
 * script at all. The report borrows l's checks: l must outlive it. */
int check_run(const struct check_list *l, const struct check_exec *x, const char *build,
              struct check_report *ret);
void check_report_done(struct check_report *r);

/* ---- reports ------------------------------------------------------------------------------- */

/* A table: STATUS KIND WHAT DETAIL per check, then "N passed, N failed,
 * N skipped". ANSI colour when color is set. */
void check_report_table(const struct check_report *r, struct strbuf *out, bool color);
/* The report as the next JSON value of w: {build, where, passed, failed,
 * skipped, elapsed_ms, checks: [{kind, target, name, status, detail,
 * file, line, column}]}. */
void check_report_json(const struct check_report *r, struct json_writer *w);
/* JUnit XML: <testsuites> with one <testsuite> per report and one
 * <testcase> per check (<failure>, <skipped>). */
void check_report_junit(const struct check_report *const *r, size_t n, struct strbuf *out);
/* Writes check_report_junit to path atomically. */
int check_report_write_junit(const struct check_report *const *r, size_t n, const char *path);
/* The reports of one run over several builds as one JSON document (and a
 * newline) appended to out: {schema_version: 1, spec, ok, passed, failed,
 * skipped, reports: [check_report_json...]}; ok is all_ran and no check
 * failed. */
void check_reports_json(const struct check_report *const *r, size_t n, const char *spec, bool all_ran,
                        struct strbuf *out);

/* Appends s with XML's five special characters escaped and characters XML
 * 1.0 cannot hold (control characters but tab/LF/CR) replaced by '?'. */
void check_xml_escape(struct strbuf *out, const char *s);
/* Appends s quoted for POSIX sh (single quotes). */
void check_sh_quote(struct strbuf *out, const char *s);
