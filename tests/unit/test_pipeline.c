/* SPDX-License-Identifier: Apache-2.0 */
/* The pipeline's pieces that need no sandbox: log tails, event names and
 * the JSON form of events (the run itself is tested end to end by
 * tests/e2e/test_events.sh). */
#include "harness.h"

#include "base/strbuf.h"
#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *write_tmp(const char *text) {
        char *path = xstrdup("/tmp/kiln-test-pipeline-XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
                test_fail(__FILE__, __LINE__, "cannot write a temp file");
        close(fd);
        return path;
}

TEST(log_tail_keeps_the_last_lines) {
        char *p = write_tmp("one\ntwo\nthree\nfour\n\n");
        char *t = pipeline_log_tail(p, 2);
        CHECK_STREQ(t, "three\nfour");
        free(t);
        t = pipeline_log_tail(p, 10);
        CHECK_STREQ(t, "one\ntwo\nthree\nfour");
        free(t);
        unlink(p);
        free(p);
        p = write_tmp("");
        CHECK(pipeline_log_tail(p, 3) == NULL);
        unlink(p);
        free(p);
        CHECK(pipeline_log_tail("/nonexistent/kiln/log", 3) == NULL);
}

TEST(log_tail_reads_only_the_end_of_a_big_log) {
        struct strbuf sb = STRBUF_INIT;
        for (int i = 0; i < 20000; i++)
                strbuf_addf(&sb, "line %d\n", i);
        char *p = write_tmp(strbuf_str(&sb));
        char *t = pipeline_log_tail(p, 2);
        CHECK_STREQ(t, "line 19998\nline 19999");
        free(t);
        unlink(p);
        free(p);
        strbuf_free(&sb);
}

TEST(every_event_has_a_name) {
        for (int t = PEV_RUN_STARTED; t <= PEV_RUN_FINISHED; t++)
                CHECK(strcmp(pipeline_event_name((enum pipeline_event_type)t), "?") != 0);
        CHECK_STREQ(pipeline_event_name(PEV_STEP_CACHED), "step_cached");
        for (int s = PIPELINE_BUILD_OK; s <= PIPELINE_BUILD_PUBLISH_FAILED; s++)
                CHECK(strcmp(pipeline_build_status_name((enum pipeline_build_status)s), "?") != 0);
}

TEST(event_json_is_one_line) {
        struct pipeline_event ev = {.type = PEV_WARNING, .stage = "boot-check",
                                    .text = "a \"quoted\"\nmessage"};
        struct strbuf sb = STRBUF_INIT;
        pipeline_event_json(&ev, &sb);
        CHECK(strchr(strbuf_str(&sb), '\n') == NULL);
        CHECK(strncmp(strbuf_str(&sb), "{\"type\":\"warning\",\"time\":", 25) == 0);
        CHECK(strstr(strbuf_str(&sb), "\"message\":\"a \\\"quoted\\\"\\nmessage\"") != NULL);
        strbuf_free(&sb);
}
