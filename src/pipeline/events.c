/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The names of events and statuses, and one event as a line of JSON — the
 * form a caller that is not a terminal (a service, a CI job) follows a run
 * in. The schema is documented in docs/build.md ("Events"); fields are only
 * ever added.
 */
#include "pipeline/pipeline.h"

#include "base/json.h"
#include "base/strbuf.h"
#include "check/check.h"
#include "image/outputs.h"
#include "publish/publish.h"
#include "store/store.h"

#include <time.h>

static const char *const event_names[] = {
        [PEV_RUN_STARTED] = "run_started",         [PEV_STEP_STARTED] = "step_started",
        [PEV_STEP_FINISHED] = "step_finished",     [PEV_STEP_CACHED] = "step_cached",
        [PEV_STEP_SKIPPED] = "step_skipped",       [PEV_STEP_OUTPUT] = "step_output",
        [PEV_CHECKS] = "checks",                   [PEV_TREE_FINISHED] = "tree_finished",
        [PEV_IMAGE_STARTED] = "image_started",     [PEV_IMAGE_ASSEMBLED] = "image_assembled",
        [PEV_IMAGE_WRITTEN] = "image_written",     [PEV_BOOT_STARTED] = "boot_started",
        [PEV_STORED] = "stored",                   [PEV_PUBLISHED] = "published",
        [PEV_ERROR] = "error",                     [PEV_WARNING] = "warning",
        [PEV_RUN_FINISHED] = "run_finished",
};

const char *pipeline_event_name(enum pipeline_event_type t) {
        return (size_t)t < ARRAY_SIZE(event_names) && event_names[t] ? event_names[t] : "?";
}

static const char *const status_names[] = {
        [PIPELINE_BUILD_OK] = "ok",
        [PIPELINE_BUILD_SKIPPED] = "skipped",
        [PIPELINE_BUILD_TREE_FAILED] = "tree-failed",
        [PIPELINE_BUILD_CHECKS_FAILED] = "checks-failed",
        [PIPELINE_BUILD_IMAGE_FAILED] = "image-failed",
        [PIPELINE_BUILD_BOOT_FAILED] = "boot-check-failed",
        [PIPELINE_BUILD_STORE_FAILED] = "store-failed",
        [PIPELINE_BUILD_PUBLISH_FAILED] = "publish-failed",
};

const char *pipeline_build_status_name(enum pipeline_build_status s) {
        return (size_t)s < ARRAY_SIZE(status_names) && status_names[s] ? status_names[s] : "?";
}

static void key_string(struct json_writer *w, const char *k, const char *v) {
        json_key(w, k);
        json_string(w, v);
}

static void key_int(struct json_writer *w, const char *k, int64_t v) {
        json_key(w, k);
        json_int(w, v);
}

static const char *const step_status_names[] = {
        [STEP_HIT] = "cached", [STEP_RUNNING] = "running", [STEP_BUILT] = "built",
        [STEP_FAILED] = "failed", [STEP_SKIPPED] = "skipped",
};

static void step_json(struct json_writer *w, const struct pipeline_event *ev) {
        const struct step_event *se = ev->step;
        key_int(w, "index", se->index);
        key_int(w, "position", se->position);
        key_int(w, "count", se->count);
        key_string(w, "kind", se->kind);
        key_string(w, "label", se->label);
        key_string(w, "status", step_status_names[se->status]);
        key_string(w, "key", se->key);
        if (ev->type == PEV_STEP_FINISHED) {
                key_int(w, "elapsed_ms", (int64_t)se->elapsed_ms);
                if (se->status == STEP_FAILED)
                        key_int(w, "exit_code", se->exit_code);
        }
        if (se->log_path)
                key_string(w, "log", se->log_path);
        if (se->explain && se->explain->why && ev->type != PEV_STEP_CACHED)
                key_string(w, "why", se->explain->why);
}

static void result_json(struct json_writer *w, const struct pipeline_result *r) {
        key_string(w, "timestamp", r->timestamp);
        key_int(w, "ok", r->ok);
        key_int(w, "failed", r->failed);
        key_int(w, "skipped", r->skipped);
        key_int(w, "steps_run", r->steps_run);
        key_int(w, "steps_cached", r->steps_cached);
        json_key(w, "cancelled");
        json_bool(w, r->cancelled);
        json_key(w, "builds");
        json_begin_array(w);
        for (size_t i = 0; i < r->n; i++) {
                json_begin_object(w);
                key_string(w, "name", r->trees[i].build->name);
                key_string(w, "id", r->trees[i].build->id);
                key_string(w, "status", pipeline_build_status_name(r->status[i]));
                key_string(w, "record", r->trees[i].record_path);
                json_end_object(w);
        }
        json_end_array(w);
}

