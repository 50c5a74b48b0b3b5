/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c — a publish run as `kiln publish` makes it, without the terminal:
 * a plan (which builds, which of their targets, which artifacts: each
 * build's artifact_set read once) and its run, target by target, reported
 * through an observer; and the clean-up of unfinished uploads. The verb
 * parses flags and prints; everything it decides is here.
 */
#include "publish/publish.h"

#include "base/strbuf.h"
#include "base/util.h"
#include "spec/spec.h"

#include <fnmatch.h>

static bool glob_any(char *const *globs, size_t n, const char *name) {
        for (size_t i = 0; name && i < n; i++)
                if (fnmatch(globs[i], name, 0) == 0)
                        return true;
        return false;
}

/* Whether the publisher of any of these targets reads sha512 (disabled
 * ones too: as kiln publish always did). */
static bool any_reads_sha512(const struct publish_target *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const struct publisher *pb = publisher_find(t[i].type);
                if (pb && !pb->sha256_only)
                        return true;
        }
        return false;
}

static void add_job(struct publish_plan *p, size_t *cap, struct publish_job j) {
        GROW(p->jobs, p->njobs, *cap);
        p->jobs[p->njobs++] = j;
}

static struct publish_target url_target(const struct value *u) {
        /* type: and name: are set by whoever made the value (the CLI's --to) */
        return (struct publish_target){.name = value_map_get(u, "name")->str,
                                       .type = value_map_get(u, "type")->str, .settings = u};
}

static bool name_given(const struct publish_request *req, const char *name, bool *used) {
        bool any = false;
        for (size_t t = 0; t < req->nnames; t++)
                if (streq(req->names[t], name)) {
                        any = true;
                        if (used)
                                used[t] = true;
                }
        return any;
}

/* The targets of build i that the request selects, as jobs; 0 when the
 * build is not selected or has none, else the folder's load result. */
static int plan_build(const struct publish_request *req, size_t i, bool *used, size_t *cap,
                      struct publish_plan *p, struct strbuf *err) {
        const struct spec_build *b = req->spec->builds[i];
        if (req->nonly && !glob_any(req->only, req->nonly, b->name) &&
            !glob_any(req->only, req->nonly, b->id))
                return 0;
        if (!req->nonly && !b->publish && !req->nurls)
                return 0;
        /* parsed when the spec was loaded (pipeline_load), borrowed; a spec
         * loaded without the section registry has only the value */
        const struct publish_targets *pt = publish_targets_of(b);
        if (!pt && b->publish) {
                publish_targets_from_value(b->publish, &p->own[i].v, &p->own[i].n);
                pt = &p->own[i];
        }
        p->targets[i] = pt ? pt->v : NULL;
        p->ntargets[i] = pt ? pt->n : 0;
        const struct publish_target *t = p->targets[i];
        size_t nt = p->ntargets[i], want = 0;
        for (size_t k = 0; k < nt; k++) {
                bool sel = name_given(req, t[k].name, used) || !req->nnames;
                if (sel && (!req->nurls || req->nnames))
                        want++;
        }
        if (!want && !req->nurls)
                return 0;
        _cleanup_free_ char *dir = xasprintf("%s/%s", req->output_dir, b->name);
        struct publish_artifacts *set = &p->sets[i];
        set->hash_progress = req->hash_progress;
        set->hash_userdata = req->hash_userdata;
        _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
        int r = publish_artifacts_load(dir, any_reads_sha512(t, nt), set, &why);
        if (r < 0) {
                strbuf_addf(err, "%s: %s", b->name, strbuf_str(&why));
                return r;
        }
        for (size_t k = 0; k < nt; k++)
                if ((!req->nnames && !req->nurls) || name_given(req, t[k].name, NULL))
                        add_job(p, cap, (struct publish_job){.build = b->name, .target = t[k], .set = set});
        for (size_t u = 0; u < req->nurls; u++)
                add_job(p, cap, (struct publish_job){.build = b->name, .target = url_target(req->urls[u]),
                                                     .set = set});
        return 0;
}

static int plan_files(const struct publish_request *req, struct publish_plan *p, struct strbuf *err) {
        bool need512 = false;
        for (size_t i = 0; i < req->nurls; i++) {
                const struct publisher *pb = publisher_find(value_map_get(req->urls[i], "type")->str);
                need512 |= pb && !pb->sha256_only;
        }
        p->sets = xcalloc(1, sizeof(*p->sets));
        p->nsets = 1;
        p->sets->hash_progress = req->hash_progress;
        p->sets->hash_userdata = req->hash_userdata;
        for (size_t i = 0; i < req->nfiles; i++) {
                int r = publish_artifacts_add_file(p->sets, req->files[i], need512, err);
                if (r < 0)
                        return r;
        }
        p->jobs = xcalloc(req->nurls + 1, sizeof(*p->jobs));
        for (size_t i = 0; i < req->nurls; i++)
                p->jobs[p->njobs++] = (struct publish_job){.target = url_target(req->urls[i]),
                                                           .set = p->sets, .all = true};
        return 0;
}

