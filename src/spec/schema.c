/* SPDX-License-Identifier: Apache-2.0 */
#include "spec/schema.h"

#include "base/suggest.h"

#include <ctype.h>
#include <inttypes.h>

const char *field_type_describe(enum field_type t) {
        switch (t) {
        case FT_ANY: return "any value";
        case FT_STRING: return "a string";
        case FT_BOOL: return "a boolean (true or false)";
        case FT_INT: return "a whole number";
        case FT_SIZE: return "a size (e.g. 4G, 512M, 100MiB)";
        case FT_DURATION: return "a duration (e.g. 90s, 10m, 1h30m)";
        case FT_MODE: return "an octal file mode in quotes (e.g. \"0644\")";
        case FT_STRING_LIST: return "a list of strings";
        case FT_STRINGS: return "a string or a list of strings";
        case FT_INT_LIST: return "a list of whole numbers";
        case FT_MAP:
        case FT_OBJECT: return "a map";
        case FT_SCALAR_MAP: return "a map of strings";
        case FT_LIST: return "a list";
        case FT_ABS_PATH: return "an absolute path (starting with /)";
        }
        return "?";
}

/* Reads the digits at *p into *ret (overflow-checked); at least one. */
static int parse_digits(const char **p, uint64_t *ret) {
        uint64_t v = 0;
        const char *c = *p;
        if (!isdigit((unsigned char)*c))
                return -EINVAL;
        for (; isdigit((unsigned char)*c); c++)
                if (__builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t)(*c - '0'), &v))
                        return -ERANGE;
        *p = c;
        *ret = v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const struct {
                const char *suffix;
                uint64_t mult;
        } units[] = {
                {"", 1},           {"B", 1},
                {"K", 1ull << 10}, {"KB", 1000},          {"KiB", 1ull << 10},
                {"M", 1ull << 20}, {"MB", 1000000},       {"MiB", 1ull << 20},
                {"G", 1ull << 30}, {"GB", 1000000000ull}, {"GiB", 1ull << 30},
                {"T", 1ull << 40}, {"TB", 1000000000000ull}, {"TiB", 1ull << 40},
        };
        const char *p = s;
        uint64_t whole, frac = 0, scale = 1;
        int r = parse_digits(&p, &whole);
        if (r < 0)
                return r;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                /* Digits past the 18th cannot change a size of whole bytes
                 * (a unit is at most 2^40): they are read and dropped. */
                for (; isdigit((unsigned char)*p); p++)
                        if (scale < 1000000000000000000ull) {
                                frac = frac * 10 + (uint64_t)(*p - '0');
                                scale *= 10;
                        }
        }
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (!streq(p, units[i].suffix))
                        continue;
                uint64_t bytes;
                if (__builtin_mul_overflow(whole, units[i].mult, &bytes))
                        return -ERANGE;
                /* frac / scale < 1, so this part is below mult: no overflow
                 * in 128 bits, and it fits 64 bits after the division. */
                uint64_t part = (uint64_t)((unsigned __int128)frac * units[i].mult / scale);
                if (__builtin_add_overflow(bytes, part, &bytes) || bytes > SCHEMA_SIZE_MAX)
                        return -ERANGE;
                *ret_bytes = bytes;
                return 0;
        }
        return -EINVAL;
}

int parse_duration(const char *s, uint64_t *ret_seconds) {
        const char *p = s;
        uint64_t total = 0, v;
        int r = parse_digits(&p, &v);
        if (r < 0)
                return r;
        if (!*p) {
                /* A bare number means seconds. */
                if (v > SCHEMA_DURATION_MAX)
                        return -ERANGE;
                *ret_seconds = v;
                return 0;
        }
        for (;;) {
                uint64_t mult;
                switch (*p) {
                case 's': mult = 1; break;
                case 'm': mult = 60; break;
                case 'h': mult = 3600; break;
                case 'd': mult = 86400; break;
                default: return -EINVAL;
                }
                if (__builtin_mul_overflow(v, mult, &v) || __builtin_add_overflow(total, v, &total) ||
                    total > SCHEMA_DURATION_MAX)
                        r = -ERANGE; /* keep reading: text that is no duration says so */
                if (!*++p)
                        break;
                int q = parse_digits(&p, &v);
                if (q == -EINVAL)
                        return q;
                if (q < 0)
                        r = q;
        }
        if (r < 0)
                return r;
        *ret_seconds = total;
        return 0;
}

