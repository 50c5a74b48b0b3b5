/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The secrets publishers register before use (publish_ctx.add_secret),
 * kept by the verbs that publish (kiln publish, kiln build) so a server's
 * error text that echoes one is masked before kiln prints it — a second line
 * of defence: publishers themselves never put secrets in messages.
 */
#include "cli/cli.h"

#include "base/strbuf.h"

#include <string.h>

void cli_secrets_add(struct cli_secrets *s, const char *secret) {
        if (!secret || strlen(secret) < 4) /* too short to mask without garbling text */
                return;
        pthread_mutex_lock(&s->lock);
        GROW(s->v, s->n, s->cap);
        s->v[s->n++] = xstrdup(secret);
        pthread_mutex_unlock(&s->lock);
}

char *cli_secrets_mask(struct cli_secrets *s, const char *text) {
        struct strbuf sb = STRBUF_INIT;
        text = text ? text : "";
        pthread_mutex_lock(&s->lock);
        strbuf_add_masked(&sb, text, strlen(text), (const char *const *)s->v, s->n);
        pthread_mutex_unlock(&s->lock);
        return strbuf_detach(&sb);
}

void cli_secrets_done(struct cli_secrets *s) {
        for (size_t i = 0; i < s->n; i++) {
                explicit_bzero(s->v[i], strlen(s->v[i]));
                free(s->v[i]);
        }
        free(s->v);
        s->v = NULL;
        s->n = s->cap = 0;
}