int publish_plan_make(const struct publish_request *req, struct publish_plan *ret, struct strbuf *err) {
        *ret = (struct publish_plan){0};
        if (!req->spec)
                return plan_files(req, ret, err);
        const struct spec *s = req->spec;
        ret->sets = xcalloc(s->nbuilds + 1, sizeof(*ret->sets));
        ret->targets = xcalloc(s->nbuilds + 1, sizeof(*ret->targets));
        ret->ntargets = xcalloc(s->nbuilds + 1, sizeof(*ret->ntargets));
        ret->own = xcalloc(s->nbuilds + 1, sizeof(*ret->own));
        ret->nsets = s->nbuilds;
        _cleanup_free_ bool *used = xcalloc(req->nnames + 1, sizeof(*used));
        size_t cap = 0;
        for (size_t i = 0; i < s->nbuilds; i++) {
                int r = plan_build(req, i, used, &cap, ret, err);
                if (r < 0)
                        return r;
        }
        for (size_t t = 0; t < req->nnames; t++)
                if (!used[t]) {
                        ret->unmatched_name = req->names[t];
                        return -ENXIO;
                }
        return ret->njobs ? 0 : -ENODATA;
}

void publish_plan_done(struct publish_plan *p) {
        free(p->jobs);
        for (size_t i = 0; i < p->nsets; i++)
                publish_artifacts_done(&p->sets[i]);
        free(p->sets);
        for (size_t i = 0; p->own && i < p->nsets; i++)
                publish_targets_free(p->own[i].v, p->own[i].n);
        free(p->own);
        free(p->targets);
        free(p->ntargets);
        *p = (struct publish_plan){0};
}

size_t publish_plan_run(const struct publish_plan *p, const struct publish_ctx *ctx,
                        const struct publish_run_observer *obs, struct publish_outcome **ret,
                        size_t *ret_n) {
        static const struct publish_run_observer none = {0};
        obs = obs ? obs : &none;
        struct publish_outcome *outs = NULL;
        size_t n = 0, cap = 0, failed = 0;
        for (size_t j = 0; j < p->njobs; j++) {
                const struct publish_job *jb = &p->jobs[j];
                size_t count = jb->all ? jb->set->n : 1;
                for (size_t k = 0; k < count; k++) {
                        const struct publish_artifact *a =
                                jb->all ? &jb->set->v[k]
                                        : publish_pick_artifact(&jb->target, jb->set->v, jb->set->n);
                        if (obs->start)
                                obs->start(obs->userdata, jb, a);
                        GROW(outs, n, cap);
                        struct publish_outcome *o = &outs[n++];
                        if (publish_one(&jb->target, a, ctx, o) < 0)
                                failed++;
                        o->build = xstrdup_null(jb->build);
                        if (obs->done)
                                obs->done(obs->userdata, jb, o);
                }
        }
        *ret = outs;
        *ret_n = n;
        return failed;
}

int publish_uploads_clean(const struct publish_target *t, bool abort_them, int64_t older_s,
                          int64_t now, const struct publish_ctx *ctx,
                          struct publish_upload **ret_uploads, size_t *ret_nuploads,
                          struct publish_upload_outcome **ret, size_t *ret_n, char **ret_error) {
        const struct publisher *p = publisher_find(t->type);
        if (!p || !p->list_uploads || !p->abort_upload)
                return -EOPNOTSUPP;
        struct publish_upload *u = NULL;
        size_t n = 0;
        int r = p->list_uploads(t, ctx, &u, &n, ret_error);
        if (r < 0)
                return r;
        struct publish_upload_outcome *o = xcalloc(n + 1, sizeof(*o));
        size_t no = 0;
        for (size_t i = 0; i < n; i++) {
                if (older_s >= 0 && (u[i].initiated_s < 0 || now - u[i].initiated_s <= older_s))
                        continue;
                struct publish_upload_outcome *x = &o[no++];
                x->upload = &u[i];
                if (abort_them && p->abort_upload(t, &u[i], ctx, &x->error) < 0) {
                        x->failed = true;
                        if (!x->error)
                                x->error = xstrdup("failed");
                }
        }
        *ret_uploads = u;
        *ret_nuploads = n;
        *ret = o;
        *ret_n = no;
        return 0;
}