void schema_int_range(const struct field *f, long long *ret_min, long long *ret_max) {
        *ret_min = 0;
        *ret_max = f->flags & F_RANGE_BYTE    ? 255
                   : f->flags & F_RANGE_ID    ? 4294967294ll
                   : f->flags & F_RANGE_SMALL ? 100
                   : f->flags & F_RANGE_LEVEL ? 4
                                              : SCHEMA_INT_MAX;
}

/* True when v is a whole number in f's range. */
static bool int_in_range(const struct value *v, const struct field *f) {
        long long min, max;
        schema_int_range(f, &min, &max);
        /* Written in the negative so that NaN fails too. */
        return v->kind == V_NUMBER && v->is_int && v->num >= (double)min && v->num <= (double)max;
}

int parse_mode(const char *s, unsigned *ret_mode) {
        size_t n = strlen(s);
        if (n < 3 || n > 4)
                return -EINVAL;
        unsigned m = 0;
        for (const char *c = s; *c; c++) {
                if (*c < '0' || *c > '7')
                        return -EINVAL;
                m = m * 8 + (unsigned)(*c - '0');
        }
        *ret_mode = m;
        return 0;
}

void schema_key_list(const struct field *fields, struct strbuf *out) {
        for (const struct field *f = fields; f->key; f++) {
                if (f != fields)
                        strbuf_adds(out, ", ");
                strbuf_adds(out, f->key);
        }
}

static unsigned type_error(const struct value *v, const struct field *f, const char *what,
                           struct diag_list *d) {
        struct diag *dg = diag_error(d, &v->mark, value_span(v),
                                     "%s%s%s: expected %s, got a %s", what ? what : "",
                                     what ? ": " : "", f->key, field_type_describe(f->type),
                                     value_kind_name(v->kind));
        if (f->type == FT_BOOL && v->kind == V_STRING && v->str &&
            (streq(v->str, "yes") || streq(v->str, "no") || streq(v->str, "on") ||
             streq(v->str, "off")))
                diag_hint(dg, "kiln reads YAML 1.2, where '%s' is a string; write true or false",
                          v->str);
        else if (f->type == FT_BOOL && v->kind == V_STRING && v->str &&
                 (streq(v->str, "true") || streq(v->str, "false")))
                diag_hint(dg, "remove the quotes: \"%s\" is a string", v->str);
        else if (f->type == FT_MODE && v->kind == V_NUMBER)
                diag_hint(dg, "write the mode as a string of octal digits, e.g. \"0644\"");
        else if (f->type == FT_OBJECT && f->children) {
                struct strbuf keys = STRBUF_INIT;
                schema_key_list(f->children, &keys);
                diag_hint(dg, "%s takes: %s", f->key, strbuf_str(&keys));
                strbuf_free(&keys);
        }
        return 1;
}

static bool is_stringish(const struct value *v) {
        return v->kind == V_STRING || v->kind == V_NUMBER;
}

static unsigned check_list_of(const struct value *v, const struct field *f, const char *what,
                              struct diag_list *d, bool ints) {
        unsigned errs = 0;
        for (size_t i = 0; i < v->n; i++) {
                const struct value *it = v->items[i];
                if (it->invalid)
                        continue;
                bool ok = ints ? (it->kind == V_NUMBER && it->is_int) : is_stringish(it);
                if (ok && ints && !int_in_range(it, f)) {
                        long long min, max;
                        schema_int_range(f, &min, &max);
                        diag_error(d, &it->mark, value_span(it),
                                   "%s%s%s: item %zu, %s, is out of range (%lld to %lld)",
                                   what ? what : "", what ? ": " : "", f->key, i + 1,
                                   value_shown(it), min, max);
                        errs++;
                        continue;
                }
                if (!ok) {
                        diag_error(d, &it->mark, value_span(it),
                                   "%s%s%s: expected %s, but item %zu is a %s", what ? what : "",
                                   what ? ": " : "", f->key, field_type_describe(f->type), i + 1,
                                   value_kind_name(it->kind));
                        errs++;
                }
        }
        return errs;
}

