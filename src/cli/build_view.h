/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_view.h — what `kiln build` shows of a run (pipeline.h's events):
 * the text view (one line per step, check report, image, store and publish
 * result; the failed step's last log lines; on a terminal the running
 * step's elapsed time and latest output line; elsewhere a heartbeat line
 * while a step runs long; one summary at the end), and the JSON-lines view
 * (one event per line, docs/build.md "Events").
 */
#pragma once

#include "cli/cli.h"
#include "pipeline/pipeline.h"

#include <stdio.h>

struct build_view;

/* A text view on stdout/stderr for the builds of s (a is borrowed for the
 * `kiln shell --failed` suggestion). Starts the timer thread that draws
 * elapsed time (terminal) or heartbeats (not a terminal). */
struct build_view *build_view_new(struct cli *cli, const struct spec_args *a, const struct spec *s);
/* Stops the timer thread and frees v (NULL is fine). */
void build_view_free(struct build_view *v);
void build_view_event(void *userdata, const struct pipeline_event *ev);
/* Whether the view wants every output line (--debug, or a terminal). */
bool build_view_wants_output(const struct build_view *v);

/* The JSON-lines view: each event as one line on f (flushed per line);
 * step output only when debug. */
struct build_json_view {
        FILE *f;
        bool debug;
};
void build_json_view_event(void *userdata, const struct pipeline_event *ev);