/* The fields of each type (after type, time, build). */
static void fields_json(struct json_writer *w, const struct pipeline_event *ev) {
        switch (ev->type) {
        case PEV_RUN_STARTED:
                key_string(w, "timestamp", ev->timestamp);
                key_string(w, "run_uuid", ev->run_uuid);
                key_int(w, "builds", ev->count);
                break;
        case PEV_STEP_STARTED:
        case PEV_STEP_FINISHED:
        case PEV_STEP_CACHED:
        case PEV_STEP_SKIPPED:
                step_json(w, ev);
                break;
        case PEV_STEP_OUTPUT:
                json_key(w, "line");
                json_string_n(w, ev->text, ev->len && ev->text[ev->len - 1] == '\n' ? ev->len - 1 : ev->len);
                break;
        case PEV_CHECKS:
                key_string(w, "stage", ev->stage);
                key_int(w, "passed", ev->report->passed);
                key_int(w, "failed", ev->report->failed);
                key_int(w, "skipped", ev->report->skipped);
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                json_key(w, "report");
                check_report_json(ev->report, w);
                break;
        case PEV_TREE_FINISHED:
                key_string(w, "status", ev->tree->ok ? "ok" : ev->tree->skipped ? "skipped" : "failed");
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                key_int(w, "steps_run", ev->tree->steps_run);
                key_int(w, "steps_cached", ev->tree->steps_cached);
                key_string(w, "record", ev->tree->record_path);
                if (ev->tree->failed_step)
                        key_string(w, "failed_step", ev->tree->failed_step);
                if (ev->tree->failed_log)
                        key_string(w, "log", ev->tree->failed_log);
                if (ev->text)
                        key_string(w, "log_tail", ev->text);
                if (ev->tree->failed_tree)
                        key_string(w, "failed_tree", ev->tree->failed_tree);
                break;
        case PEV_IMAGE_STARTED:
        case PEV_BOOT_STARTED:
                key_string(w, "path", ev->path);
                break;
        case PEV_IMAGE_ASSEMBLED:
                key_string(w, "path", ev->path);
                json_key(w, "up_to_date");
                json_bool(w, ev->image->up_to_date);
                key_int(w, "assemble_ms", (int64_t)ev->image->assemble_ms);
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                key_int(w, "bytes", (int64_t)ev->bytes);
                break;
        case PEV_IMAGE_WRITTEN:
                key_string(w, "path", ev->artifact->path);
                key_string(w, "format", ev->artifact->format);
                key_int(w, "bytes", (int64_t)ev->artifact->size);
                key_string(w, "sha256", ev->artifact->sha256);
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                break;
        case PEV_STORED:
                key_string(w, "store", ev->path);
                key_string(w, "image", ev->nentries ? ev->entries[0].name : NULL);
                key_string(w, "version", ev->nentries ? ev->entries[0].version : NULL);
                key_int(w, "files", (int64_t)ev->nentries);
                key_int(w, "bytes", (int64_t)ev->bytes);
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                break;
        case PEV_PUBLISHED:
                key_string(w, "target", ev->outcome->target);
                key_string(w, "target_type", ev->outcome->type);
                key_string(w, "file", ev->outcome->file);
                key_string(w, "status", publish_status_name(ev->outcome->result.status));
                key_int(w, "bytes", (int64_t)ev->bytes);
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                if (ev->path)
                        key_string(w, "location", ev->path);
                /* a failure's message comes as the "error" event that follows
                 * (masked with the run's secrets) */
                break;
        case PEV_ERROR:
        case PEV_WARNING:
                key_string(w, "stage", ev->stage);
                key_string(w, "message", ev->text);
                if (ev->path)
                        key_string(w, "log", ev->path);
                break;
        case PEV_RUN_FINISHED:
                key_int(w, "elapsed_ms", (int64_t)ev->elapsed_ms);
                result_json(w, ev->result);
                break;
        }
}

void pipeline_event_json(const struct pipeline_event *ev, struct strbuf *out) {
        struct json_writer w;
        json_init(&w, out, false);
        json_begin_object(&w);
        key_string(&w, "type", pipeline_event_name(ev->type));
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        key_int(&w, "time", (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (ev->build) {
                key_string(&w, "build", ev->build->name);
                key_string(&w, "build_id", ev->build->id);
        }
        fields_json(&w, ev);
        json_end_object(&w);
}