/* Scalars with a textual form: a size, a duration or a file mode. */
static unsigned check_form(const struct value *v, const struct field *f, const char *what,
                           struct diag_list *d) {
        uint64_t u64;
        unsigned mode;
        bool ok;
        int r = 0;
        const char *example;
        if (f->type == FT_MODE ? v->kind != V_STRING : !is_stringish(v))
                return type_error(v, f, what, d);
        switch (f->type) {
        case FT_SIZE:
                ok = (r = parse_size(v->str, &u64)) >= 0;
                example = "a size (e.g. 4G, 512M, 100MiB)";
                break;
        case FT_DURATION:
                ok = (r = parse_duration(v->str, &u64)) >= 0;
                example = "a duration (e.g. 90s, 10m, 1h30m)";
                break;
        default:
                ok = parse_mode(v->str, &mode) >= 0;
                example = "an octal mode (e.g. \"0644\")";
                break;
        }
        if (ok)
                return 0;
        if (r == -ERANGE && f->type == FT_SIZE)
                diag_error(d, &v->mark, value_span(v),
                           "%s%s%s: '%s' is out of range (a size is at most 8 EiB - 1 bytes)",
                           what ? what : "", what ? ": " : "", f->key, value_shown(v));
        else if (r == -ERANGE)
                diag_error(d, &v->mark, value_span(v),
                           "%s%s%s: '%s' is out of range (a duration is at most %llu days)",
                           what ? what : "", what ? ": " : "", f->key, value_shown(v),
                           SCHEMA_DURATION_MAX / 86400);
        else
                diag_error(d, &v->mark, value_span(v), "%s%s%s: '%s' is not %s", what ? what : "",
                           what ? ": " : "", f->key, value_shown(v), example);
        return 1;
}

unsigned schema_check_value(const struct value *v, const struct field *f, const char *what,
                            struct diag_list *d) {
        if (!v || v->invalid)
                return 0;
        switch (f->type) {
        case FT_ANY:
                return 0;
        case FT_STRING:
                if (!is_stringish(v))
                        return type_error(v, f, what, d);
                if (f->allowed) {
                        for (const char *const *a = f->allowed; *a; a++)
                                if (streq(*a, v->str))
                                        return 0;
                        struct strbuf list = STRBUF_INIT;
                        size_t n = 0;
                        for (const char *const *a = f->allowed; *a; a++, n++) {
                                if (n)
                                        strbuf_adds(&list, ", ");
                                strbuf_adds(&list, *a);
                        }
                        struct diag *dg =
                                diag_error(d, &v->mark, value_span(v),
                                           "%s%s%s: '%s' is not one of: %s", what ? what : "",
                                           what ? ": " : "", f->key, value_shown(v),
                                           strbuf_str(&list));
                        const char *s = suggest_closest(v->str, (const char *const *)f->allowed, n);
                        if (s)
                                diag_hint(dg, "did you mean '%s'?", s);
                        strbuf_free(&list);
                        return 1;
                }
                return 0;
        case FT_ABS_PATH:
                if (!is_stringish(v))
                        return type_error(v, f, what, d);
                if (v->str[0] != '/') {
                        diag_error(d, &v->mark, value_span(v),
                                   "%s%s%s: '%s' must be an absolute path (starting with /)",
                                   what ? what : "", what ? ": " : "", f->key, value_shown(v));
                        return 1;
                }
                return 0;
        case FT_BOOL:
                return v->kind == V_BOOL ? 0 : type_error(v, f, what, d);
        case FT_INT:
                if (v->kind != V_NUMBER)
                        return type_error(v, f, what, d);
                if (!int_in_range(v, f)) {
                        long long min, max;
                        schema_int_range(f, &min, &max);
                        diag_error(d, &v->mark, value_span(v),
                                   "%s%s%s: %s must be a whole number from %lld to %lld",
                                   what ? what : "", what ? ": " : "", f->key, value_shown(v), min,
                                   max);
                        return 1;
                }
                return 0;
        case FT_SIZE:
        case FT_DURATION:
        case FT_MODE:
                return check_form(v, f, what, d);
        case FT_STRING_LIST:
                if (v->kind != V_LIST)
                        return type_error(v, f, what, d);
                return check_list_of(v, f, what, d, false);
        case FT_STRINGS:
                if (is_stringish(v))
                        return 0;
                if (v->kind != V_LIST)
                        return type_error(v, f, what, d);
                return check_list_of(v, f, what, d, false);
        case FT_INT_LIST:
                if (v->kind != V_LIST)
                        return type_error(v, f, what, d);
                return check_list_of(v, f, what, d, true);
        case FT_MAP:
                return v->kind == V_MAP ? 0 : type_error(v, f, what, d);
        case FT_SCALAR_MAP: {
                if (v->kind != V_MAP)
                        return type_error(v, f, what, d);
                unsigned errs = 0;
                for (size_t i = 0; i < v->n; i++)
                        if (!v->items[i]->invalid && !value_is_scalar(v->items[i])) {
                                diag_error(d, &v->items[i]->mark, 1,
                                           "%s%s%s.%s: expected a string, got a %s",
                                           what ? what : "", what ? ": " : "", f->key,
                                           v->keys[i]->str, value_kind_name(v->items[i]->kind));
                                errs++;
                        }
                return errs;
        }
        case FT_LIST:
                return v->kind == V_LIST ? 0 : type_error(v, f, what, d);
        case FT_OBJECT: {
                if (v->kind != V_MAP)
                        return type_error(v, f, what, d);
                _cleanup_free_ char *sub = what ? xasprintf("%s: %s", what, f->key) : xstrdup(f->key);
                return schema_check(v, f->children, sub, d);
        }
        }
        return 0;
}

