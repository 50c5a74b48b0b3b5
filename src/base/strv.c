/* SPDX-License-Identifier: Apache-2.0 */
#include "base/strv.h"

void strv_add_take(struct strv *s, char *x) {
        if (s->n + 2 > s->cap) {
                s->cap = s->cap ? s->cap * 2 : 16;
                s->v = xreallocarray(s->v, s->cap, sizeof(char *));
        }
        s->v[s->n++] = x;
        s->v[s->n] = NULL;
}

void strv_add(struct strv *s, const char *x) { strv_add_take(s, xstrdup(x)); }

bool strv_contains(const struct strv *s, const char *x) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->v[i], x))
                        return true;
        return false;
}

bool strv_add_unique(struct strv *s, const char *x) {
        if (strv_contains(s, x))
                return false;
        strv_add(s, x);
        return true;
}

void strv_addf(struct strv *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *x = xvasprintf(fmt, ap);
        va_end(ap);
        strv_add_take(s, x);
}

void strv_remove(struct strv *s, size_t i) {
        if (i >= s->n)
                return;
        free(s->v[i]);
        s->v[i] = s->v[--s->n];
        s->v[s->n] = NULL;
}

char **strv_detach(struct strv *s) {
        char **v = s->v ? s->v : xcalloc(1, sizeof(char *));
        *s = (struct strv){0};
        return v;
}

void strv_free(struct strv *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (struct strv){0};
}

void strv_free_array(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}