unsigned schema_check(const struct value *v, const struct field *fields, const char *what,
                      struct diag_list *d) {
        if (!v || v->invalid)
                return 0;
        if (v->kind != V_MAP) {
                struct strbuf keys = STRBUF_INIT;
                schema_key_list(fields, &keys);
                struct diag *dg = diag_error(d, &v->mark, 1, "%s: expected a map, got a %s", what,
                                             value_kind_name(v->kind));
                diag_hint(dg, "%s takes: %s", what, strbuf_str(&keys));
                strbuf_free(&keys);
                return 1;
        }
        unsigned errs = 0;
        size_t nfields = 0;
        for (const struct field *f = fields; f->key; f++)
                nfields++;
        for (size_t i = 0; i < v->n; i++) {
                const struct value *k = v->keys[i];
                if (k->invalid)
                        continue; /* already reported */
                const struct field *f = NULL;
                for (const struct field *c = fields; c->key; c++)
                        if (streq(c->key, k->str)) {
                                f = c;
                                break;
                        }
                if (!f) {
                        _cleanup_free_ const char **names = xcalloc(nfields + 1, sizeof(char *));
                        for (size_t j = 0; j < nfields; j++)
                                names[j] = fields[j].key;
                        struct diag *dg = diag_error(d, &k->mark, value_span(k),
                                                     "unknown key '%s' in %s", k->str, what);
                        const char *s = suggest_closest(k->str, names, nfields);
                        if (s)
                                diag_hint(dg, "did you mean '%s'?", s);
                        else {
                                struct strbuf keys = STRBUF_INIT;
                                schema_key_list(fields, &keys);
                                diag_hint(dg, "%s takes: %s", what, strbuf_str(&keys));
                                strbuf_free(&keys);
                        }
                        errs++;
                        continue;
                }
                errs += schema_check_value(v->items[i], f, what, d);
        }
        for (const struct field *f = fields; f->key; f++)
                if ((f->flags & F_REQUIRED) && !value_map_get(v, f->key)) {
                        diag_error(d, &v->mark, 1, "%s: missing required key '%s'", what, f->key);
                        errs++;
                }
        return errs;
}
